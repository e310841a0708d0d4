//! A hostile server that echoes everything it receives (form bodies and the Authorization
//! header) into its error answers: no last-error message and no log line (debug level, through
//! the log callback, written anywhere in this process) may contain the client secret, a refresh
//! token, an access token or an authorization code, raw or encoded.

mod common;

use findity::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

const SECRET: &str = "client-secret-7f3a9c";
const ACCESS: &str = "ACCESS-TOKEN-b81e44";
const REFRESH: &str = "REFRESH-TOKEN-c02d11";
const CODE: &str = "AUTH-CODE-9e6a20";

struct Request {
    path: String,
    authorization: String,
    body: String,
}

/// A one-thread HTTP server whose answers are decided by `handler`; returns its base URL.
fn serve(handler: impl Fn(usize, &Request) -> (u16, String) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let (mut len, mut authorization) = (0usize, String::new());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap_or((&h, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => len = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let req = Request {
                path,
                authorization,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let (status, answer) = handler(n, &req);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

fn echo(req: &Request) -> String {
    let text = format!(
        "you sent {} with {} to {}",
        req.body, req.authorization, req.path
    );
    serde_json::json!({"error": "invalid_grant", "error_description": text}).to_string()
}

fn token_json() -> String {
    serde_json::json!({"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600, "refresh_token": REFRESH}).to_string()
}

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(_level: u32, msg: *const c_char, _: *mut c_void) {
    let line = CStr::from_ptr(msg).to_string_lossy().into_owned();
    // Never unwrap here: a panic must not unwind into the library (a failed test poisons it).
    LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

/// Every log line of this process, at debug level, from the first call on.
fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        unsafe { findity_set_log_callback(Some(collect), std::ptr::null_mut()) };
        assert_eq!(common::set_option("log_level", "debug"), FINDITY_OK);
    });
}

/// No log line so far holds a secret in any form; and the library did log (the refusals).
fn assert_logs_clean() {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(!lines.is_empty(), "nothing was logged");
    for line in lines.iter() {
        for s in [SECRET, ACCESS, REFRESH, CODE] {
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            assert!(
                !line.contains(s) && !line.contains(&encoded),
                "log line leaks {s}: {line}"
            );
        }
    }
}

fn get(url: &str, user: Option<&str>) -> (u32, String) {
    capture_logs();
    match common::token(url, "client-1", SECRET, user) {
        Ok(_) => (FINDITY_OK, String::new()),
        Err((rc, _, msg)) => (rc, msg),
    }
}

fn assert_clean(msg: &str) {
    for s in [SECRET, ACCESS, REFRESH, CODE] {
        assert!(!msg.contains(s), "message leaks {s}: {msg}");
    }
    assert!(
        msg.contains("[redacted]"),
        "the echo was redacted, not dropped: {msg}"
    );
}

#[test]
fn refused_refresh_and_client_credentials_echoing_secrets() {
    // 1st: a token. Then: the refresh and the fallback client_credentials both refused with echoes.
    let url = serve(|n, req| match n {
        0 => (200, token_json()),
        _ => (
            if req.body.contains("refresh_token=") {
                400
            } else {
                401
            },
            echo(req),
        ),
    });
    assert_eq!(get(&url, None).0, FINDITY_OK);
    common::invalidate(&url, "client-1", None);
    let (rc, msg) = get(&url, None);
    assert_eq!(rc, FINDITY_ERR_AUTH, "{msg}");
    assert_clean(&msg);
    assert_logs_clean();
}

#[test]
fn authorization_grant_and_code_exchange_echoing_secrets() {
    // Organization token, then the grant echoes the Authorization header (the org token):
    // the library renews the org token once and tries again, then gives up.
    let url = serve(|_, req| {
        if req.path.ends_with("authorization-grant") {
            (401, echo(req))
        } else {
            (200, token_json())
        }
    });
    let (rc, msg) = get(&url, Some("employee-1"));
    assert_eq!(rc, FINDITY_ERR_AUTH, "{msg}");
    assert_clean(&msg);

    // The grant succeeds, the code exchange is refused with an echo of the code.
    let url = serve(|_, req| {
        if req.path.ends_with("authorization-grant") {
            (200, serde_json::json!({ "code": CODE }).to_string())
        } else if req.body.contains("authorization_code") {
            (400, echo(req))
        } else {
            (200, token_json())
        }
    });
    let (rc, msg) = get(&url, Some("employee-2"));
    assert_eq!(rc, FINDITY_ERR_AUTH, "{msg}");
    assert_clean(&msg);
    assert_logs_clean();
}

#[test]
fn html_error_page_echoing_the_secret() {
    let url = serve(|_, req| (403, format!("<html>oops {}</html>", req.body)));
    let (rc, msg) = get(&url, None);
    assert_eq!(rc, FINDITY_ERR_AUTH, "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");
    assert!(msg.contains("HTML page"), "{msg}");
    assert_logs_clean();
}
