//! Cache renewal against the in-process emulator: what happens to refresh tokens across outages.
//! (Many threads mixing keys with short lifetimes: tests/soak.rs.)
//! (Each test binary is one process: the options set here affect only this file's tests, and
//! findity_clear_cache would clear the others' entries: see tests/clear_in_flight.rs.)

mod common;

use common::c;
use findity::ffi::*;
use findity_emulator::{Config, Emulator};
use std::time::{Duration, Instant};

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

/// Callers presenting a wrong secret share one request (and its refusal), never get the cached
/// token, and don't disturb callers with the right secret.
#[test]
fn wrong_secret_callers_share_one_flight() {
    let emu = emulator(0, 3600);
    let url = emu.url();
    let good = token(&url, None).unwrap();
    emu.set_latency(300);
    let wrong: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || common::token(&url, ID, "not-the-secret-123", None))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    assert_eq!(
        token(&url, None).unwrap(),
        good,
        "the right secret is still served"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "and without waiting for the other flight"
    );
    for w in wrong {
        let (rc, http, msg) = w.join().unwrap().unwrap_err();
        assert_eq!((rc, http), (FINDITY_ERR_AUTH, 401), "{msg}");
    }
    assert_eq!(
        emu.stats().client_credentials,
        2,
        "one request for the 8 wrong-secret callers"
    );
    assert_eq!(token(&url, None).unwrap(), good);
}
