//! Soak: 8 threads mixing organization and user tokens, invalidations and cache clears against
//! 2-second tokens while recoverable faults are injected. Afterwards: no single-use grant used
//! twice, no failed call (every fault is one a retry or fallback absorbs), far fewer token
//! requests than calls, and no growth of threads or resident memory after warm-up.
//! FINDITY_SOAK_SECS sets the length: 5 s in the test command, 60 s in `make soak`.

mod common;

use findity::ffi::*;
use findity_emulator::{Config, Emulator, Fault};
use std::time::{Duration, Instant};

const ID: &str = "soak-client";
const SECRET: &str = "soak-secret-8e21aa";

fn token(url: &str, user: Option<&str>) -> Result<(), String> {
    common::token(url, ID, SECRET, user)
        .map(drop)
        .map_err(|(rc, _, msg)| format!("status {rc}: {msg}"))
}

fn invalidate(url: &str, user: Option<&str>) {
    common::invalidate(url, ID, user)
}

/// (threads, resident KiB) of this process.
fn footprint() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

#[test]
fn soak() {
    let secs: u64 = std::env::var("FINDITY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let emu = Emulator::start(Config {
        lifetime_secs: 2,
        clients: vec![(ID.into(), SECRET.into())],
        quiet: true,
        ..Config::default()
    })
    .unwrap();
    let url = emu.url();
    let users = [None, Some("soak-a"), Some("soak-b"), Some("soak-c")];
    token(&url, None).unwrap();
    // Faults a client must absorb: a 5xx, a 429 with a short Retry-After, a refresh cut off or
    // refused, each on every Nth matching request (per request, not per unit of time: however
    // slow the machine or the callers, the share of faulted requests stays the same, so a call's
    // retries cannot all meet one). Periods are coprime so the kinds do not line up.
    for (q, every) in [
        ("endpoint=token&kind=status:503", 7),
        ("endpoint=grant&kind=status:502", 5),
        ("endpoint=token&kind=429&retry_after=0", 11),
        ("endpoint=token&grant=refresh_token&kind=reset", 4),
        ("endpoint=token&grant=refresh_token&kind=invalid_grant", 9),
    ] {
        let params = q.split('&').map(|kv| kv.split_once('=').unwrap());
        emu.add_fault(Fault::from_params(params).unwrap().count(0).every(every));
    }
    // The library's own threads once it is in use (the HTTP client's runtime), before the soak.
    let base_threads = common::library_threads();
    let start = Instant::now();
    let warm = Duration::from_secs(secs).mul_f64(0.3);
    let (mut warm_fp, mut calls, mut errors) = ((0, 0), 0usize, Vec::new());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let url = url.clone();
                s.spawn(move || {
                    let (mut n, mut errs) = (0usize, Vec::new());
                    while start.elapsed() < Duration::from_secs(secs) {
                        let user = users[(t + n) % users.len()];
                        if let Err(e) = token(&url, user) {
                            errs.push(e);
                        }
                        if n % 97 == 13 {
                            invalidate(&url, user);
                        }
                        if t == 0 && n % 700 == 699 {
                            findity_clear_cache();
                        }
                        n += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    (n, errs)
                })
            })
            .collect();
        std::thread::sleep(warm);
        warm_fp = footprint();
        for w in workers {
            let (n, e) = w.join().unwrap();
            calls += n;
            errors.extend(e);
        }
    });
    // Background refreshes still landing finish within the timeout; give them a moment.
    let settle = Instant::now();
    while common::library_threads() > base_threads + 4 && settle.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let end_threads = common::library_threads();
    let end_fp = footprint();
    let st = emu.stats();
    let requests = st.client_credentials + st.refresh_token + st.authorization_code;
    eprintln!(
        "soak {secs} s: {calls} calls, {requests} token requests, {} faults served, library threads {base_threads} before, {end_threads} after; RSS {} -> {} KiB",
        st.faults_served, warm_fp.1, end_fp.1
    );
    assert!(
        errors.is_empty(),
        "{} failed calls, first: {}",
        errors.len(),
        errors[0]
    );
    assert_eq!(st.refresh_reuse, 0, "a refresh token was used twice");
    assert_eq!(st.code_reuse, 0, "a code was used twice");
    assert!(st.faults_served > 0, "no fault was injected");
    assert!(
        requests * 10 < calls as u64,
        "{requests} requests for {calls} calls"
    );
    // Counted before the soak started its own threads: any library thread left over shows,
    // beyond the renewal workers (at most renewal_threads, 4 by default).
    assert!(
        end_threads <= base_threads + 4,
        "library threads grew: {base_threads} -> {end_threads}"
    );
    assert!(
        end_fp.1 < warm_fp.1 + 8 * 1024,
        "RSS grew: {} -> {} KiB",
        warm_fp.1,
        end_fp.1
    );
}
