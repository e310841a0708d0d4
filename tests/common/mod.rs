//! Calling the C ABI from Rust tests the way a C caller would.
#![allow(dead_code)]

use findity::ffi::*;
use std::ffi::{CStr, CString};

pub fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// findity_stats, which must succeed.
pub fn stats() -> FindityStats {
    let mut s = FindityStats::default();
    assert_eq!(
        unsafe { findity_stats(&mut s, std::mem::size_of::<FindityStats>()) },
        FINDITY_OK
    );
    s
}

pub fn set_option(name: &str, value: &str) -> u32 {
    unsafe { findity_set_option(c(name).as_ptr(), c(value).as_ptr()) }
}

/// This thread's last error message.
pub fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    let mut len = 0usize;
    let rc = unsafe { findity_last_error(buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    assert_eq!(rc, FINDITY_OK);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// An organization token (`user` None) or a user token; on failure (status, HTTP status, message).
pub fn token(
    url: &str,
    client_id: &str,
    secret: &str,
    user: Option<&str>,
) -> Result<String, (u32, u16, String)> {
    let (u, id, s) = (c(url), c(client_id), c(secret));
    let user = user.map(c);
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    let rc = unsafe {
        match &user {
            None => findity_get_token(
                u.as_ptr(),
                id.as_ptr(),
                s.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            ),
            Some(user) => findity_user_token(
                u.as_ptr(),
                id.as_ptr(),
                s.as_ptr(),
                user.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            ),
        }
    };
    if rc == FINDITY_OK {
        Ok(String::from_utf8(buf[..len].to_vec()).unwrap())
    } else {
        Err((rc, findity_last_http_status(), last_error()))
    }
}

pub fn invalidate(url: &str, client_id: &str, user: Option<&str>) {
    let user = user.map(c);
    let p = user.as_ref().map_or(std::ptr::null(), |u| u.as_ptr());
    let rc = unsafe { findity_invalidate(c(url).as_ptr(), c(client_id).as_ptr(), p) };
    assert_eq!(rc, FINDITY_OK);
}

/// An in-process emulator with one client and this token lifetime, quiet.
pub fn emulator(client_id: &str, secret: &str, lifetime: i64) -> findity_emulator::Emulator {
    findity_emulator::Emulator::start(findity_emulator::Config {
        lifetime_secs: lifetime,
        clients: vec![(client_id.into(), secret.into())],
        quiet: true,
        ..findity_emulator::Config::default()
    })
    .expect("emulator starts")
}

/// Threads of the library in this process (its HTTP runtime, renewal workers), by name: the
/// in-process emulator's connection threads and the test's own come and go with the load.
pub fn library_threads() -> usize {
    threads_where(|name| {
        (name.starts_with("findity-") && !name.starts_with("findity-emulato"))
            || name.starts_with("reqwest")
    })
}

/// Threads of this process whose name passes `keep`.
pub fn threads_where(keep: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| keep(name.trim()))
        .count()
}

/// Sleep until `ms` after `t0` (at once if that has passed).
pub fn sleep_until(t0: std::time::Instant, ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms).saturating_sub(t0.elapsed()));
}

/// Run `f(user index)` for `users` users split over 8 threads.
pub fn over_threads(users: usize, f: impl Fn(usize) + Sync) {
    std::thread::scope(|s| {
        for t in 0..8 {
            let f = &f;
            s.spawn(move || {
                for i in (t..users).step_by(8) {
                    f(i);
                }
            });
        }
    });
}
