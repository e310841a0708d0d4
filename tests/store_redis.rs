//! The Redis store (shared_cache = "redis://...") across REAL processes, against a real
//! redis-server (Debian's package). `make test-store` runs this through scripts/redis.sh, which
//! installs redis-server when missing, starts one on a free loopback port (no persistence) and
//! sets FINDITY_TEST_REDIS_URL and FINDITY_TEST_REDIS_SERVER. The outage test starts (and
//! stops) a server of its own with that binary. Outside `make test` without those variables
//! the tests say loudly that they are skipped; inside it (FINDITY_MAKE_TEST=1) they fail.

mod common;
#[path = "common/store.rs"]
mod store;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use store::*;

#[test]
fn child() {
    child_main();
}

fn env_or_skip(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("FINDITY_MAKE_TEST").is_err(),
                "{var} is not set: run the Redis tests through scripts/redis.sh (make test-store)"
            );
            eprintln!("\n!!!!! SKIPPED: {var} is not set; run `make test-store` to test the Redis store !!!!!\n");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server of our own, no persistence, stopped when dropped.
struct Server {
    child: Option<Child>,
    bin: String,
    port: u16,
}

impl Server {
    fn start(bin: &str, port: u16) -> Server {
        let mut s = Server {
            child: None,
            bin: bin.to_string(),
            port,
        };
        s.restart();
        s
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn restart(&mut self) {
        let port = self.port.to_string();
        let child = Command::new(&self.bin)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One Redis database per test (the shared server has 16), so tests do not see each other's
/// records; the emulator's URL differs per test anyway.
fn shared_url(db: u32) -> Option<String> {
    let url = env_or_skip("FINDITY_TEST_REDIS_URL")?;
    let base = url
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or(url.as_str(), |(b, tail)| {
            if tail.parse::<u32>().is_ok() {
                b
            } else {
                url.as_str()
            }
        });
    Some(format!("{}/{db}", base.trim_end_matches('/')))
}

#[test]
fn sixteen_processes_one_user_token_three_requests() {
    let Some(redis) = shared_url(1) else { return };
    let emu = emulator(3600);
    let out = all((0..16)
        .map(|_| Job::new(&emu.url(), &redis).user("E1"))
        .collect());
    assert_eq!(
        sum(&out, "ok"),
        16,
        "{:?}",
        out.iter().map(|o| &o.values).collect::<Vec<_>>()
    );
    let s = emu.stats();
    assert_eq!(requests(&s), 3, "{s:?}");
    assert_eq!((s.refresh_reuse, s.code_reuse), (0, 0));
    assert_eq!(sum(&out, "store_hits"), 15);
    // Sequential runs after that: no request at all.
    for _ in 0..5 {
        assert_eq!(
            Job::new(&emu.url(), &redis)
                .user("E1")
                .run()
                .n("store_hits"),
            1
        );
    }
    assert_eq!(requests(&emu.stats()), 3);
}

#[test]
fn wrong_secret_gets_nothing_from_redis() {
    let Some(redis) = shared_url(2) else { return };
    let emu = emulator(3600);
    assert_eq!(Job::new(&emu.url(), &redis).run().n("ok"), 1);
    let mut wrong = Job::new(&emu.url(), &redis);
    wrong.secret = "not-the-secret".into();
    let w = wrong.run();
    assert_eq!(w.n("ok"), 0);
    assert!(w.s("first_error").starts_with("4:"), "{:?}", w.values);
    assert_eq!(Job::new(&emu.url(), &redis).run().n("store_hits"), 1);
    assert_eq!(emu.stats().by_subject.get(&format!("org:{ID}")), Some(&1));
}

/// Nothing listens at the configured address: every call works, process-locally, and the
/// outage is logged once.
#[test]
fn redis_down_from_the_start() {
    let emu = emulator(3600);
    let mut j = Job::new(&emu.url(), &format!("redis://127.0.0.1:{}", free_port()));
    j.threads = 4;
    j.secs = 1.0;
    j.pause_ms = 5;
    j.env = vec![("FINDITY_LOG".into(), "warn".into())];
    let o = j.run();
    assert_eq!(o.n("fail"), 0, "{:?}", o.values);
    assert!(o.n("store_errors") >= 1);
    assert_eq!(o.stderr.matches("unavailable").count(), 1, "{}", o.stderr);
    assert!(!o.stderr.contains(SECRET));
    assert_eq!(emu.stats().client_credentials, 1);
}

/// 4 processes × 4 threads, 4 s tokens, for 7 s; Redis is stopped at 2 s and started again (empty)
/// at 4.5 s: no call fails, no refresh token or code is used twice.
#[test]
fn redis_stopped_mid_run() {
    let Some(bin) = env_or_skip("FINDITY_TEST_REDIS_SERVER") else {
        return;
    };
    let mut server = Server::start(&bin, free_port());
    let emu = emulator(4);
    let jobs: Vec<Job> = (0..4)
        .map(|_| {
            let mut j = Job::new(&emu.url(), &server.url()).user("E3");
            j.threads = 4;
            j.secs = 7.0;
            j.pause_ms = 2;
            j.timeout_ms = 5000;
            j
        })
        .collect();
    let children: Vec<_> = jobs.iter().map(Job::spawn).collect();
    std::thread::sleep(Duration::from_millis(2000));
    server.stop();
    std::thread::sleep(Duration::from_millis(2500));
    server.restart();
    let out: Vec<_> = children.into_iter().map(finish).collect();
    let s = emu.stats();
    assert_eq!(
        sum(&out, "fail"),
        0,
        "{:?}",
        out.iter().map(|o| o.s("first_error")).collect::<Vec<_>>()
    );
    assert_eq!((s.refresh_reuse, s.code_reuse), (0, 0), "{s:?}");
    assert!(sum(&out, "store_errors") >= 1);
    assert!(sum(&out, "store_hits") >= 1);
}

fn lock_of<'a>(
    store: &'a findity::store::redis::RedisStore,
    id: &str,
    wait_ms: u64,
    hold_ms: u64,
) -> Result<Box<dyn findity::store::Guard + 'a>, findity::store::StoreError> {
    use findity::store::Store;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    store
        .lock(id, deadline, Duration::from_millis(hold_ms))
        .map(|(g, _)| g)
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// Issue 18.4: writes are fenced by the lock. A holder that lost its lock (lease ran out while
/// it was paused, a failover lost the key; here the key is deleted) writes nothing, so it
/// neither overwrites the newer holder's record nor takes a refresh token out from under it.
/// Lock and record share one hash slot (`{id}`), and the lease follows the caller's time.
#[test]
fn writes_are_fenced_by_the_lock() {
    let Some(url) = shared_url(4) else { return };
    let store = findity::store::redis::open(&url).unwrap();
    let id = "c".repeat(64);
    let (lock_key, rec_key) = (
        format!("findity:2:{{{id}}}:lock"),
        format!("findity:2:{{{id}}}:rec"),
    );
    let mut con = raw(&url);
    let _: () = redis::cmd("DEL")
        .arg(&lock_key)
        .arg(&rec_key)
        .query(&mut con)
        .unwrap();
    let mut first = lock_of(&store, &id, 1000, 300).unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg(&lock_key).query(&mut con).unwrap();
    assert!(
        (1..=2300).contains(&pttl),
        "lease {pttl} ms: not sized from the caller's 300 ms"
    );
    first.write(b"first", Duration::from_secs(60)).unwrap();
    // The lock is lost (a failover, or a lease that ran out while the holder was stopped).
    let _: () = redis::cmd("DEL").arg(&lock_key).query(&mut con).unwrap();
    let mut second = lock_of(&store, &id, 1000, 5000).unwrap();
    second.write(b"second", Duration::from_secs(60)).unwrap();
    let e = first.write(b"stale", Duration::from_secs(60)).unwrap_err();
    assert_eq!(e.kind, findity::store::Failure::Lost, "{}", e.message);
    assert_eq!(
        first.remove().unwrap_err().kind,
        findity::store::Failure::Lost
    );
    drop(first);
    let got: Vec<u8> = redis::cmd("GET").arg(&rec_key).query(&mut con).unwrap();
    assert_eq!(got, b"second");
    // first's unlock did not delete second's lock.
    let holder: Option<String> = redis::cmd("GET").arg(&lock_key).query(&mut con).unwrap();
    assert!(holder.is_some());
    drop(second);
    let holder: Option<String> = redis::cmd("GET").arg(&lock_key).query(&mut con).unwrap();
    assert!(holder.is_none());
    // One hash slot for the lock and the record (Redis Cluster hashes only the `{...}` tag).
    let tag = |k: &str| {
        k.split_once('{')
            .and_then(|(_, r)| r.split_once('}'))
            .map(|(t, _)| t.to_string())
    };
    assert_eq!(tag(&lock_key), Some(id.clone()));
    assert_eq!(tag(&rec_key), Some(id.clone()));
}

/// Issue 18.6: a pooled connection that the server closed while it sat idle (Redis's `timeout`,
/// a load balancer) is retried once on a fresh connection, not taken for an outage.
#[test]
fn pooled_connection_closed_by_the_server_is_retried() {
    let Some(bin) = env_or_skip("FINDITY_TEST_REDIS_SERVER") else {
        return;
    };
    let server = Server::start(&bin, free_port());
    let store = findity::store::redis::open(&server.url()).unwrap();
    let id = "d".repeat(64);
    drop(lock_of(&store, &id, 1000, 1000).unwrap()); // its connection goes back to the pool
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("1")
        .query(&mut raw(&server.url()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500)); // the server closes the idle connection
    let g = lock_of(&store, &id, 1000, 1000);
    assert!(g.is_ok(), "{:?}", g.err().map(|e| e.message));
}

/// Issue 18.5 for Redis: see store_file.rs's invalidate_from_another_process_reaches_the_store.
#[test]
fn invalidate_from_another_process_reaches_the_store() {
    let Some(url) = shared_url(5) else { return };
    let emu = emulator(3600);
    invalidate_elsewhere(&emu, &url);
}

/// Issue 22 with Redis: see store_file.rs's processes_sharing_a_store_share_the_throttle (the
/// baseline is the same processes each throttling on its own, with a file store each).
#[test]
fn processes_sharing_redis_share_the_throttle() {
    let Some(url) = shared_url(6) else { return };
    let shared = fleet_walk(8, &url, 4, 1000, 4.0);
    let base = std::env::temp_dir().join(format!("findity-fleet-alone-{}", std::process::id()));
    let alone = fleet_walk(8, &format!("file:{}-{{p}}", base.display()), 4, 1000, 4.0);
    eprintln!("Redis shared: 429s, requests, ok, failed = {shared:?}; a store each: {alone:?}");
    assert_eq!(shared.3, 0, "no call failed: {shared:?}");
    assert!(
        shared.0 * 2 <= alone.0,
        "shared {shared:?} against alone {alone:?}"
    );
}

/// Issue 22 with Redis: see store_file.rs's a_429_storm_sees_one_probe_per_period_from_the_fleet.
#[test]
fn a_429_storm_sees_one_probe_per_period_from_the_fleet() {
    let Some(url) = shared_url(7) else { return };
    let (seen, periods) = storm(16, &url, 6);
    eprintln!("Redis storm: {seen} requests in {periods:.2} Retry-After periods");
    assert!(
        seen as f64 <= 2.0 * periods.ceil() + 1.0,
        "{seen} requests in {periods:.2} periods from 16 processes"
    );
}

/// bench/fleet.sh: FINDITY_FLEET="procs threads users rate" (Redis store).
#[test]
#[ignore = "a benchmark: bench/fleet.sh runs it"]
fn fleet_bench_redis() {
    let Some(url) = shared_url(8) else { return };
    let v: Vec<u64> = std::env::var("FINDITY_FLEET")
        .unwrap_or("4 4 150 20".into())
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    fleet_bench(v[0] as u32, v[1] as u32, v[2], v[3] as u32, &url, "Redis");
}

/// Cold review: a refused token leaves Redis even when the renewal after it fails.
#[test]
fn refused_token_leaves_the_store_when_renewal_fails_redis() {
    let Some(url) = shared_url(9) else { return };
    refused_token_leaves_the_store_when_renewal_fails(&url);
}
