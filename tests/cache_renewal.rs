//! Cache renewal against the in-process emulator: what happens to refresh tokens across outages.
//! (Many threads mixing keys with short lifetimes: tests/soak.rs.)
//! (Each test binary is one process: the options set here affect only this file's tests.)

use findity::ffi::*;
use findity_emulator::{Config, Emulator};
use std::ffi::{CStr, CString};

const ID: &str = "client-r";
const SECRET: &str = "secret-r-123456";

fn emulator(port: u16, lifetime: i64) -> Emulator {
    Emulator::start(Config {
        port,
        lifetime_secs: lifetime,
        clients: vec![(ID.into(), SECRET.into())],
        quiet: true,
        ..Config::default()
    })
    .expect("emulator starts")
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn token(url: &str, user: Option<&str>) -> Result<String, (u32, String)> {
    let (u, id, sec) = (c(url), c(ID), c(SECRET));
    let mut buf = vec![0u8; 512];
    let mut len = 0;
    let rc = unsafe {
        match user {
            None => findity_get_token(
                u.as_ptr(),
                id.as_ptr(),
                sec.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            ),
            Some(user) => {
                let user = c(user);
                findity_user_token(
                    u.as_ptr(),
                    id.as_ptr(),
                    sec.as_ptr(),
                    user.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut len,
                )
            }
        }
    };
    if rc == FINDITY_OK {
        Ok(String::from_utf8(buf[..len].to_vec()).unwrap())
    } else {
        let mut msg = vec![0u8; 2048];
        unsafe { findity_last_error(msg.as_mut_ptr().cast(), msg.len(), &mut len) };
        Err((
            rc,
            CStr::from_bytes_until_nul(&msg)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        ))
    }
}

fn invalidate(url: &str, user: Option<&str>) {
    let user = user.map(c);
    let rc = unsafe {
        findity_invalidate(
            c(url).as_ptr(),
            c(ID).as_ptr(),
            user.as_ref().map_or(std::ptr::null(), |u| u.as_ptr()),
        )
    };
    assert_eq!(rc, FINDITY_OK);
}

/// A refresh token that never left the process (connection refused) is kept and used once the
/// server is back, rather than being thrown away.
#[test]
fn unsent_refresh_token_is_kept_through_an_outage() {
    let rc = unsafe { findity_set_option(c("timeout_ms").as_ptr(), c("700").as_ptr()) };
    assert_eq!(rc, FINDITY_OK);
    let emu = emulator(0, 3600);
    let port = emu.addr().port();
    let url = emu.url();
    token(&url, None).unwrap();
    emu.shutdown();

    invalidate(&url, None);
    let (status, msg) = token(&url, None).unwrap_err();
    assert_eq!(status, FINDITY_ERR_NETWORK, "{msg}");
    assert!(msg.contains("connect"), "{msg}");

    // Same address again; the new server has never seen the old refresh token, so it refuses it
    // and the library falls back. What matters: the refresh token was sent (kept), exactly once.
    let emu = emulator(port, 3600);
    token(&url, None).unwrap();
    let s = emu.stats();
    assert_eq!(s.refresh_token, 1, "the kept refresh token was tried");
    assert_eq!(s.client_credentials, 1, "then the fallback");
}
