//! Keys of a host that refuses connections must not starve the renewals of live keys: a
//! background renewal retries only while the token it replaces can still be served (its hard
//! margin), then leaves the key to the next caller. Without that, eight such keys (each retried
//! with backoff until timeout_ms, 8 s here) keep all four workers busy for seconds, and a live
//! key reaches its margin (6 s) with its renewal still queued. (Own process: own workers.)

mod common;

use findity::ffi::FINDITY_OK;
use std::time::{Duration, Instant};

const ID: &str = "client-refusing";
const SECRET: &str = "secret-refusing-0b7c";

#[test]
fn a_refusing_host_does_not_starve_a_live_one() {
    assert_eq!(common::set_option("timeout_ms", "8000"), FINDITY_OK);
    assert_eq!(common::set_option("renewal_threads", "4"), FINDITY_OK);
    // 4 s tokens: stale from 2.0–2.25 s of age, hard margin at 3 s.
    let dead = common::emulator(ID, SECRET, 4);
    // 8 s tokens: stale from 4.0–4.5 s of age, hard margin at 6 s.
    let live = common::emulator(ID, SECRET, 8);
    let (dead_url, live_url) = (dead.url(), live.url());
    let t0 = Instant::now();
    for i in 0..8 {
        common::token(&dead_url, ID, SECRET, Some(&format!("d-{i}"))).unwrap();
    }
    let first = common::token(&live_url, ID, SECRET, None).unwrap();
    drop(dead); // its port refuses from now on
    common::sleep_until(t0, 2400);
    for i in 0..8 {
        common::token(&dead_url, ID, SECRET, Some(&format!("d-{i}"))).unwrap();
    }
    common::sleep_until(t0, 4700);
    assert_eq!(common::token(&live_url, ID, SECRET, None).unwrap(), first);
    while live.stats().refresh_token == 0 && t0.elapsed() < Duration::from_millis(5800) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        live.stats().refresh_token,
        1,
        "the live key was not renewed in the background before its margin ({:?})",
        t0.elapsed()
    );
    assert_ne!(common::token(&live_url, ID, SECRET, None).unwrap(), first);
}
