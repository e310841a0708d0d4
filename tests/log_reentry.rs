//! Issue 18.1: a host's log callback may call the library (the header says no lock is held while
//! logging). Opening or setting the shared cache logs a line; a callback that then sets an option
//! or asks for another key's token must return, and so must every later call.

mod common;

use common::{c, set_option, token};
use findity::ffi::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

static URL: OnceLock<String> = OnceLock::new();
const ID: &str = "reentry-client";
const SECRET: &str = "reentry-secret";

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// On the shared cache's line: set an option and get another client's token, from inside the
/// callback (once per thread at a time; the inner calls log too).
unsafe extern "C" fn calls_back(_level: u32, message: *const c_char, _ud: *mut c_void) {
    let line = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if !line.contains("shared cache") || INSIDE.with(|i| i.replace(true)) {
        return;
    }
    assert_eq!(set_option("timeout_ms", "20000"), FINDITY_OK);
    let url = URL.get().expect("set before any call");
    token(url, "other-client", "other-secret", Some("E5")).expect("a token from the callback");
    INSIDE.with(|i| i.set(false));
}

/// Runs `f` on a thread of its own and fails if it does not return within 8 s (a deadlock).
fn returns(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(8)).is_ok(),
        "{what}: no return within 8 s (a lock held while logging?)"
    );
}

#[test]
fn log_callback_may_call_the_library_while_the_store_is_opened_or_set() {
    let emu = findity_emulator::Emulator::start(findity_emulator::Config {
        clients: vec![
            (ID.into(), SECRET.into()),
            ("other-client".into(), "other-secret".into()),
        ],
        quiet: true,
        ..Default::default()
    })
    .unwrap();
    URL.set(emu.url()).unwrap();
    let dir = std::env::temp_dir().join(format!("findity-reentry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // First use reads FINDITY_SHARED_CACHE and opens the store, which logs.
    std::env::set_var(
        "FINDITY_SHARED_CACHE",
        format!("file:{}", dir.join("a").display()),
    );
    unsafe { findity_set_log_callback(Some(calls_back), std::ptr::null_mut()) };
    assert_eq!(set_option("log_level", "info"), FINDITY_OK);
    let url = emu.url();
    let u = url.clone();
    returns("the first call, which opens the store", move || {
        token(&u, ID, SECRET, None).unwrap();
    });
    // Later misses in other threads still get through.
    let u = url.clone();
    returns("a later call for another user", move || {
        token(&u, ID, SECRET, Some("E6")).unwrap();
    });
    // Setting the option logs too.
    let spec = format!("file:{}", dir.join("b").display());
    returns("findity_set_option(shared_cache)", move || {
        assert_eq!(set_option("shared_cache", &spec), FINDITY_OK);
    });
    let u = url.clone();
    returns("a call after the option was set", move || {
        token(&u, ID, SECRET, Some("E7")).unwrap();
    });
    unsafe { findity_set_log_callback(None, std::ptr::null_mut()) };
    let _ = c("done");
    let _ = std::fs::remove_dir_all(&dir);
}
