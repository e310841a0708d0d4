//! A process asked for many keys that get no token (refused clients) does not keep an entry
//! per key: they go after idle_ms like any other idle entry. (Own process, so the cache holds
//! this test's entries only; idle_ms 100.)

mod common;

use findity::ffi::*;
use std::time::Duration;

const SECRET: &str = "secret-refused-7c2e";

#[test]
fn entries_of_refused_clients_go_when_idle() {
    assert_eq!(common::set_option("idle_ms", "100"), FINDITY_OK);
    let emu = common::emulator("client-refused-known", SECRET, 3600);
    let url = emu.url();
    let refuse = |i: usize| {
        let (rc, _, _) =
            common::token(&url, &format!("no-such-client-{i}"), SECRET, None).unwrap_err();
        assert_eq!(rc, FINDITY_ERR_AUTH);
    };
    for i in 0..1100 {
        refuse(i);
    }
    // Past idle_ms, a new key sweeps the shard it lands in: 400 of them reach all 16 shards
    // (a shard missed by all: 16 * (15/16)^400, about 1e-10).
    std::thread::sleep(Duration::from_millis(300));
    for i in 1100..1500 {
        refuse(i);
    }
    let n = findity::state::state().cache.len();
    assert!(n <= 400, "{n} entries kept of 1500 refused clients");
    let s = common::stats();
    assert!(s.idle_evictions >= 1100, "{} evicted", s.idle_evictions);
}
