//! Keys nobody can renew must not starve the ones that can. A background renewal holds one of
//! the few renewal workers only while the token it replaces can still be served (until its hard
//! margin): once that is past, the job is dropped and the next caller renews in the foreground.
//! Without that bound, eight keys of a host that hangs (each renewal held to timeout_ms, 5 s
//! here) keep all four workers busy until 7.4 s, and a live host's key reaches its margin with its
//! renewal still queued behind them. (Own process: the workers are not shared with other tests.)

mod common;

use findity::ffi::FINDITY_OK;
use std::time::{Duration, Instant};

const ID: &str = "client-dead";
const SECRET: &str = "secret-dead-3e9a";

fn sleep_until(t0: Instant, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms).saturating_sub(t0.elapsed()));
}

#[test]
fn a_hanging_host_does_not_starve_the_live_one() {
    assert_eq!(common::set_option("timeout_ms", "5000"), FINDITY_OK);
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
    dead.set_latency(10_000);
    sleep_until(t0, 2400);
    // Eight background renewals against the hanging host: four run, four wait in the queue.
    for i in 0..8 {
        common::token(&dead_url, ID, SECRET, Some(&format!("d-{i}"))).unwrap();
    }
    sleep_until(t0, 4700);
    // The live key is stale now: its renewal is queued behind whatever the dead host still holds.
    assert_eq!(common::token(&live_url, ID, SECRET, None).unwrap(), first);
    // Until its hard margin (6 s) the live key's token is served; its renewal must be done by
    // then, in the background.
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
    assert_eq!(live.stats().client_credentials, 1);
}
