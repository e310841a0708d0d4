//! A queued background renewal whose token expired while it waited for a worker is dropped,
//! not sent: the next caller, if any, renews in the foreground, and keys nobody asks for any
//! more cost no request. Here four renewal workers are held by a hanging host (each request
//! held to timeout_ms); four more renewals of that host wait in the queue until their tokens
//! have expired, and must never be sent. (Own process: the workers are not shared.)

mod common;

use findity::ffi::FINDITY_OK;
use std::time::Instant;

const ID: &str = "client-dead";
const SECRET: &str = "secret-dead-3e9a";

#[test]
fn renewals_whose_tokens_expired_in_the_queue_are_dropped() {
    assert_eq!(common::set_option("timeout_ms", "4000"), FINDITY_OK);
    assert_eq!(common::set_option("renewal_threads", "4"), FINDITY_OK);
    // 4 s tokens: stale from 2.0–2.25 s of age, expired (hard margin) at 3 s.
    let dead = common::emulator(ID, SECRET, 4);
    let url = dead.url();
    let t0 = Instant::now();
    for i in 0..8 {
        common::token(&url, ID, SECRET, Some(&format!("d-{i}"))).unwrap();
    }
    let sent_before = dead.stats().refresh_token;
    dead.set_latency(10_000);
    common::sleep_until(t0, 2400);
    // Eight background renewals: four run (and hang until 6.4 s), four wait in the queue.
    for i in 0..8 {
        common::token(&url, ID, SECRET, Some(&format!("d-{i}"))).unwrap();
    }
    // The hanging ones give up at 6.4 s; the queued ones' tokens expired at about 3 s.
    common::sleep_until(t0, 7500);
    assert_eq!(
        dead.stats().refresh_token - sent_before,
        4,
        "only the four renewals that had a worker were sent"
    );
}
