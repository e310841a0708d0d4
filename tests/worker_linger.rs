//! Renewal workers exit when they have nothing to do, and the next renewal starts one again.
//! (Own process: no other test's keys keep the workers busy.) Mono waits at exit for every
//! thread that ever ran one of its callbacks (the C# log callback), so a worker that stayed
//! forever hung every Mono program at exit.

mod common;

use findity::cache::renewal::WORKER_LINGER;
use std::time::{Duration, Instant};

const ID: &str = "client-linger";
const SECRET: &str = "secret-linger-51d0";

fn renewal_workers() -> usize {
    common::threads_where(|name| name.starts_with("findity-renew"))
}

/// Calls for the organization token until the emulator has seen one more refresh grant (a
/// background renewal); the most renewal workers seen meanwhile.
fn until_renewed(emu: &findity_emulator::Emulator, url: &str) -> usize {
    let before = emu.stats().refresh_token;
    let t0 = Instant::now();
    let mut most = 0;
    while emu.stats().refresh_token == before {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no background renewal"
        );
        common::token(url, ID, SECRET, None).unwrap();
        most = most.max(renewal_workers());
        std::thread::sleep(Duration::from_millis(20));
    }
    most.max(renewal_workers())
}

#[test]
fn idle_workers_exit_and_come_back() {
    // One worker: a pool that forgot a worker had left would never start another.
    assert_eq!(
        common::set_option("renewal_threads", "1"),
        findity::ffi::FINDITY_OK
    );
    // 6 s tokens: renewal from 3.0–3.4 s of age, so the linger (2 s) ends well before the next.
    let emu = common::emulator(ID, SECRET, 6);
    let url = emu.url();
    common::token(&url, ID, SECRET, None).unwrap();
    assert!(until_renewed(&emu, &url) >= 1, "a worker ran the renewal");
    // Nothing is due for a while.
    let t0 = Instant::now();
    while renewal_workers() > 0 {
        assert!(
            t0.elapsed() < WORKER_LINGER + Duration::from_secs(5),
            "{} renewal workers still there {:?} after the last renewal",
            renewal_workers(),
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        until_renewed(&emu, &url) >= 1,
        "a new worker ran the next renewal"
    );
    assert_eq!(emu.stats().refresh_reuse, 0);
}
