//! What real server software does that the emulator's defaults don't: a gateway that gzips
//! token answers whatever the request accepts, a coding the library can't read, a gzip bomb,
//! and a Retry-After longer than the caller's timeout (issue 18, "Found against real server
//! software").

mod common;

use findity::ffi::{FINDITY_ERR_AUTH, FINDITY_ERR_SERVER};
use findity_emulator::{Config, Emulator};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ID: &str = "client-interop";
const SECRET: &str = "secret-interop-5d1e";

fn gzip_emulator(lifetime: i64) -> Emulator {
    Emulator::start(Config {
        clients: vec![(ID.into(), SECRET.into())],
        lifetime_secs: lifetime,
        gzip: true,
        quiet: true,
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn organization_and_user_tokens_through_a_gzipping_gateway() {
    let emu = gzip_emulator(3600);
    let url = emu.url();
    let org = common::token(&url, ID, SECRET, None).expect("organization token");
    let user = common::token(&url, ID, SECRET, Some("gz-user")).expect("user token");
    assert_ne!(org, user);
    // A renewal with the refresh token goes through gzip as well.
    common::invalidate(&url, ID, None);
    let renewed = common::token(&url, ID, SECRET, None).expect("renewed organization token");
    assert_ne!(renewed, org);
    let s = emu.stats();
    assert_eq!(s.refresh_token, 1, "renewed with the refresh token");
    assert_eq!(
        s.client_credentials, 1,
        "no fallback: the refresh token was accepted"
    );
    // An error answer is gzipped too, and still says what the server said.
    let (rc, http, msg) = common::token(&url, ID, "not-the-secret-42", None).unwrap_err();
    assert_eq!((rc, http), (FINDITY_ERR_AUTH, 401), "{msg}");
    assert!(msg.contains("invalid_client"), "{msg}");
}

/// A loopback server giving every request the same raw answer, recording request heads.
struct Raw {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

fn raw_server(answer: Vec<u8>) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break 0,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            if head_end == 0 {
                continue;
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + length {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            seen.lock().unwrap().push(head);
            let _ = conn.write_all(&answer);
            let _ = conn.flush();
        }
    });
    Raw { url, heads }
}

fn answer(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn gzip(data: &[u8], times: usize) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..times {
        w.write_all(data).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn asks_for_identity_and_names_a_coding_it_cannot_read() {
    let srv = raw_server(answer(
        "200 OK",
        &["Content-Type: application/json", "Content-Encoding: br"],
        b"\x1b\x2a\x00\xf8\x1d\xa9\x53\x98\x08\x91\x04",
    ));
    let (rc, http, msg) = common::token(&srv.url, ID, SECRET, None).unwrap_err();
    assert_eq!((rc, http), (FINDITY_ERR_SERVER, 200), "{msg}");
    assert!(msg.contains("Content-Encoding \"br\""), "{msg}");
    assert!(!msg.contains("not JSON"), "{msg}");
    let heads = srv.heads.lock().unwrap();
    assert!(
        heads
            .iter()
            .all(|h| h.lines().any(|l| l.trim() == "accept-encoding: identity")),
        "{heads:?}"
    );
}

#[test]
fn a_gzipped_token_answer_from_a_plain_server_is_read() {
    let body = br#"{"access_token":"gz-token-1234","token_type":"bearer","expires_in":"3600"}"#;
    let srv = raw_server(answer(
        "200 OK",
        &["Content-Type: application/json", "Content-Encoding: gzip"],
        &gzip(body, 1),
    ));
    assert_eq!(
        common::token(&srv.url, ID, SECRET, None).unwrap(),
        "gz-token-1234"
    );
}

#[test]
fn a_gzip_bomb_fails_cleanly() {
    // 64 MiB of spaces in about 64 KiB.
    let bomb = gzip(&[b' '; 1 << 16], 1 << 10);
    assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
    let srv = raw_server(answer(
        "200 OK",
        &["Content-Type: application/json", "Content-Encoding: gzip"],
        &bomb,
    ));
    let t0 = Instant::now();
    let (rc, http, msg) = common::token(&srv.url, ID, SECRET, None).unwrap_err();
    assert_eq!((rc, http), (FINDITY_ERR_SERVER, 200), "{msg}");
    assert!(
        msg.contains("larger than 1048576 bytes once decoded (Content-Encoding \"gzip\")"),
        "{msg}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

#[test]
fn a_retry_after_past_the_timeout_is_reported_as_such() {
    let srv = raw_server(answer(
        "429 Too Many Requests",
        &["Content-Type: application/json", "Retry-After: 30"],
        br#"{"error":"too_many_requests","error_description":"slow down"}"#,
    ));
    let t0 = Instant::now();
    let (rc, http, msg) = common::token(&srv.url, ID, SECRET, None).unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "returned at once: {:?}",
        t0.elapsed()
    );
    assert_eq!((rc, http), (FINDITY_ERR_SERVER, 429), "{msg}");
    assert!(
        msg.contains("the server asked to wait 30 s (Retry-After), longer than the"),
        "{msg}"
    );
    assert!(msg.contains("returned at once"), "{msg}");
    assert!(!msg.contains("retried"), "nothing was retried: {msg}");
    assert_eq!(srv.heads.lock().unwrap().len(), 1, "one request");
}
