//! The file store (option shared_cache = "file:/dir") across REAL processes: this test binary
//! re-runs itself as the children (see tests/common/store.rs), against an in-process emulator.

mod common;
#[path = "common/store.rs"]
mod store;

use findity::cache::Key;
use findity::ffi::*;
use findity::secret::Secret;
use findity::store::file::FileStore;
use findity::store::record::{Crypt, Identity, Record};
use findity::store::Store;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::*;

/// Tests that use the library in this process (its options are process-wide) take turns.
static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The children's entry point (does nothing in the parent run).
#[test]
fn child() {
    child_main();
}

fn store_of(dir: &str) -> String {
    format!("file:{dir}")
}

#[test]
fn sequential_processes_make_one_request() {
    let emu = emulator(3600);
    let dir = temp_dir("seq");
    for i in 0..10 {
        let o = Job::new(&emu.url(), &store_of(&dir)).run();
        assert_eq!(o.n("ok"), 1, "{:?} {}", o.values, o.stderr);
        assert_eq!(o.n("store_hits"), u64::from(i > 0), "run {i}");
    }
    let s = emu.stats();
    assert_eq!(s.client_credentials, 1, "{s:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.as_ref()), 0o700);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(ID) && !name.contains("127.0.0.1"), "{name}");
    }
}

#[test]
fn sixteen_processes_one_user_token_three_requests() {
    let emu = emulator(3600);
    let dir = temp_dir("sixteen");
    let jobs = (0..16)
        .map(|_| Job::new(&emu.url(), &store_of(&dir)).user("E1"))
        .collect();
    let out = all(jobs);
    assert_eq!(
        sum(&out, "ok"),
        16,
        "{:?}",
        out.iter().map(|o| &o.values).collect::<Vec<_>>()
    );
    let s = emu.stats();
    assert_eq!(requests(&s), 3, "client_credentials + grant + code: {s:?}");
    assert_eq!((s.refresh_reuse, s.code_reuse), (0, 0));
    assert_eq!(
        sum(&out, "store_hits"),
        15,
        "all but the leader adopt its token"
    );
}

/// 4 processes × 4 threads for 6 s with 4 s tokens: one renewal per refresh window for all of
/// them, no refresh token or code used twice, no failed call.
#[test]
fn load_across_processes_renews_once_per_window() {
    let emu = emulator(4);
    let dir = temp_dir("load");
    let secs = 6.0;
    let jobs = (0..4)
        .map(|_| {
            let mut j = Job::new(&emu.url(), &store_of(&dir)).user("E2");
            j.threads = 4;
            j.secs = secs;
            j.pause_ms = 2;
            j
        })
        .collect();
    let out = all(jobs);
    let s = emu.stats();
    assert_eq!(
        sum(&out, "fail"),
        0,
        "{:?}",
        out.iter().map(|o| o.s("first_error")).collect::<Vec<_>>()
    );
    assert_eq!((s.refresh_reuse, s.code_reuse), (0, 0), "{s:?}");
    let user_tokens = s.by_subject.get("user:E2").copied().unwrap_or(0);
    // Stale after 2 s: about secs / 2 renewals, plus the first token.
    assert!(
        user_tokens <= (secs / 2.0) as u64 + 2,
        "{user_tokens} user tokens: {s:?}"
    );
    assert!(sum(&out, "store_hits") > 0);
}

/// The lock holder is killed (SIGKILL) in the middle of its request, after taking the stored
/// refresh token: the others get tokens within timeout_ms, with no clean-up, and that refresh
/// token is never sent again.
#[test]
fn holder_killed_mid_request() {
    let emu = emulator(4);
    let dir = temp_dir("kill");
    assert_eq!(Job::new(&emu.url(), &store_of(&dir)).run().n("ok"), 1);
    // Let the stored token expire (4 s lifetime, 1 s hard margin), keeping its refresh token.
    std::thread::sleep(Duration::from_millis(3100));
    emu.set_latency(4000);
    let mut holder = Job::new(&emu.url(), &store_of(&dir));
    holder.timeout_ms = 20_000;
    let mut holder = holder.spawn();
    let t0 = Instant::now();
    while emu.stats().in_flight == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the holder never sent its request"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    emu.set_latency(0);
    emu.set_lifetime(3600);
    let t1 = Instant::now();
    let jobs = (0..4)
        .map(|_| {
            let mut j = Job::new(&emu.url(), &store_of(&dir));
            j.timeout_ms = 3000;
            j
        })
        .collect();
    let out = all(jobs);
    assert_eq!(
        sum(&out, "ok"),
        4,
        "{:?}",
        out.iter().map(|o| o.s("first_error")).collect::<Vec<_>>()
    );
    assert!(t1.elapsed() < Duration::from_secs(3), "{:?}", t1.elapsed());
    // Wait for the killed holder's request to finish at the emulator before counting.
    std::thread::sleep(Duration::from_millis(
        4200 - t0.elapsed().as_millis().min(4200) as u64,
    ));
    let s = emu.stats();
    assert_eq!(s.refresh_reuse, 0, "{s:?}");
    assert_eq!(s.refresh_token, 1, "only the killed holder sent it: {s:?}");
    assert_eq!(
        s.client_credentials, 2,
        "the first token, then one for everyone after the kill: {s:?}"
    );
}

/// fork(): a child inherits the descriptor of its parent's held lock, but neither holds nor
/// releases it: one that exits at once leaves it held, and one that asks for the same token
/// waits for the parent and adopts its token.
#[test]
fn fork_child_neither_holds_nor_releases_the_lock() {
    let emu = emulator(3600);
    emu.set_latency(1500);
    let dir = temp_dir("fork");
    let mut j = Job::new(&emu.url(), &store_of(&dir));
    j.mode = "fork".into();
    let forker = j.spawn();
    std::thread::sleep(Duration::from_millis(700));
    // A separate process, started while the parent still holds the lock.
    let other = Job::new(&emu.url(), &store_of(&dir)).spawn();
    let f = finish(forker);
    let o = finish(other);
    assert_eq!(f.n("ok"), 1);
    assert_eq!(
        f.n("fork_rc"),
        0,
        "1: failed, 2: did not wait for the parent, 3: did not adopt"
    );
    assert_eq!((o.n("ok"), o.n("store_hits")), (1, 1), "{:?}", o.values);
    assert_eq!(emu.stats().client_credentials, 1);
}

fn write_record(dir: &str, key: &Key, secret: &str, access: &str) {
    let store = FileStore::open(dir).unwrap();
    let who = Identity::of(key);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let rec = Record {
        access: Some(Secret::new(access)),
        refresh: Some(findity::refresh::RefreshToken::new(Secret::new(
            "old-refresh-token",
        ))),
        issued_ms: now_ms,
        lifetime_ms: 3_600_000,
    };
    let sealed = Crypt::new(&Secret::new(secret), &who)
        .seal(&who, &rec)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    let (mut guard, _) = store
        .lock(&who.id, deadline, Duration::from_secs(1))
        .unwrap();
    guard.write(&sealed, Duration::from_secs(3600)).unwrap();
}

#[test]
fn wrong_secret_rotation_and_tampering() {
    let emu = emulator(3600);
    let url = emu.url();
    let dir = temp_dir("secrets");
    let org =
        |s: &findity_emulator::Stats| s.by_subject.get(&format!("org:{ID}")).copied().unwrap_or(0);
    assert_eq!(Job::new(&url, &store_of(&dir)).run().n("ok"), 1);

    // A wrong secret never gets the stored token: it asks Findity and is refused.
    let mut wrong = Job::new(&url, &store_of(&dir));
    wrong.secret = "not-the-secret".into();
    let w = wrong.run();
    assert_eq!(w.n("ok"), 0);
    assert!(w.s("first_error").starts_with("4:"), "{:?}", w.values);
    assert!(
        w.n("store_errors") >= 1,
        "the record could not be decrypted"
    );
    // ... and leaves the record alone.
    let r = Job::new(&url, &store_of(&dir)).run();
    assert_eq!(r.n("store_hits"), 1);
    assert_eq!(org(&emu.stats()), 1);

    // Rotation: a record sealed with the old secret cannot be read with the new one; the
    // process renews and replaces it, and the next one adopts the new token.
    let key = Key::parse(&url, ID, Some("E9")).unwrap();
    write_record(&dir, &key, "the-old-secret", "OLD-ACCESS-TOKEN");
    let n = Job::new(&url, &store_of(&dir)).user("E9").run();
    assert_eq!((n.n("ok"), n.n("store_errors")), (1, 1), "{:?}", n.values);
    assert_eq!(emu.stats().by_subject.get("user:E9"), Some(&1));
    let n2 = Job::new(&url, &store_of(&dir)).user("E9").run();
    assert_eq!(
        (n2.n("ok"), n2.n("store_hits"), n2.n("store_errors")),
        (1, 1, 0)
    );
    assert_eq!(emu.stats().by_subject.get("user:E9"), Some(&1));

    // A record moved to another key's name is not accepted there (AAD binds it to its key).
    let e9 = std::path::Path::new(&dir).join(format!("{}.2.rec", Identity::of(&key).id));
    let org_key = Key::parse(&url, ID, None).unwrap();
    let org_rec = std::path::Path::new(&dir).join(format!("{}.2.rec", Identity::of(&org_key).id));
    std::fs::copy(&e9, &org_rec).unwrap();
    let m = Job::new(&url, &store_of(&dir)).run();
    assert_eq!((m.n("ok"), m.n("store_errors")), (1, 1), "{:?}", m.values);
    assert_eq!(org(&emu.stats()), 2);

    // Tampered: one flipped bit, and the record is refused and replaced.
    let mut bytes = std::fs::read(&org_rec).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x40;
    std::fs::write(&org_rec, &bytes).unwrap();
    let t = Job::new(&url, &store_of(&dir)).run();
    assert_eq!((t.n("ok"), t.n("store_errors")), (1, 1), "{:?}", t.values);
    assert_eq!(org(&emu.stats()), 3);

    // Nothing secret in plaintext in any file: this process takes the tokens from the store.
    let _turn = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        common::set_option("shared_cache", &store_of(&dir)),
        FINDITY_OK
    );
    let org_token = common::token(&url, ID, SECRET, None).unwrap();
    let user_token = common::token(&url, ID, SECRET, Some("E9")).unwrap();
    assert_eq!(org(&emu.stats()), 3, "served from the store");
    assert_eq!(common::set_option("shared_cache", ""), FINDITY_OK);
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        // Not the 2-byte user id "E9" in the contents: random ciphertext holds it about once in
        // 130 records. Names are hashes: no id in them at all.
        for secret in [org_token.as_str(), user_token.as_str(), SECRET, ID] {
            assert!(!text.contains(secret), "plaintext in a record");
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains("E9") && !name.contains(ID), "{name}");
    }
}

#[test]
fn bad_configuration_is_refused() {
    let _turn = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let base = temp_dir("perms");
    std::fs::create_dir_all(&base).unwrap();
    let open = |d: &str| {
        let rc = common::set_option("shared_cache", d);
        (
            rc,
            if rc == FINDITY_OK {
                String::new()
            } else {
                common::last_error()
            },
        )
    };
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (rc, msg) = open(&store_of(&base));
    assert_eq!(rc, FINDITY_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("writable by group or others"), "{msg}");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        let theirs = format!("{base}/theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let (rc, msg) = open(&store_of(&theirs));
        assert_eq!(rc, FINDITY_ERR_INVALID_ARGUMENT);
        assert!(msg.contains("belongs to uid 65534"), "{msg}");
    }
    for bad in [
        "file:relative/dir",
        "memcached://127.0.0.1:11211",
        "redis://",
        "rediss://127.0.0.1:6380/#insecure",
        "/just/a/path",
    ] {
        let (rc, msg) = open(bad);
        assert_eq!(rc, FINDITY_ERR_INVALID_ARGUMENT, "{bad}");
        assert!(msg.starts_with("shared_cache: "), "{msg}");
    }
    let (rc, msg) = open("redis://user:pw-in-url@127.0.0.1:1/0#x");
    assert_eq!(rc, FINDITY_ERR_INVALID_ARGUMENT);
    assert!(!msg.contains("pw-in-url"), "{msg}");
    assert_eq!(open("").0, FINDITY_OK);

    // The environment variable: a bad value is logged and ignored, the call works.
    let emu = emulator(3600);
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut j = Job::new(&emu.url(), "-env-");
    j.env = vec![
        ("FINDITY_SHARED_CACHE".into(), store_of(&base)),
        ("FINDITY_LOG".into(), "warn".into()),
    ];
    let o = j.run();
    assert_eq!((o.n("ok"), o.n("store_writes")), (1, 0));
    assert!(
        o.stderr.contains("FINDITY_SHARED_CACHE ignored"),
        "{}",
        o.stderr
    );
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = j.run();
    assert_eq!((o.n("ok"), o.n("store_writes")), (1, 1), "{}", o.stderr);
}

/// A token the API rejected (findity_invalidate_token) is never adopted back from the store:
/// the next call renews, for the organization token and a user token.
#[test]
fn invalidated_token_is_not_adopted_from_the_store() {
    let _turn = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let emu = emulator(3600);
    let url = emu.url();
    let dir = temp_dir("rejected");
    assert_eq!(
        common::set_option("shared_cache", &store_of(&dir)),
        FINDITY_OK
    );
    for user in [None, Some("rejected-user")] {
        let a = common::token(&url, ID, SECRET, user).unwrap();
        let (cu, ci, ca) = (common::c(&url), common::c(ID), common::c(&a));
        let cuser = user.map(common::c);
        let up = cuser.as_ref().map_or(std::ptr::null(), |u| u.as_ptr());
        unsafe { findity_invalidate_token(cu.as_ptr(), ci.as_ptr(), up, ca.as_ptr()) };
        let b = common::token(&url, ID, SECRET, user).unwrap();
        assert_ne!(
            a, b,
            "{user:?}: the rejected token came back from the store"
        );
    }
    assert_eq!(common::set_option("shared_cache", ""), FINDITY_OK);
    let st = emu.stats();
    assert_eq!(st.refresh_reuse + st.code_reuse, 0);
}

/// Issue 18.2: a lock holder that forked a long-lived child (a prefork master, Python
/// multiprocessing) is killed mid-request. Its child shares the lock's open file description;
/// unless the child closed its copy at fork, the lock lives on with the child and every other
/// process waits 3/4 of its timeout_ms before renewing on its own.
#[test]
fn killed_holder_with_forked_child_releases_the_lock() {
    let emu = emulator(3600);
    emu.set_latency(3000);
    let dir = temp_dir("forksleeper");
    let pidfile = format!("{dir}.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut j = Job::new(&emu.url(), &store_of(&dir));
    j.mode = "fork-sleeper".into();
    j.timeout_ms = 20_000;
    j.env.push(("CHILD_PIDFILE".into(), pidfile.clone()));
    let mut holder = j.spawn();
    let t0 = Instant::now();
    let sleeper: i32 = loop {
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            if let Ok(pid) = pid.trim().parse() {
                break pid;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no sleeper forked");
        std::thread::sleep(Duration::from_millis(10));
    };
    holder.kill().unwrap(); // SIGKILL, mid-request
    holder.wait().unwrap();
    emu.set_latency(0);
    let mut other = Job::new(&emu.url(), &store_of(&dir));
    other.timeout_ms = 8000;
    let t1 = Instant::now();
    let o = other.run();
    let took = t1.elapsed();
    unsafe { libc::kill(sleeper, libc::SIGKILL) };
    assert_eq!(o.n("ok"), 1, "{:?}", o.values);
    assert_eq!(
        o.n("store_lock_waits"),
        0,
        "waited for a dead holder's lock: {:?}",
        o.values
    );
    // 3/4 of 8 s is what a lock kept by the child would cost.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

fn lock_of<'a>(
    store: &'a FileStore,
    id: &str,
    ms: u64,
) -> Option<Box<dyn findity::store::Guard + 'a>> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    store
        .lock(id, deadline, Duration::from_secs(1))
        .ok()
        .map(|(g, _)| g)
}

/// An OFD lock taken by the test itself (a process that locked the file now at the name).
fn ofd_lock_file(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) },
        0
    );
}

/// Issue 18.3: a lock file replaced while a waiter waits on it (a tmp cleaner removed it and
/// another process created and locked a new one). The waiter gets the old file's lock when its
/// holder lets go; unless it checks that the file it locked is still the one at that name, it
/// holds the lock together with whoever holds the new file.
#[test]
fn waiter_on_a_replaced_lock_file_does_not_share_the_lock() {
    let dir = temp_dir("lockgone");
    let store = FileStore::open(&dir).unwrap();
    let id = "a".repeat(64);
    let first = lock_of(&store, &id, 1000).expect("free");
    let acquired = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = lock_of(&store, &id, 10_000).expect("the waiter gets the lock in the end");
            acquired.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(g);
        });
        std::thread::sleep(Duration::from_millis(200)); // the waiter waits on the old file
                                                        // The new file is locked before it appears under the name.
        let newer_path = format!("{dir}/newer");
        let newer = std::fs::File::create(&newer_path).unwrap();
        ofd_lock_file(&newer);
        std::fs::rename(&newer_path, format!("{dir}/{id}.2.lock")).unwrap();
        drop(first);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !acquired.load(std::sync::atomic::Ordering::SeqCst),
            "two holders: the waiter holds the replaced file while the new one is held"
        );
        drop(newer);
    });
    assert!(acquired.load(std::sync::atomic::Ordering::SeqCst));
}

/// A holder whose lock file was removed under it writes nothing: another process may hold the
/// new lock file and may have read the record meanwhile (retaking the lock would not help).
#[test]
fn holder_whose_lock_file_was_removed_writes_nothing() {
    let dir = temp_dir("lockgone2");
    let store = FileStore::open(&dir).unwrap();
    let id = "b".repeat(64);
    let lock_file = format!("{dir}/{id}.2.lock");
    let mut g = lock_of(&store, &id, 1000).unwrap();
    g.write(b"first", Duration::from_secs(60)).unwrap();
    std::fs::remove_file(&lock_file).unwrap();
    let e = g.write(b"second", Duration::from_secs(60)).unwrap_err();
    assert_eq!(e.kind, findity::store::Failure::Lost, "{}", e.message);
    assert_eq!(g.remove().unwrap_err().kind, findity::store::Failure::Lost);
    let other = lock_of(&store, &id, 1000).expect("the new lock file is free");
    drop(other);
    drop(g);
    assert_eq!(
        std::fs::read(format!("{dir}/{id}.2.rec")).unwrap(),
        b"first"
    );
}

/// Issue 18.8: the file store does not grow without bound. Temp files left by a kill, records
/// past the longest life any record can have, and lock files without a record go; anything
/// younger, and a lock file whose lock is held, stays.
#[test]
fn sweep_removes_only_what_is_past_its_life() {
    let dir = temp_dir("sweep");
    let store = FileStore::open(&dir).unwrap();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let age = |name: &str, by: Duration| {
        let p = format!("{dir}/{name}");
        if !std::path::Path::new(&p).exists() {
            std::fs::write(&p, b"x").unwrap();
        }
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(now - by).unwrap();
    };
    let (old, young, held) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
    age(&format!("{old}.2.rec"), day * 3);
    age(&format!("{old}.2.lock"), day * 3);
    age(&format!("{young}.2.rec"), day);
    age(&format!("{young}.2.lock"), day * 3);
    age(&format!(".{old}.2.123.00ff.tmp"), day);
    age(&format!(".{young}.2.123.00ff.tmp"), Duration::from_secs(60));
    let g = lock_of(&store, &held, 1000).unwrap();
    age(&format!("{held}.2.lock"), day * 3);
    let removed = store.sweep(now).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![
        format!(".{young}.2.123.00ff.tmp"),
        format!("{young}.2.lock"),
        format!("{young}.2.rec"),
        format!("{held}.2.lock"),
    ];
    want.sort();
    assert_eq!(left, want, "removed {removed}");
    drop(g);
}

/// Issue 18.5: process A stores T1; process B, which holds no entry for the key (a script, a
/// worker that never served it), reports T1 refused and asks again: it must not adopt T1 from
/// the store, and the renewal it makes replaces the record, so a third process gets the new
/// token too. For the organization and a user.
#[test]
fn invalidate_from_another_process_reaches_the_store() {
    let emu = emulator(3600);
    let dir = temp_dir("refusedelsewhere");
    invalidate_elsewhere(&emu, &store_of(&dir));
}

/// Issue 18.6: a lock that was merely busy is not a store failure: not counted in
/// store_errors (nor logged as a warning), and the store stays in use.
#[test]
fn busy_lock_is_not_a_store_error() {
    let emu = emulator(3600);
    emu.set_latency(5000);
    let dir = temp_dir("busy");
    let holder = Job::new(&emu.url(), &store_of(&dir)).spawn();
    let t0 = Instant::now();
    while emu.stats().in_flight == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut waiter = Job::new(&emu.url(), &store_of(&dir));
    // Waits 2.25 s for the lock (held 5 s), then renews on its own in the 0.75 s left (time
    // enough under qemu too).
    waiter.timeout_ms = 3000;
    waiter.env.push(("FINDITY_LOG".into(), "warn".into()));
    let w = waiter.spawn();
    std::thread::sleep(Duration::from_millis(300));
    emu.set_latency(0);
    let (h, w) = (finish(holder), finish(w));
    assert_eq!(
        (h.n("ok"), w.n("ok")),
        (1, 1),
        "{:?} {:?}",
        h.values,
        w.values
    );
    assert_eq!(w.n("store_errors"), 0, "{:?}", w.values);
    assert!(!w.stderr.contains("warn"), "{}", w.stderr);
}

/// Issue 22: processes that share a store share the throttle. Eight processes walk new users
/// against a server allowing 4 token requests per second per client: sharing a file store, the
/// fleet pauses together, probes once per pause and paces itself, so it meets far fewer 429s
/// than the same processes each throttling on its own (each with a store of its own).
#[test]
fn processes_sharing_a_store_share_the_throttle() {
    let dir = temp_dir("fleet");
    let shared = fleet_walk(8, &store_of(&dir), 4, 1000, 4.0);
    let alone = fleet_walk(8, &store_of(&format!("{dir}-{{p}}")), 4, 1000, 4.0);
    eprintln!("shared store: 429s, requests, ok, failed = {shared:?}; a store each: {alone:?}");
    assert_eq!(shared.3, 0, "no call failed: {shared:?}");
    assert!(
        shared.0 * 2 <= alone.0,
        "shared {shared:?} against alone {alone:?}: the fleet should meet far fewer 429s"
    );
}

/// bench/fleet.sh: FINDITY_FLEET="procs threads users rate" (file store).
#[test]
#[ignore = "a benchmark: bench/fleet.sh runs it"]
fn fleet_bench_file() {
    let v: Vec<u64> = std::env::var("FINDITY_FLEET")
        .unwrap_or("4 4 150 20".into())
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let dir = temp_dir("fleetbench");
    fleet_bench(
        v[0] as u32,
        v[1] as u32,
        v[2],
        v[3] as u32,
        &store_of(&dir),
        "file",
    );
    fleet_bench(v[0] as u32, v[1] as u32, v[2], v[3] as u32, "", "none");
    fleet_bench(1, v[1] as u32, v[2], v[3] as u32, "", "one process, none");
    let (shared, periods) = storm(16, &store_of(&temp_dir("stormbench")), 6);
    let alone = storm(
        16,
        &store_of(&format!("{}-{{p}}", temp_dir("stormalone"))),
        6,
    )
    .0;
    println!(
        "FLEET storm: 16 processes, 429 storm (Retry-After 2 s), requests after its first period: {shared} sharing a file store ({:.1} per period), {alone} with a store each ({:.1} per period)",
        shared as f64 / periods,
        alone as f64 / periods
    );
}

/// Issue 22: in a 429 storm (Retry-After 2 s), 16 processes sharing a store send about one
/// request per Retry-After period between them (the fleet's probe), where processes throttling
/// each on its own send one each.
#[test]
fn a_429_storm_sees_one_probe_per_period_from_the_fleet() {
    let dir = temp_dir("storm");
    let (seen, periods) = storm(16, &store_of(&dir), 6);
    eprintln!("storm: {seen} requests in {periods:.2} Retry-After periods");
    assert!(
        seen as f64 <= 2.0 * periods.ceil() + 1.0,
        "{seen} requests in {periods:.2} periods from 16 processes"
    );
}

/// Cold review: a refused token leaves the file store even when the renewal after it fails.
#[test]
fn refused_token_leaves_the_store_when_renewal_fails_file() {
    refused_token_leaves_the_store_when_renewal_fails(&store_of(&temp_dir("refusedfail")));
}
