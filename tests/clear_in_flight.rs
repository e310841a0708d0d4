//! findity_clear_cache during a request, in a process of its own: clearing the process-wide
//! cache would drop the entries of any other test running meanwhile.

mod common;

use findity::ffi::findity_clear_cache;
use std::time::Duration;

const ID: &str = "client-clear";
const SECRET: &str = "secret-clear-40aa";

fn token(url: &str) -> String {
    common::token(url, ID, SECRET, None).unwrap()
}

/// clear_cache while this thread's request is in flight: the token that request brings back is
/// not kept, and a later invalidate reaches whatever this thread is served next (a snapshot of
/// the orphaned entry would survive every invalidate: a connector looping on 401s).
#[test]
fn clear_during_a_request_then_invalidate() {
    let emu = common::emulator(ID, SECRET, 3600);
    emu.set_latency(400);
    let url = emu.url();
    let caller = {
        let url = url.clone();
        std::thread::spawn(move || {
            let t1 = token(&url);
            let t2 = token(&url);
            common::invalidate(&url, ID, None);
            let t3 = token(&url);
            (t1, t2, t3)
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    findity_clear_cache();
    let (t1, t2, t3) = caller.join().unwrap();
    assert_ne!(t2, t1, "the token of a request cleared in flight was kept");
    assert_ne!(
        t3, t2,
        "invalidate did not reach the token this thread was served"
    );
}
