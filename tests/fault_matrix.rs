//! The fault matrix: every failure the emulator can inject, for the organization flow and the
//! user flow. For each: the status and message of a cold call, that it returns within
//! timeout_ms + 1 s, that the next healthy call works (nothing poisoned), and that a valid
//! cached token keeps being served while the fault persists (nothing lost). Scenarios run in
//! parallel, each against its own emulator (own cache keys); timeout_ms is set once for all.

mod common;

use common::c;
use findity::ffi::*;
use findity_emulator::{Config, Emulator, Fault};
use std::ffi::{c_char, c_void, CStr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ID: &str = "matrix-client";
const SECRET: &str = "matrix-secret-4d1c9b";
const TIMEOUT_MS: u64 = 2000;
const USER: &str = "employee-7";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Flow {
    Org,
    User,
}

/// What a cold call through the fault must give.
#[derive(Clone, Copy, Debug)]
enum Want {
    Ok,
    /// A token, but only after waiting at least this many ms (a Retry-After honoured).
    OkAfter(u64),
    Err(u32, &'static str),
}

struct Scenario {
    name: &'static str,
    flow: Flow,
    /// Control-API style fault, e.g. "endpoint=token&kind=status:503&count=0".
    fault: &'static str,
    want: Want,
}

const NET: u32 = FINDITY_ERR_NETWORK;
const SRV: u32 = FINDITY_ERR_SERVER;
const AUTH: u32 = FINDITY_ERR_AUTH;

fn scenarios() -> Vec<Scenario> {
    let mut v = Vec::new();
    // The primary grant's endpoint for each flow: client credentials, or the authorization grant.
    for (flow, ep) in [
        (Flow::Org, "endpoint=token&grant=client_credentials"),
        (Flow::User, "endpoint=grant"),
    ] {
        let mut add = |name, f: &str, want| {
            let fault: &'static str = Box::leak(format!("{ep}&{f}").into_boxed_str());
            v.push(Scenario {
                name,
                flow,
                fault,
                want,
            });
        };
        for code in [500, 502, 503, 504] {
            let name: &'static str = Box::leak(format!("{code} persistent").into_boxed_str());
            let kind: &'static str =
                Box::leak(format!("kind=status:{code}&count=0").into_boxed_str());
            add(name, kind, Want::Err(SRV, "HTTP"));
        }
        add("503 once (retried)", "kind=status:503&count=1", Want::Ok);
        add(
            "429 with Retry-After (honoured)",
            "kind=429&retry_after=1&count=1",
            Want::OkAfter(1000),
        );
        add(
            "429 without Retry-After",
            "kind=429&count=0",
            Want::Err(SRV, "HTTP 429"),
        );
        add(
            "429 Retry-After past the timeout",
            "kind=429&retry_after=60&count=0",
            Want::Err(SRV, "HTTP 429"),
        );
        add(
            "429 absurd Retry-After (no overflow)",
            "kind=429&retry_after=18446744073709551615&count=0",
            Want::Err(SRV, "HTTP 429"),
        );
        add(
            "reset mid-answer",
            "kind=reset&count=0",
            Want::Err(NET, "connection"),
        );
        add(
            "closed without answer",
            "kind=close&count=0",
            Want::Err(NET, ""),
        );
        add(
            "never answers",
            "kind=hang&count=0",
            Want::Err(NET, "timeout_ms"),
        );
        add(
            "not JSON",
            "kind=malformed&count=0",
            Want::Err(SRV, "not JSON"),
        );
        add(
            "HTML error page",
            "kind=html&count=0",
            Want::Err(SRV, "HTML page"),
        );
        add(
            "plain-text error",
            "kind=text&count=0",
            Want::Err(SRV, "HTTP 500"),
        );
        add(
            "10 MB body",
            "kind=huge&count=0",
            Want::Err(SRV, "larger than"),
        );
        add(
            "redirect (not followed)",
            "kind=redirect&count=0",
            Want::Err(SRV, "redirect"),
        );
        add(
            "refused grant",
            "kind=invalid_grant&count=0",
            Want::Err(AUTH, "invalid_grant"),
        );
        add(
            "401",
            "kind=status:401&count=0",
            Want::Err(AUTH, "HTTP 401"),
        );
    }
    // Token answers only the token endpoint gives.
    for (flow, grant) in [
        (Flow::Org, "client_credentials"),
        (Flow::User, "authorization_code"),
    ] {
        let mut add = |name, f: &str, want| {
            let fault: &'static str =
                Box::leak(format!("endpoint=token&grant={grant}&{f}").into_boxed_str());
            v.push(Scenario {
                name,
                flow,
                fault,
                want,
            });
        };
        add(
            "no access_token",
            "kind=no_access_token&count=0",
            Want::Err(SRV, "no access_token"),
        );
        add(
            "expires_in negative",
            "kind=expires_in:-5&count=0",
            Want::Err(SRV, "expires_in"),
        );
        add(
            "expires_in zero",
            "kind=expires_in:0&count=0",
            Want::Err(SRV, "expires_in"),
        );
        add(
            "expires_in absurd (capped)",
            "kind=expires_in:99999999999999&count=0",
            Want::Ok,
        );
        add(
            "expires_in as a string",
            "kind=expires_in:\"60\"&count=0",
            Want::Ok,
        );
        add(
            "expires_in not a number",
            "kind=expires_in:\"soon\"&count=0",
            Want::Err(SRV, "expires_in"),
        );
        add(
            "token endpoint 503 persistent",
            "kind=status:503&count=0",
            Want::Err(SRV, "HTTP 503"),
        );
    }
    // A refused code is final: retrying with a new code would hide a real refusal.
    v.push(Scenario {
        name: "code refused",
        flow: Flow::User,
        fault: "endpoint=token&grant=authorization_code&kind=invalid_grant&count=0",
        want: Want::Err(AUTH, "invalid_grant"),
    });
    v
}

fn call(url: &str, flow: Flow, user: &str) -> Result<String, (u32, u16, String)> {
    let r = common::token(url, ID, SECRET, (flow == Flow::User).then_some(user));
    if let Ok(t) = &r {
        SEEN_TOKENS.lock().unwrap().push(t.clone());
    }
    r
}

/// Every token handed out and every log line written during the matrix: no line may hold a
/// token or the secret.
static SEEN_TOKENS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LOG_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(_level: u32, message: *const c_char, _userdata: *mut c_void) {
    let line = CStr::from_ptr(message).to_string_lossy().into_owned();
    LOG_LINES.lock().unwrap().push(line);
}

fn fault(q: &str) -> Fault {
    Fault::from_params(q.split('&').map(|kv| kv.split_once('=').unwrap())).unwrap()
}

/// Every test here relies on the same short timeout_ms (options are process-wide; tests run in
/// parallel, so each sets it rather than relying on another to have done so).
fn short_timeout() {
    assert_eq!(
        common::set_option("timeout_ms", &TIMEOUT_MS.to_string()),
        FINDITY_OK
    );
}

fn emulator(lifetime: i64) -> Emulator {
    short_timeout();
    Emulator::start(Config {
        lifetime_secs: lifetime,
        clients: vec![(ID.into(), SECRET.into())],
        unknown_users: vec!["unknown-person-1".into()],
        quiet: true,
        ..Config::default()
    })
    .unwrap()
}

/// Run one scenario; returns the problems found.
fn run(s: &Scenario) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("[{:?} {}] {what}", s.flow, s.name));
        }
    };
    let limit = Duration::from_millis(TIMEOUT_MS + 1000);

    // 1. Cold cache through the fault.
    let emu = emulator(3600);
    let url = emu.url();
    emu.add_fault(fault(s.fault));
    let t0 = Instant::now();
    let got = call(&url, s.flow, USER);
    let took = t0.elapsed();
    check(took < limit, format!("took {took:?}"));
    match (s.want, &got) {
        (Want::Ok, Ok(_)) => {}
        (Want::OkAfter(ms), Ok(_)) => check(
            took >= Duration::from_millis(ms),
            format!("answered after {took:?}: Retry-After {ms} ms not honoured"),
        ),
        (Want::Err(status, text), Err((rc, _, msg))) => {
            check(*rc == status, format!("status {rc}, want {status}: {msg}"));
            check(msg.contains(text), format!("message lacks {text:?}: {msg}"));
            check(!msg.contains(SECRET), format!("secret in message: {msg}"));
        }
        (want, got) => check(false, format!("want {want:?}, got {got:?}")),
    }
    check(
        emu.stats().redirect_target_hits == 0,
        "a redirect was followed".into(),
    );
    check(
        emu.stats().refresh_reuse == 0 && emu.stats().code_reuse == 0,
        "single-use grant reused".into(),
    );

    // 2. Nothing poisoned: healthy again, the next call works. Except after a Retry-After
    //    longer than timeout_ms: then the host stays paused (capped at 60 s) and the next call
    //    fails at once, saying until when, without sending anything.
    emu.clear_faults();
    let long_pause =
        s.fault.contains("kind=429&retry_after=") && !s.fault.contains("retry_after=1&");
    let sent_before = emu.stats().token_requests + emu.stats().authorization_grant;
    let t0 = Instant::now();
    let healthy = call(&url, s.flow, USER);
    if long_pause {
        let sent = emu.stats().token_requests + emu.stats().authorization_grant - sent_before;
        match &healthy {
            Err((rc, _, msg)) => {
                check(*rc == SRV, format!("paused host: status {rc}: {msg}"));
                check(
                    msg.contains("throttling")
                        && msg.contains("until")
                        && msg.contains("nothing was sent"),
                    format!("paused host: {msg}"),
                );
            }
            Ok(_) => check(false, "a token while the host is paused".into()),
        }
        check(sent == 0, format!("{sent} requests sent to a paused host"));
        check(
            t0.elapsed() < Duration::from_millis(1000),
            format!("paused host: waited {:?}", t0.elapsed()),
        );
    } else {
        check(healthy.is_ok(), format!("after the fault: {healthy:?}"));
    }
    drop(emu);

    // 3. Nothing lost (for faults that make renewal fail): a valid token (4 s, in its refresh window after 2.2 s) keeps being served
    //    while renewal meets the fault, without waiting for it.
    let renewal_fails = matches!(s.want, Want::Err(..)) || !s.fault.contains("expires_in");
    if !renewal_fails {
        return problems;
    }
    let emu = emulator(4);
    let url = emu.url();
    let first = call(&url, s.flow, USER);
    let Ok(first) = first else {
        check(false, format!("no first token: {first:?}"));
        return problems;
    };
    let mut persistent = fault(s.fault);
    persistent.count = 0;
    emu.add_fault(persistent);
    // Renewal of a held token goes through the refresh token first: fault that grant too.
    emu.add_fault(
        fault(&format!(
            "endpoint=token&grant=refresh_token&{}",
            s.fault.split('&').find(|p| p.starts_with("kind=")).unwrap()
        ))
        .count(0),
    );
    std::thread::sleep(Duration::from_millis(2200));
    for _ in 0..5 {
        let t0 = Instant::now();
        let again = call(&url, s.flow, USER);
        check(
            again.as_deref() == Ok(first.as_str()),
            format!("cached token not served: {again:?}"),
        );
        check(
            t0.elapsed() < Duration::from_millis(300),
            format!("waited {:?} for renewal", t0.elapsed()),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err((_, _, msg)) = call(&url, s.flow, USER) {
        check(!msg.contains(&first), "token in message".into());
    }
    problems
}

#[test]
fn fault_matrix() {
    let rc = unsafe {
        findity_set_option(
            c("timeout_ms").as_ptr(),
            c(&TIMEOUT_MS.to_string()).as_ptr(),
        )
    };
    assert_eq!(rc, FINDITY_OK);
    unsafe { findity_set_log_callback(Some(collect), std::ptr::null_mut()) };
    assert_eq!(common::set_option("log_level", "debug"), FINDITY_OK);
    let all = scenarios();
    let problems: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = all.iter().map(|s| scope.spawn(move || run(s))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    unsafe { findity_set_log_callback(None, std::ptr::null_mut()) };
    let lines = LOG_LINES.lock().unwrap();
    let tokens = SEEN_TOKENS.lock().unwrap();
    assert!(lines.len() > all.len(), "only {} log lines", lines.len());
    for line in lines.iter() {
        assert!(!line.contains(SECRET), "secret in log line: {line}");
        for t in tokens.iter() {
            assert!(!line.contains(t.as_str()), "token in log line: {line}");
        }
    }
    assert!(
        problems.is_empty(),
        "{} scenarios, problems:\n{}",
        all.len(),
        problems.join("\n")
    );
    eprintln!("fault matrix: {} scenarios passed", all.len());
}

/// A loopback port bound (so no one else gets it) but not listening (so connects are refused).
fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        assert_eq!(
            libc::getsockname(
                fd,
                (&mut got as *mut libc::sockaddr_in).cast(),
                &mut got_len
            ),
            0
        );
        (owned, u16::from_be(got.sin_port))
    }
}

#[test]
fn connection_refused_both_flows() {
    // A port bound but never listened on refuses connections, and nobody else can take it over
    // while we hold it (a freed emulator port could be reused by a parallel test's emulator).
    short_timeout();
    let (_socket, port) = refusing_port();
    let url = format!("http://127.0.0.1:{port}");
    for flow in [Flow::Org, Flow::User] {
        let t0 = Instant::now();
        let got = call(&url, flow, USER);
        assert!(t0.elapsed() < Duration::from_millis(TIMEOUT_MS + 1000));
        match got {
            Err((rc, http, msg)) => {
                assert!(rc == NET, "{flow:?}: {rc} {msg}");
                assert_eq!(http, 0);
                assert!(msg.contains("connect"), "{msg}");
            }
            Ok(_) => panic!("{flow:?}: a token from a dead server"),
        }
    }
}

#[test]
fn unknown_user_is_refused_without_poisoning_the_organization() {
    let emu = emulator(3600);
    let url = emu.url();
    let t0 = Instant::now();
    match call(&url, Flow::User, "unknown-person-1") {
        Err((rc, http, msg)) => {
            assert_eq!(rc, AUTH, "{msg}");
            assert_eq!(http, 400);
            assert!(
                msg.contains("USER_NOT_FOUND") && msg.contains("check user_id"),
                "{msg}"
            );
            assert!(!msg.contains(SECRET), "{msg}");
        }
        Ok(_) => panic!("a token for an unknown user"),
    }
    assert!(t0.elapsed() < Duration::from_millis(TIMEOUT_MS + 1000));
    assert_eq!(
        emu.stats().authorization_grant,
        1,
        "a refusal is not retried"
    );
    // The organization token obtained on the way stays good, and other users still work.
    call(&url, Flow::Org, USER).unwrap();
    call(&url, Flow::User, USER).unwrap();
    assert_eq!(emu.stats().client_credentials, 1);
}

/// A server that answers 502 and then stops answering: the error reports the 502 (what a person
/// can act on) rather than only the timeout of the last attempt.
#[test]
fn last_answer_reported_when_time_runs_out() {
    let emu = emulator(3600);
    let url = emu.url();
    emu.add_fault(fault("endpoint=token&kind=status:502&count=1"));
    emu.add_fault(fault("endpoint=token&kind=hang&count=0"));
    let t0 = Instant::now();
    let (rc, http, msg) = call(&url, Flow::Org, USER).unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(TIMEOUT_MS + 1000));
    assert_eq!((rc, http), (SRV, 502), "{msg}");
    assert!(msg.contains("ran out of timeout_ms"), "{msg}");
}
