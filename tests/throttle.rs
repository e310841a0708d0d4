//! The host-wide throttle: a 429 pauses every token request to that base URL, one probe after
//! a pause, pacing learnt from the server, refresh tokens kept through it. Its own process, so
//! the renewal workers are not busy with another file's keys. (timeout_ms 3000 here.)

mod common;

use findity::ffi::*;
use findity_emulator::{Emulator, Fault, Grant};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

const ID: &str = "client-throttle";
const SECRET: &str = "secret-many-8c1f";

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| assert_eq!(common::set_option("timeout_ms", "3000"), FINDITY_OK));
}

fn emulator(lifetime: i64) -> Emulator {
    setup();
    common::emulator(ID, SECRET, lifetime)
}

fn token(url: &str, user: Option<&str>) -> Result<String, (u32, u16, String)> {
    common::token(url, ID, SECRET, user)
}

fn invalidate_token(url: &str, user: Option<&str>, token: &str) {
    let (u, id, t) = (common::c(url), common::c(ID), common::c(token));
    let user = user.map(common::c);
    let p = user.as_ref().map_or(std::ptr::null(), |u| u.as_ptr());
    let rc = unsafe { findity_invalidate_token(u.as_ptr(), id.as_ptr(), p, t.as_ptr()) };
    assert_eq!(rc, FINDITY_OK);
}

/// A server answering 429 to everything for 2 s (Retry-After 1): after the first 429 at most
/// one request per Retry-After period (a probe) plus what was already in flight; callers with
/// valid tokens keep being served; no refresh token is discarded, and after the storm every
/// key renews with its refresh token.
#[test]
fn throttle_storm_keeps_refresh_tokens() {
    const USERS: usize = 50;
    let emu = emulator(16);
    let url = emu.url();
    let t0 = Instant::now();
    token(&url, None).unwrap();
    common::over_threads(USERS, |i| {
        token(&url, Some(&format!("storm-{i}"))).unwrap();
    });
    // Stale from 8–9 s of age (16 s tokens), valid until 12 s.
    std::thread::sleep(Duration::from_millis(9200).saturating_sub(t0.elapsed()));
    let before = emu.stats();
    emu.add_fault(Fault::parse("any", "429", 0).unwrap().retry_after(1));
    let storm = Instant::now();
    let failed = AtomicU64::new(0);
    while storm.elapsed() < Duration::from_secs(2) {
        common::over_threads(USERS, |i| {
            if token(&url, Some(&format!("storm-{i}"))).is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = emu.stats();
    emu.clear_faults();
    let sent = |s: &findity_emulator::Stats| s.token_requests + s.authorization_grant;
    let storm_requests = sent(&during) - sent(&before);
    eprintln!("2 s of 429s: {storm_requests} requests");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "calls with a valid token failed"
    );
    assert!(storm_requests >= 1, "the renewals were due and tried");
    // First wave: at most one per renewal worker (4); then one probe per second.
    assert!(
        storm_requests <= 4 + 3,
        "{storm_requests} requests during the storm"
    );
    // After the storm: every key renewed by refresh token, nothing discarded.
    std::thread::sleep(Duration::from_millis(1200));
    common::over_threads(USERS, |i| {
        token(&url, Some(&format!("storm-{i}"))).unwrap();
    });
    std::thread::sleep(Duration::from_millis(1500));
    common::over_threads(USERS, |i| {
        token(&url, Some(&format!("storm-{i}"))).unwrap();
    });
    let after = emu.stats();
    assert_eq!(
        after.client_credentials, 1,
        "no fallback to client credentials"
    );
    assert_eq!(
        after.authorization_grant, USERS as u64,
        "no fallback to new grants"
    );
    assert_eq!(after.refresh_reuse + after.code_reuse, 0);
    assert!(
        after.refresh_token >= USERS as u64,
        "renewed by refresh tokens: {}",
        after.refresh_token
    );
}

/// A refresh token answered 429 was not used by the server: it is sent again after the pause
/// (no fallback to the primary grant).
#[test]
fn throttled_refresh_token_is_resent_after_the_pause() {
    let emu = emulator(3600);
    let url = emu.url();
    let first = token(&url, None).unwrap();
    invalidate_token(&url, None, &first);
    emu.add_fault(
        Fault::parse("token", "429", 1)
            .unwrap()
            .grant(Grant::RefreshToken)
            .retry_after(1),
    );
    let t0 = Instant::now();
    let second = token(&url, None).unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        t0.elapsed()
    );
    assert_ne!(first, second);
    let st = emu.stats();
    assert_eq!(st.refresh_token, 2, "the same refresh token, sent again");
    assert_eq!(st.client_credentials, 1, "no fallback");
    assert_eq!(st.refresh_reuse, 0);
}

/// A pause longer than the caller's deadline: SERVER at once, saying until when, nothing sent.
/// Valid tokens of the same host keep being served meanwhile.
#[test]
fn pause_past_the_deadline_fails_at_once() {
    let emu = emulator(3600);
    let url = emu.url();
    let org = token(&url, None).unwrap();
    emu.add_fault(Fault::parse("any", "429", 1).unwrap().retry_after(60));
    assert!(token(&url, Some("pause-1")).is_err());
    let sent = emu.stats().token_requests + emu.stats().authorization_grant;
    let t0 = Instant::now();
    let (rc, http, msg) = token(&url, Some("pause-2")).unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(rc, FINDITY_ERR_SERVER, "{msg}");
    assert_eq!(http, 0, "no HTTP answer for this call");
    assert!(
        msg.contains("throttling") && msg.contains("until") && msg.contains("GMT"),
        "{msg}"
    );
    assert_eq!(
        emu.stats().token_requests + emu.stats().authorization_grant,
        sent,
        "nothing sent"
    );
    assert_eq!(
        token(&url, None).unwrap(),
        org,
        "the valid token is still served"
    );
}

/// Warm-up of 60 users (120 requests) from 8 threads against a server allowing 20 token
/// requests per second per client: pacing learnt from its first 429s keeps them few.
#[test]
fn warm_up_against_a_throttling_server() {
    const USERS: usize = 60;
    let emu = emulator(3600);
    emu.set_throttle(Some(
        findity_emulator::throttle::parse("20/1000")
            .unwrap()
            .unwrap(),
    ));
    let url = emu.url();
    let t0 = Instant::now();
    let failed = AtomicU64::new(0);
    common::over_threads(USERS, |i| {
        if let Err(e) = token(&url, Some(&format!("warm-{i}"))) {
            eprintln!("warm-{i}: {e:?}");
            failed.fetch_add(1, Ordering::Relaxed);
        }
    });
    let st = emu.stats();
    eprintln!(
        "warm-up: {USERS} users in {:.1} s, {} answered 429",
        t0.elapsed().as_secs_f64(),
        st.throttled
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(st.throttled <= 12, "{} requests answered 429", st.throttled);
}
