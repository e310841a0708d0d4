//! Thousands of keys: entry lifecycle, bounded background renewal, invalidation by token,
//! unresolvable hosts (the throttle: tests/throttle.rs). (One process: the options
//! set here, timeout_ms 3000, apply to this file's tests.)

mod common;

use findity::ffi::*;
use findity_emulator::Emulator;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

const ID: &str = "client-many";
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

/// 3000 users from 8 threads, then each one's token rejected and asked for again: never the
/// rejected token again (through any path, the per-thread snapshot included), one
/// authorization grant per user, the renewals through refresh tokens.
#[test]
fn three_thousand_users_then_invalidate_each() {
    const USERS: usize = 3000;
    let emu = emulator(3600);
    let url = emu.url();
    let stale = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    common::over_threads(USERS, |i| {
        let user = format!("employee-{i}");
        match token(&url, Some(&user)) {
            Ok(_) => {}
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    common::over_threads(USERS, |i| {
        let user = format!("employee-{i}");
        let Ok(before) = token(&url, Some(&user)) else {
            failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        invalidate_token(&url, Some(&user), &before);
        match token(&url, Some(&user)) {
            Ok(after) if after == before => {
                stale.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let st = emu.stats();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed calls");
    assert_eq!(
        stale.load(Ordering::Relaxed),
        0,
        "tokens served after invalidate"
    );
    assert_eq!(
        st.authorization_grant, USERS as u64,
        "one authorization grant per user"
    );
    assert_eq!(
        st.refresh_token, USERS as u64,
        "renewed with refresh tokens"
    );
    assert_eq!(st.refresh_reuse + st.code_reuse, 0);
}

/// 600 keys due for renewal at once: the renewals run on the renewal workers (4), never a
/// thread each, and callers holding a valid token are served without waiting for them.
#[test]
fn six_hundred_renewals_on_four_workers() {
    const USERS: usize = 600;
    let emu = emulator(6);
    let url = emu.url();
    let t0 = Instant::now();
    common::over_threads(USERS, |i| {
        token(&url, Some(&format!("renew-{i}"))).unwrap();
    });
    let warm = t0.elapsed();
    assert!(warm < Duration::from_millis(2500), "warm-up took {warm:?}");
    emu.set_latency(100);
    let base = common::library_threads();
    // Stale from 3.0–3.4 s of age (window jittered in [2.6, 3] s of a 6 s token), margin at 4.5 s.
    std::thread::sleep(Duration::from_millis(3400).saturating_sub(t0.elapsed()));
    let done = AtomicBool::new(false);
    let (max_threads, max_in_flight, slowest) = std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let (mut threads, mut in_flight) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                threads = threads.max(common::library_threads());
                in_flight = in_flight.max(emu.stats().in_flight);
                std::thread::sleep(Duration::from_millis(5));
            }
            (threads, in_flight)
        });
        let slowest = Arc::new(AtomicU64::new(0));
        common::over_threads(USERS, |i| {
            let t = Instant::now();
            token(&url, Some(&format!("renew-{i}"))).unwrap();
            slowest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        });
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::Relaxed);
        let (t, f) = monitor.join().unwrap();
        (t, f, slowest.load(Ordering::Relaxed))
    });
    eprintln!(
        "600 due: library threads {base} -> at most {max_threads}, at most {max_in_flight} requests in flight, slowest call {slowest} us"
    );
    assert!(max_threads <= base + 4, "threads {base} -> {max_threads}");
    assert!(max_in_flight <= 4, "{max_in_flight} requests in flight");
    assert!(emu.stats().refresh_token > 0, "renewals ran");
    // A generous bound that catches a caller waiting on the network (100 ms a request).
    assert!(
        slowest < 90_000,
        "a caller with a valid token waited {slowest} us"
    );
}

/// A host name that does not resolve: one quick retry, then NETWORK naming the host.
#[test]
fn unresolvable_host_fails_fast() {
    setup();
    let t0 = Instant::now();
    let (rc, _, msg) = common::token(
        "https://findity-test-no-such-host.invalid",
        ID,
        SECRET,
        None,
    )
    .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(rc, FINDITY_ERR_NETWORK, "{msg}");
    assert!(
        msg.contains("cannot resolve host \"findity-test-no-such-host.invalid\""),
        "{msg}"
    );
}
