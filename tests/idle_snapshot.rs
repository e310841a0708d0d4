//! A thread's snapshot does not pin its entry: a thread that stopped asking for a key holds no
//! use of it, so after idle_ms the entry goes (with its refresh token) like any idle one, and
//! that thread's next call gets a new token. (Own process, so the cache holds this test's
//! entries only; idle_ms 100.)

mod common;

use findity::ffi::*;
use std::sync::mpsc;
use std::time::Duration;

const ID: &str = "client-idle-snapshot";
const SECRET: &str = "secret-idle-snapshot-51d0";

#[test]
fn an_idle_threads_snapshot_does_not_keep_its_entry() {
    assert_eq!(common::set_option("idle_ms", "100"), FINDITY_OK);
    let emu = common::emulator(ID, SECRET, 3600);
    let url = emu.url();
    let (go, wait) = mpsc::channel::<()>();
    let holder = {
        let url = url.clone();
        // Gets a token (its snapshot now holds the entry), idles, then asks again.
        std::thread::spawn(move || {
            let first = common::token(&url, ID, SECRET, None).unwrap();
            assert_eq!(common::token(&url, ID, SECRET, None).unwrap(), first);
            wait.recv().unwrap();
            (first, common::token(&url, ID, SECRET, None).unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    // New keys sweep the shards they land in: 400 reach all 16 (see refused_clients.rs).
    for i in 0..400 {
        let refused = common::token(&url, &format!("no-such-client-{i}"), SECRET, None);
        assert_eq!(refused.unwrap_err().0, FINDITY_ERR_AUTH);
    }
    go.send(()).unwrap();
    let (first, again) = holder.join().unwrap();
    assert_ne!(
        again, first,
        "the idle entry was kept (pinned by the thread's snapshot) and served again"
    );
    let s = common::stats();
    assert!(s.idle_evictions >= 1, "{} evicted", s.idle_evictions);
}
