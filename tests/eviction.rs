//! Entry lifecycle with a short idle time (idle_ms 100 in this process): entries come and go
//! while callers use them, memory stays bounded however many users pass, and nothing is ever
//! lost to a race with eviction. Also: a renewal worker that cannot be started.

mod common;

use findity::ffi::*;
use findity_emulator::Emulator;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

const ID: &str = "client-evict";
const SECRET: &str = "secret-evict-2d9a";

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        assert_eq!(common::set_option("idle_ms", "100"), FINDITY_OK);
        assert_eq!(common::set_option("timeout_ms", "3000"), FINDITY_OK);
    });
}

fn emulator(lifetime: i64) -> Emulator {
    setup();
    common::emulator(ID, SECRET, lifetime)
}

/// 8 threads stream 4000 distinct users (each asked for twice, with a rejected-token round in
/// between) for a few seconds while idle entries are swept every 25 ms: every call succeeds,
/// no rejected token comes back, and the cache holds far fewer entries than users seen.
#[test]
fn streaming_users_stay_bounded_and_nothing_is_lost() {
    const USERS: usize = 4000;
    let emu = emulator(3600);
    let url = emu.url();
    let failed = AtomicU64::new(0);
    let stale = AtomicU64::new(0);
    let largest = AtomicU64::new(0);
    let evicted_before = common::stats().idle_evictions;
    std::thread::scope(|s| {
        for t in 0..8 {
            let (url, failed, stale, largest) = (&url, &failed, &stale, &largest);
            s.spawn(move || {
                for i in (t..USERS).step_by(8) {
                    let user = format!("passer-{i}");
                    let Ok(a) = common::token(url, ID, SECRET, Some(&user)) else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let (u, id, tok) = (common::c(url), common::c(ID), common::c(&a));
                    let uc = common::c(&user);
                    unsafe {
                        findity_invalidate_token(u.as_ptr(), id.as_ptr(), uc.as_ptr(), tok.as_ptr())
                    };
                    match common::token(url, ID, SECRET, Some(&user)) {
                        Ok(b) if b == a => {
                            stale.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if i % 64 == 0 {
                        let n = findity::state::state().cache.len() as u64;
                        largest.fetch_max(n, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let evicted = common::stats().idle_evictions - evicted_before;
    let largest = largest.load(Ordering::Relaxed);
    eprintln!("{USERS} users: at most {largest} entries cached, {evicted} evicted");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed calls");
    assert_eq!(
        stale.load(Ordering::Relaxed),
        0,
        "rejected tokens served again"
    );
    assert!(evicted > 0, "nothing was evicted");
    assert!(
        largest < USERS as u64 / 2,
        "{largest} entries for {USERS} users"
    );
    let st = emu.stats();
    assert_eq!(st.refresh_reuse + st.code_reuse, 0);
}

/// An entry in use is never evicted: a key asked for continuously (snapshot hits included)
/// keeps its token, however long past idle_ms, while other keys come and go.
#[test]
fn an_entry_in_use_is_never_evicted() {
    let emu = emulator(3600);
    let url = emu.url();
    let first = common::token(&url, ID, SECRET, Some("steady")).unwrap();
    let t0 = Instant::now();
    let mut i = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            common::token(&url, ID, SECRET, Some("steady")).unwrap(),
            first
        );
        // New keys trigger sweeps of their shards.
        common::token(&url, ID, SECRET, Some(&format!("other-{i}"))).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        emu.stats().by_subject.get("user:steady").copied(),
        Some(1),
        "the steady key's token was issued once"
    );
}

/// No renewal worker can be started (a thread limit): calls holding a valid token are served,
/// a thread start is not attempted on every call, and when the token runs out the caller
/// renews it itself instead of waiting for a worker that never comes.
#[test]
fn no_renewal_worker_strands_nobody() {
    let emu = emulator(2);
    let url = emu.url();
    findity::cache::renewal::hooks::fail_spawns(true);
    let t0 = Instant::now();
    common::token(&url, ID, SECRET, None).unwrap();
    let attempts0 = findity::cache::renewal::hooks::spawn_attempts();
    let mut calls = 0;
    let mut slowest = Duration::ZERO;
    // Stale from about 1 s; expired (margin) at 1.5 s; keep asking until 3 s.
    while t0.elapsed() < Duration::from_millis(3000) {
        let t = Instant::now();
        let got = common::token(&url, ID, SECRET, None);
        slowest = slowest.max(t.elapsed());
        assert!(got.is_ok(), "{got:?}");
        calls += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    findity::cache::renewal::hooks::fail_spawns(false);
    let attempts = findity::cache::renewal::hooks::spawn_attempts() - attempts0;
    eprintln!("{calls} calls, {attempts} thread starts tried, slowest {slowest:?}");
    assert!(attempts >= 1, "no renewal was due");
    assert!(attempts <= 2, "{attempts} thread starts for {calls} calls");
    assert!(emu.stats().refresh_token >= 1, "renewed in the foreground");
    assert!(
        slowest < Duration::from_secs(2),
        "a caller waited {slowest:?}"
    );
}

/// A caller whose request outlasts idle_ms (a 600 ms authorization grant against 100 ms)
/// holds its entry: sweeps run by other threads' new keys meanwhile must not drop it, or its
/// token and refresh token would land in an entry nobody can reach and the next call would
/// need a new authorization grant.
#[test]
fn an_entry_held_by_a_slow_request_is_not_evicted() {
    let emu = emulator(3600);
    let url = emu.url();
    common::token(&url, ID, SECRET, None).unwrap();
    emu.add_fault(findity_emulator::Fault::parse("grant", "delay:600", 1).unwrap());
    std::thread::scope(|s| {
        let slow = s.spawn(|| common::token(&url, ID, SECRET, Some("slow-one")).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        // Meanwhile new keys arrive in every shard, sweeping as they go.
        let mut i = 0;
        while !slow.is_finished() {
            common::token(&url, ID, SECRET, Some(&format!("sweeper-{i}"))).unwrap();
            i += 1;
        }
        let first = slow.join().unwrap();
        assert!(i > 50, "only {i} new keys during the slow request");
        assert_eq!(
            common::token(&url, ID, SECRET, Some("slow-one")).unwrap(),
            first,
            "the token landed in the entry callers find"
        );
    });
    assert_eq!(
        emu.stats().by_subject.get("user:slow-one").copied(),
        Some(1)
    );
}
