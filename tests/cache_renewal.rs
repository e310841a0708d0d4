//! Cache renewal against the in-process emulator: what happens to refresh tokens across outages.
//! (Many threads mixing keys with short lifetimes: tests/soak.rs.)
//! (Each test binary is one process: the options set here affect only this file's tests.)

mod common;

use common::c;
use findity::ffi::*;
use findity_emulator::{Config, Emulator};

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

fn token(url: &str, user: Option<&str>) -> Result<String, (u32, String)> {
    common::token(url, ID, SECRET, user).map_err(|(rc, _, msg)| (rc, msg))
}

fn invalidate(url: &str, user: Option<&str>) {
    common::invalidate(url, ID, user)
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
