//! `make scale`: the many-keys figures of BENCHMARKS.md (ignored by `cargo test`; run with
//! `--ignored --test-threads 1 --nocapture`). Each scenario prints `SCALE name: figures` lines
//! that bench/scale.sh copies into BENCHMARKS.md. Pass/fail tests of the same behaviours are in
//! tests/many_keys.rs, tests/throttle.rs and tests/eviction.rs; these measure.

mod common;

use findity::ffi::*;
use findity_emulator::{Emulator, Fault};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ID: &str = "client-scale";
const SECRET: &str = "secret-scale-77aa";

fn emulator(lifetime: i64) -> Emulator {
    common::emulator(ID, SECRET, lifetime)
}

fn token(url: &str, user: Option<&str>) -> Result<String, (u32, u16, String)> {
    common::token(url, ID, SECRET, user)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn stats() -> FindityStats {
    let mut s = FindityStats::default();
    unsafe { findity_stats(&mut s, std::mem::size_of::<FindityStats>()) };
    s
}

/// `FINDITY_SCALE_ONLY=storm,warmup` runs only those scenarios.
fn want(name: &str) -> bool {
    std::env::var("FINDITY_SCALE_ONLY")
        .map_or(true, |only| only.split(',').any(|n| n.trim() == name))
}

#[test]
#[ignore]
fn scale() {
    println!(); // the harness's "test scale ... " is not a line of figures
    assert_eq!(common::set_option("timeout_ms", "30000"), FINDITY_OK);

    // 1. 3000 users from 8 threads, then each token rejected and asked for again.
    if want("invalidate") {
        let emu = emulator(3600);
        let url = emu.url();
        let t0 = Instant::now();
        common::over_threads(3000, |i| {
            token(&url, Some(&format!("e-{i}"))).unwrap();
        });
        let warm = t0.elapsed();
        let stale = AtomicU64::new(0);
        common::over_threads(3000, |i| {
            let u = format!("e-{i}");
            let a = token(&url, Some(&u)).unwrap();
            let (cu, ci, ca, cuser) =
                (common::c(&url), common::c(ID), common::c(&a), common::c(&u));
            unsafe {
                findity_invalidate_token(cu.as_ptr(), ci.as_ptr(), cuser.as_ptr(), ca.as_ptr())
            };
            if token(&url, Some(&u)).unwrap() == a {
                stale.fetch_add(1, Ordering::Relaxed);
            }
        });
        let st = emu.stats();
        println!(
            "SCALE invalidate: 3000 users, 8 threads: {} stale tokens after invalidate, {} authorization grants, {} refresh renewals; cold pass {:.1} s",
            stale.load(Ordering::Relaxed),
            st.authorization_grant,
            st.refresh_token,
            warm.as_secs_f64()
        );
    }

    // 2. 600 keys due for renewal at once, 100 ms per request.
    if want("renewal") {
        let emu = emulator(6);
        let url = emu.url();
        let t0 = Instant::now();
        common::over_threads(600, |i| {
            token(&url, Some(&format!("r-{i}"))).unwrap();
        });
        emu.set_latency(100);
        let base = common::library_threads();
        std::thread::sleep(Duration::from_millis(3400).saturating_sub(t0.elapsed()));
        let done = AtomicBool::new(false);
        let slowest = AtomicU64::new(0);
        let (threads, in_flight) = std::thread::scope(|s| {
            let m = s.spawn(|| {
                let (mut t, mut f) = (0, 0);
                while !done.load(Ordering::Relaxed) {
                    t = t.max(common::library_threads());
                    f = f.max(emu.stats().in_flight);
                    std::thread::sleep(Duration::from_millis(2));
                }
                (t, f)
            });
            common::over_threads(600, |i| {
                let t = Instant::now();
                token(&url, Some(&format!("r-{i}"))).unwrap();
                slowest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            });
            std::thread::sleep(Duration::from_millis(300));
            done.store(true, Ordering::Relaxed);
            m.join().unwrap()
        });
        println!(
            "SCALE renewal: 600 keys due: library threads {base} before, at most {threads} during (renewal_threads 4); at most {in_flight} requests in flight; slowest caller with a valid token {:.1} ms",
            slowest.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }

    // 3. Every request answered 429 (Retry-After 2 s) for 6 s while 600 keys are due.
    if want("storm") {
        let emu = emulator(40);
        let url = emu.url();
        let t0 = Instant::now();
        token(&url, None).unwrap();
        common::over_threads(600, |i| {
            token(&url, Some(&format!("s-{i}"))).unwrap();
        });
        // 40 s tokens: stale from 20–22.5 s of age, valid until 30 s.
        std::thread::sleep(Duration::from_millis(22_600).saturating_sub(t0.elapsed()));
        let s0 = stats();
        let before = emu.stats();
        emu.add_fault(Fault::parse("any", "429", 0).unwrap().retry_after(2));
        let storm = Instant::now();
        let failed = AtomicU64::new(0);
        let mut first_429: Option<Instant> = None;
        while storm.elapsed() < Duration::from_secs(6) {
            common::over_threads(600, |i| {
                if token(&url, Some(&format!("s-{i}"))).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
            if first_429.is_none()
                && emu.stats().throttled + emu.stats().faults_served > before.faults_served
            {
                first_429 = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let during = emu.stats();
        emu.clear_faults();
        let sent = |s: &findity_emulator::Stats| s.token_requests + s.authorization_grant;
        let storm_requests = sent(&during) - sent(&before);
        let storm_429 = during.faults_served - before.faults_served;
        std::thread::sleep(Duration::from_millis(2500));
        common::over_threads(600, |i| {
            token(&url, Some(&format!("s-{i}"))).unwrap();
        });
        std::thread::sleep(Duration::from_millis(4000));
        let s1 = stats();
        let after = emu.stats();
        println!(
            "SCALE storm: 6 s of 429 (Retry-After 2 s), 600 keys due, 4 renewal workers: {storm_requests} requests during the storm, {storm_429} answered 429 (first wave + one probe per Retry-After: at most 4 + 3), {} failed calls for keys holding a valid token, fallbacks {} (client_credentials {} , authorization grants {} for 600 users), refresh reuse {}, {} keys renewed by refresh token after the storm",
            failed.load(Ordering::Relaxed),
            s1.fallbacks - s0.fallbacks,
            after.client_credentials,
            after.authorization_grant,
            after.refresh_reuse,
            after.refresh_token
        );
    }

    // 4. Warm-up: 200 users, 8 threads, a server allowing 20 token requests per second.
    if want("warmup") {
        let emu = emulator(3600);
        emu.set_throttle(Some(
            findity_emulator::throttle::parse("20/1000")
                .unwrap()
                .unwrap(),
        ));
        let url = emu.url();
        let t0 = Instant::now();
        common::over_threads(200, |i| {
            token(&url, Some(&format!("w-{i}"))).unwrap();
        });
        let took = t0.elapsed().as_secs_f64();
        let st = emu.stats();
        let accepted =
            st.client_credentials + st.authorization_grant + st.authorization_code - st.throttled;
        // The server admits 20 of the client's requests in any second (a code exchange counts
        // for its code's client): after the first 20, 20 a second.
        let ideal = (accepted as f64 - 20.0) / 20.0;
        println!(
            "SCALE warm-up: 200 users, 8 threads, server limit 20 requests/s per client: {} answered 429 ({:.1} % of {} requests), {took:.1} s, server-limited ideal {ideal:.1} s: {:.2}x",
            st.throttled,
            100.0 * st.throttled as f64 / (accepted + st.throttled) as f64,
            accepted + st.throttled,
            took / ideal
        );
    }

    // 5. Memory per cached key: 5000 users, the emulator in its own process (so its token
    // store is not counted), and a baseline key first (the HTTP client, the first shard).
    if want("memory") {
        let bin =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/findity-emulator");
        let url_file =
            std::env::temp_dir().join(format!("findity-scale-{}.url", std::process::id()));
        let _ = std::fs::remove_file(&url_file);
        let mut child = std::process::Command::new(&bin)
            .args([
                "--port",
                "0",
                "--quiet",
                "--client",
                &format!("{ID}:{SECRET}"),
                "--url-file",
            ])
            .arg(&url_file)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (cargo build -p findity-emulator)", bin.display()));
        let t0 = Instant::now();
        let url = loop {
            if let Ok(u) = std::fs::read_to_string(&url_file) {
                if !u.trim().is_empty() {
                    break u.trim().to_string();
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "emulator did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        token(&url, Some("warm-0")).unwrap();
        unsafe { libc::malloc_trim(0) };
        let r0 = rss_kib();
        common::over_threads(5000, |i| {
            token(&url, Some(&format!("m-{i}"))).unwrap();
        });
        let r1 = rss_kib();
        // What the allocator still holds from 10,000 HTTP exchanges is not the cache's: the
        // same figure after glibc hands free pages back.
        unsafe { libc::malloc_trim(0) };
        let r2 = rss_kib();
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&url_file);
        println!(
            "SCALE memory: 5000 users cached (emulator in its own process): RSS {r0} -> {r1} KiB, {:.2} KiB per key; {r2} KiB after malloc_trim, {:.2} KiB per key",
            (r1.saturating_sub(r0)) as f64 / 5000.0,
            (r2.saturating_sub(r0)) as f64 / 5000.0
        );
    }

    // 6. An unresolvable host with timeout_ms 30000.
    if want("dns") {
        let t0 = Instant::now();
        let r = common::token(
            "https://findity-scale-no-such-host.invalid",
            ID,
            SECRET,
            None,
        );
        println!(
            "SCALE dns: unresolvable host, timeout_ms 30000: status {} after {:.0} ms",
            r.err().map_or(0, |e| e.0),
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }

    // 7. 32 threads get a 401 with the same token.
    if want("invalidate_token") {
        let emu = emulator(3600);
        let url = emu.url();
        let a = token(&url, None).unwrap();
        std::thread::scope(|s| {
            for _ in 0..32 {
                let (url, a) = (&url, &a);
                s.spawn(move || {
                    let (cu, ci, ca) = (common::c(url), common::c(ID), common::c(a));
                    unsafe {
                        findity_invalidate_token(
                            cu.as_ptr(),
                            ci.as_ptr(),
                            std::ptr::null(),
                            ca.as_ptr(),
                        )
                    };
                    token(url, None).unwrap();
                });
            }
        });
        let st = emu.stats();
        println!(
            "SCALE invalidate_token: 32 threads with a 401 for the same token: {} renewal(s)",
            st.refresh_token + st.client_credentials - 1
        );
    }
}
