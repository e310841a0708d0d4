//! A caller that waits for a background renewal which then fails leads its own flight: a
//! background renewal stops retrying at the token's hard margin, a caller may wait until its
//! own timeout_ms. Sharing the background flight's error would fail a call that could still
//! succeed. (Own process: own workers and throttle.)

mod common;

use findity::ffi::FINDITY_OK;
use findity_emulator::{Fault, Grant};
use std::time::{Duration, Instant};

const ID: &str = "client-background-failure";
const SECRET: &str = "secret-background-failure-5d1e";

#[test]
fn a_caller_does_not_inherit_a_failed_background_renewal() {
    assert_eq!(common::set_option("timeout_ms", "8000"), FINDITY_OK);
    // 16 s tokens: stale from 8.0–9.0 s of age, hard margin at 12 s.
    let emu = common::emulator(ID, SECRET, 16);
    let url = emu.url();
    let t0 = Instant::now();
    let first = common::token(&url, ID, SECRET, None).unwrap();
    // The background renewal's refresh: 429 with Retry-After 2 s (retried at ~11.2 s, before
    // the margin), then 429 with Retry-After 3 s (past the margin: the worker gives up).
    for retry_after in [2, 3] {
        emu.add_fault(
            Fault::parse("token", "429", 1)
                .unwrap()
                .grant(Grant::RefreshToken)
                .retry_after(retry_after),
        );
    }
    common::sleep_until(t0, 9100);
    assert_eq!(common::token(&url, ID, SECRET, None).unwrap(), first);
    // Wait until a worker has sent it (a renewal still queued would be taken over instead).
    while emu.stats().refresh_token == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no background renewal"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Instant::now();
    // The API rejected the token: this caller has nothing to serve and waits for the flight,
    // which is still retrying (its retry is due 2 s after the first answer).
    common::invalidate(&url, ID, None);
    let asked = Instant::now();
    assert!(
        asked - sent < Duration::from_millis(1800),
        "too late to wait for the renewal"
    );
    let got = common::token(&url, ID, SECRET, None);
    let took = asked.elapsed();
    let s = emu.stats();
    assert!(
        got.is_ok(),
        "the caller got the failed background renewal's error after {took:?}: {got:?}"
    );
    assert_ne!(got.unwrap(), first);
    // It waited out the server's second pause (until ~14.2 s), inside its own timeout_ms.
    assert!(took >= Duration::from_millis(3000), "{took:?}");
    // The refresh token was kept through both 429s and sent once more, never replaced by a
    // fallback grant.
    assert_eq!(
        (s.refresh_token, s.client_credentials, s.refresh_reuse),
        (3, 1, 0)
    );
}
