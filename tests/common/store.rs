//! Shared-cache tests run REAL processes: the test binary re-runs itself with
//! `--exact child` and FINDITY_TEST_CHILD set, and the child (see `child_main`) calls the C ABI
//! as a connector would and prints one `RESULT ...` line.
#![allow(dead_code)]

use crate::common::{c, set_option, token};
use findity::ffi::*;
use findity_emulator::{Config, Emulator, Stats};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ID: &str = "store-client";
pub const SECRET: &str = "store-secret-0123456789";

pub fn emulator(lifetime: i64) -> Emulator {
    Emulator::start(Config {
        lifetime_secs: lifetime,
        clients: vec![(ID.into(), SECRET.into())],
        quiet: true,
        ..Config::default()
    })
    .expect("emulator starts")
}

/// What a child does: environment variables read by `child_main`.
#[derive(Clone)]
pub struct Job {
    pub url: String,
    pub store: String,
    pub secret: String,
    pub user: Option<String>,
    pub threads: u32,
    /// Run for this long (calls back to back with `pause_ms` between), or make one call.
    pub secs: f64,
    pub pause_ms: u64,
    pub timeout_ms: u64,
    pub mode: String,
    pub env: Vec<(String, String)>,
}

impl Job {
    pub fn new(url: &str, store: &str) -> Job {
        Job {
            url: url.into(),
            store: store.into(),
            secret: SECRET.into(),
            user: None,
            threads: 1,
            secs: 0.0,
            pause_ms: 0,
            timeout_ms: 10_000,
            mode: String::new(),
            env: Vec::new(),
        }
    }

    pub fn user(mut self, u: &str) -> Job {
        self.user = Some(u.into());
        self
    }

    pub fn spawn(&self) -> Child {
        // Under an emulator (qemu-user cannot be registered with binfmt_misc here), children
        // are started through it: FINDITY_TEST_CHILD_RUNNER="qemu-aarch64 -L /usr/...".
        let runner = std::env::var("FINDITY_TEST_CHILD_RUNNER").unwrap_or_default();
        let mut runner = runner.split_whitespace();
        let mut cmd = match runner.next() {
            Some(prog) => {
                let mut c = Command::new(prog);
                c.args(runner).arg(std::env::current_exe().unwrap());
                c
            }
            None => Command::new(std::env::current_exe().unwrap()),
        };
        cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
            .env("FINDITY_TEST_CHILD", "1")
            .env("CHILD_URL", &self.url)
            .env("CHILD_STORE", &self.store)
            .env("CHILD_SECRET", &self.secret)
            .env("CHILD_THREADS", self.threads.to_string())
            .env("CHILD_SECS", self.secs.to_string())
            .env("CHILD_PAUSE_MS", self.pause_ms.to_string())
            .env("CHILD_TIMEOUT_MS", self.timeout_ms.to_string())
            .env("CHILD_MODE", &self.mode)
            .env_remove("FINDITY_SHARED_CACHE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.user {
            Some(u) => cmd.env("CHILD_USER", u),
            None => cmd.env_remove("CHILD_USER"),
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.spawn().expect("child starts")
    }

    /// Run and wait; the child's RESULT.
    pub fn run(&self) -> Outcome {
        finish(self.spawn())
    }
}

/// A child's RESULT line: ok, fail, first_error, ms (slowest call), and its FindityStats.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub values: HashMap<String, String>,
    pub stderr: String,
}

impl Outcome {
    pub fn n(&self, k: &str) -> u64 {
        self.values
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no {k} in the child's result: {:?}\n{}",
                    self.values, self.stderr
                )
            })
    }

    pub fn s(&self, k: &str) -> &str {
        self.values.get(k).map_or("", String::as_str)
    }
}

pub fn finish(child: Child) -> Outcome {
    let out = child.wait_with_output().expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no RESULT from the child: {stdout}\n{stderr}"));
    let values = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Outcome { values, stderr }
}

/// The child's side. Returns at once in the parent test run.
pub fn child_main() {
    if std::env::var("FINDITY_TEST_CHILD").is_err() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let url = var("CHILD_URL");
    let secret = var("CHILD_SECRET");
    let user = std::env::var("CHILD_USER").ok();
    let threads: u32 = var("CHILD_THREADS").parse().unwrap_or(1);
    let secs: f64 = var("CHILD_SECS").parse().unwrap_or(0.0);
    let pause = Duration::from_millis(var("CHILD_PAUSE_MS").parse().unwrap_or(0));
    assert_eq!(
        set_option("timeout_ms", &var("CHILD_TIMEOUT_MS")),
        FINDITY_OK
    );
    // "-env-": leave it to FINDITY_SHARED_CACHE.
    if var("CHILD_STORE") != "-env-" {
        let rc = set_option("shared_cache", &var("CHILD_STORE"));
        if rc != FINDITY_OK {
            println!("RESULT ok=0 fail=1 set_option={rc} first_error=set_option");
            std::process::exit(0);
        }
    }
    if var("CHILD_MODE") == "fork" {
        fork_mode(&url, &secret);
    }
    if var("CHILD_MODE") == "fork-sleeper" {
        fork_sleeper_mode(&url, &secret, &var("CHILD_PIDFILE"));
    }
    // A token the API refused, reported by a process that holds no entry for the key.
    if let Ok(refused) = std::env::var("CHILD_INVALIDATE") {
        let (cu, ci, ct) = (c_str(&url), c_str(ID), c_str(&refused));
        let cuser = user.as_deref().map(c_str);
        let up = cuser.as_ref().map_or(std::ptr::null(), |u| u.as_ptr());
        assert_eq!(
            unsafe { findity_invalidate_token(cu.as_ptr(), ci.as_ptr(), up, ct.as_ptr()) },
            FINDITY_OK
        );
    }
    let last_token = Arc::new(std::sync::Mutex::new(String::new()));
    let many_users = var("CHILD_MODE") == "many-users";
    let walk: u64 = var("CHILD_WALK").parse().unwrap_or(0);
    let next_user = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(String::new()));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (url, secret, user) = (url.clone(), secret.clone(), user.clone());
            let next_user = next_user.clone();
            let (ok, fail, slowest, first_error, last_token) = (
                ok.clone(),
                fail.clone(),
                slowest.clone(),
                first_error.clone(),
                last_token.clone(),
            );
            std::thread::spawn(move || loop {
                let t0 = Instant::now();
                // walk-users: users U0..U{n-1}, each asked once by this process, then stop
                // (every process walks the same list, as prefork workers serving any employee).
                if walk > 0 {
                    let i = next_user.fetch_add(1, Ordering::Relaxed);
                    if i >= walk {
                        break;
                    }
                    match token(&url, ID, &secret, Some(&format!("U{i}"))) {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => fail.fetch_add(1, Ordering::Relaxed),
                    };
                    continue;
                }
                // many-users: a new user each call (a connector walking its employees).
                let asked = if many_users {
                    Some(format!(
                        "{}-{}",
                        user.as_deref().unwrap_or("u"),
                        next_user.fetch_add(1, Ordering::Relaxed)
                    ))
                } else {
                    user.clone()
                };
                match token(&url, ID, &secret, asked.as_deref()) {
                    Ok(t) => {
                        assert!(!t.is_empty());
                        ok.fetch_add(1, Ordering::Relaxed);
                        *last_token.lock().unwrap() = t;
                    }
                    Err((rc, _, msg)) => {
                        fail.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_error.lock().unwrap();
                        if f.is_empty() {
                            *f = format!("{rc}:{}", msg.replace(' ', "_"));
                        }
                    }
                }
                slowest.fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                if Instant::now() >= end {
                    break;
                }
                std::thread::sleep(pause);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut s = FindityStats::default();
    assert_eq!(
        unsafe { findity_stats(&mut s, std::mem::size_of::<FindityStats>()) },
        FINDITY_OK
    );
    println!(
        "RESULT ok={} fail={} slowest_us={} store_hits={} store_writes={} store_lock_waits={} store_errors={} requests={} token={} first_error={}",
        ok.load(Ordering::Relaxed),
        fail.load(Ordering::Relaxed),
        slowest.load(Ordering::Relaxed),
        s.store_hits,
        s.store_writes,
        s.store_lock_waits,
        s.store_errors,
        s.client_credentials_requests
            + s.refresh_token_requests
            + s.authorization_grant_requests
            + s.authorization_code_requests,
        last_token.lock().unwrap(),
        first_error.lock().unwrap(),
    );
    std::process::exit(0);
}

/// While a thread of this process holds the key's lock (a slow request): fork a child that
/// sleeps (as a prefork master's worker or a multiprocessing child would live on) and write its
/// pid to `pidfile`. The test kills this process mid-request: the sleeping child must not keep
/// the lock. Prints `RESULT ok=...` if it is not killed.
fn fork_sleeper_mode(url: &str, secret: &str, pidfile: &str) -> ! {
    let (u, s) = (url.to_string(), secret.to_string());
    let holder = std::thread::spawn(move || token(&u, ID, &s, None).is_ok());
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: the child only sleeps and exits.
    let sleeper = unsafe { libc::fork() };
    if sleeper == 0 {
        std::thread::sleep(Duration::from_secs(60));
        unsafe { libc::_exit(0) };
    }
    std::fs::write(pidfile, sleeper.to_string()).unwrap();
    let ok = holder.join().unwrap();
    println!("RESULT ok={}", u64::from(ok));
    std::process::exit(0);
}

/// While a thread of this process holds the key's lock (a slow request): fork a child that
/// exits at once (closing its inherited copy of the lock's descriptor), and one that asks for
/// the same token, which must wait for the parent and then adopt its token. Prints
/// `RESULT fork_rc=<second child's exit status> ok=<parent's call ok>`.
fn fork_mode(url: &str, secret: &str) -> ! {
    let (u, s) = (url.to_string(), secret.to_string());
    let holder = std::thread::spawn(move || token(&u, ID, &s, None).is_ok());
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: the children call only what the library supports after fork, then _exit.
    let quitter = unsafe { libc::fork() };
    if quitter == 0 {
        unsafe { libc::_exit(0) };
    }
    let asker = unsafe { libc::fork() };
    if asker == 0 {
        let t0 = Instant::now();
        let got = token(url, ID, secret, None).is_ok();
        let waited = t0.elapsed() >= Duration::from_millis(500);
        let mut st = FindityStats::default();
        unsafe { findity_stats(&mut st, std::mem::size_of::<FindityStats>()) };
        let code = match (got, waited, st.store_hits) {
            (true, true, 1) => 0,
            (false, _, _) => 1,
            (_, false, _) => 2,
            _ => 3,
        };
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(quitter, &mut status, 0) };
    unsafe { libc::waitpid(asker, &mut status, 0) };
    let ok = holder.join().unwrap();
    println!(
        "RESULT fork_rc={} ok={}",
        libc::WEXITSTATUS(status),
        u64::from(ok)
    );
    std::process::exit(0);
}

/// Token and grant requests the emulator saw.
pub fn requests(s: &Stats) -> u64 {
    s.token_requests + s.authorization_grant
}

/// A fresh store directory under the target dir (0700 created by the library).
pub fn temp_dir(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir().join(format!(
        "findity-store-test-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&base);
    base.join("cache").to_string_lossy().into_owned()
}

/// Several children at once; their outcomes.
pub fn all(jobs: Vec<Job>) -> Vec<Outcome> {
    let children: Vec<Child> = jobs.iter().map(Job::spawn).collect();
    children.into_iter().map(finish).collect()
}

/// Sums of a RESULT field over outcomes.
pub fn sum(outcomes: &[Outcome], k: &str) -> u64 {
    outcomes.iter().map(|o| o.n(k)).sum()
}

pub fn c_str(s: &str) -> std::ffi::CString {
    c(s)
}

/// See store_file.rs's invalidate_from_another_process_reaches_the_store (same for Redis).
pub fn invalidate_elsewhere(emu: &Emulator, store: &str) {
    for user in [None, Some("E77")] {
        let job = |refused: Option<&str>| {
            let mut j = Job::new(&emu.url(), store);
            j.user = user.map(str::to_string);
            if let Some(t) = refused {
                j.env.push(("CHILD_INVALIDATE".into(), t.to_string()));
            }
            j.run()
        };
        let a = job(None);
        let t1 = a.s("token").to_string();
        assert_eq!(a.n("ok"), 1, "{:?}", a.values);
        let before = requests(&emu.stats());
        let b = job(Some(&t1));
        assert_eq!(b.n("ok"), 1, "{:?}", b.values);
        assert_ne!(
            b.s("token"),
            t1,
            "{user:?}: the refused token came back from the store"
        );
        assert_eq!(b.n("store_hits"), 0);
        let c = job(None);
        assert_eq!(
            c.s("token"),
            b.s("token"),
            "{user:?}: the store still holds the refused token"
        );
        assert_eq!(c.n("store_hits"), 1);
        // The renewal used the stored refresh token: one request.
        assert_eq!(requests(&emu.stats()) - before, 1, "{:?}", emu.stats());
    }
    let s = emu.stats();
    assert_eq!(s.refresh_reuse + s.code_reuse, 0, "{s:?}");
}

/// Issue 22: `procs` processes share `store` (or each has its own when `store` contains
/// "{p}") and walk new users for `secs` against a server allowing `max` token requests per
/// `window_ms` per client. Returns (answers 429, grants answered, token calls ok, failed).
pub fn fleet_walk(
    procs: u32,
    store: &str,
    max: u32,
    window_ms: u64,
    secs: f64,
) -> (u64, u64, u64, u64) {
    let emu = Emulator::start(Config {
        lifetime_secs: 3600,
        clients: vec![(ID.into(), SECRET.into())],
        quiet: true,
        throttle: Some((max, Duration::from_millis(window_ms))),
        ..Config::default()
    })
    .expect("emulator starts");
    let jobs = (0..procs)
        .map(|p| {
            let mut j = Job::new(&emu.url(), &store.replace("{p}", &p.to_string()));
            j.mode = "many-users".into();
            j.user = Some(format!("P{p}"));
            j.threads = 1;
            j.secs = secs;
            j.timeout_ms = 20_000;
            j
        })
        .collect();
    let out = all(jobs);
    let s = emu.stats();
    (
        s.throttled,
        requests(&s),
        sum(&out, "ok"),
        sum(&out, "fail"),
    )
}

/// The fleet benchmark (bench/fleet.sh): `procs` processes of `threads` threads, every process
/// asking once for the same `users` users' tokens, sharing `store`, against a server allowing
/// `rate` token requests per second per client (a sliding window of 1 s). Prints one line.
pub fn fleet_bench(procs: u32, threads: u32, users: u64, rate: u32, store: &str, label: &str) {
    let emu = Emulator::start(Config {
        lifetime_secs: 3600,
        clients: vec![(ID.into(), SECRET.into())],
        quiet: true,
        throttle: Some((rate, Duration::from_millis(1000))),
        ..Config::default()
    })
    .expect("emulator starts");
    let t0 = Instant::now();
    let jobs = (0..procs)
        .map(|_| {
            let mut j = Job::new(&emu.url(), store);
            j.threads = threads;
            j.secs = 0.0;
            j.timeout_ms = 60_000;
            j.env.push(("CHILD_WALK".into(), users.to_string()));
            j
        })
        .collect();
    let out = all(jobs);
    let took = t0.elapsed().as_secs_f64();
    let s = emu.stats();
    let granted: u64 = s
        .by_subject
        .iter()
        .filter(|(k, _)| k.starts_with("user:"))
        .map(|(_, n)| n)
        .sum();
    // Every user needs an authorization grant and a code exchange, plus one organization token.
    let ideal = (2 * users + 1) as f64 / rate as f64;
    println!(
        "FLEET {label}: {procs} processes x {threads} threads, {users} users, {rate} requests/s: {:.1} s ({:.2}x the server-limited {:.1} s), {} answers 429, {granted} user tokens issued, {} token+grant requests, {} calls failed",
        took,
        took / ideal,
        ideal,
        s.throttled,
        requests(&s),
        sum(&out, "fail")
    );
}

/// Issue 22: a 429 storm. `procs` processes (one thread each, walking new users) share `store`;
/// for `storm_s` seconds every token and grant request is answered 429 with Retry-After 2 s.
/// Returns the requests the server saw in the storm after its first Retry-After period (when
/// every process knows of the pause), and the storm's length in periods counted.
pub fn storm(procs: u32, store: &str, storm_s: u64) -> (u64, f64) {
    use findity_emulator::{Endpoint, Fault, FaultKind};
    let emu = emulator(3600);
    let jobs: Vec<Job> = (0..procs)
        .map(|p| {
            let mut j = Job::new(&emu.url(), &store.replace("{p}", &p.to_string()));
            j.mode = "many-users".into();
            j.user = Some(format!("S{p}"));
            j.secs = storm_s as f64 + 2.0;
            j.timeout_ms = 30_000;
            j
        })
        .collect();
    let children: Vec<Child> = jobs.iter().map(Job::spawn).collect();
    std::thread::sleep(Duration::from_millis(1000));
    for endpoint in [Endpoint::Token, Endpoint::Grant] {
        let mut f = Fault::new(endpoint, FaultKind::TooManyRequests);
        f.count = 0;
        f.retry_after = Some(2);
        emu.add_fault(f);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let before = requests(&emu.stats());
    let late = Duration::from_millis(storm_s * 1000 - 2500);
    std::thread::sleep(late);
    let seen = requests(&emu.stats()) - before;
    emu.clear_faults();
    for c in children {
        finish(c);
    }
    (seen, late.as_secs_f64() / 2.0)
}

/// Cold review: process A stores T1; the server starts failing; process B reports T1 refused
/// and its renewal fails. T1 must not stay in the store for a process C that never saw the 401.
pub fn refused_token_leaves_the_store_when_renewal_fails(store: &str) {
    use findity_emulator::{Endpoint, Fault, FaultKind};
    let emu = emulator(3600);
    let a = Job::new(&emu.url(), store).run();
    let t1 = a.s("token").to_string();
    assert_eq!(a.n("ok"), 1, "{:?}", a.values);
    let mut f = Fault::new(Endpoint::Token, FaultKind::Status(503));
    f.count = 0;
    emu.add_fault(f);
    let mut b = Job::new(&emu.url(), store);
    b.timeout_ms = 1500;
    b.env.push(("CHILD_INVALIDATE".into(), t1.clone()));
    assert_eq!(b.run().n("ok"), 0, "the server fails: B gets nothing");
    let mut c = Job::new(&emu.url(), store);
    c.timeout_ms = 1500;
    let c = c.run();
    assert_ne!(
        c.s("token"),
        t1,
        "C adopted the refused token from the store: {:?}",
        c.values
    );
    emu.clear_faults();
    // Once the server is back, the next process gets a new token (R1 was burnt by the 503).
    let d = Job::new(&emu.url(), store).run();
    assert_eq!(d.n("ok"), 1, "{:?}", d.values);
    let s = emu.stats();
    assert_eq!(s.refresh_reuse, 0, "{s:?}");
}
