//! End-to-end tests of the emulator over real loopback sockets, with a tiny
//! std-only HTTP client (so the emulator is tested independently of any
//! HTTP client library).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use findity_emulator::{Config, Emulator, Fault, Grant, Revoke};
use serde_json::Value;

const ID: &str = "demo-client";
const SECRET: &str = "demo-secret";

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn s(&self, key: &str) -> String {
        self.json()[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key} in {}", self.text()))
            .to_string()
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    Resp {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req.into_bytes()
}

/// One request on a fresh connection; reads until the server closes.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&raw_request(method, path, headers, body))
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn post_form(addr: SocketAddr, path: &str, pairs: &[(&str, &str)]) -> Resp {
    request(addr, "POST", path, &[FORM], &form(pairs))
}

fn client_credentials(addr: SocketAddr) -> Resp {
    post_form(
        addr,
        "/api/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ],
    )
}

fn refresh(addr: SocketAddr, rt: &str) -> Resp {
    post_form(
        addr,
        "/api/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", ID),
            ("refresh_token", rt),
        ],
    )
}

fn bearer_get(addr: SocketAddr, path: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    request(addr, "GET", path, &[("Authorization", &auth)], "")
}

fn grant(addr: SocketAddr, token: &str, user: &str) -> Resp {
    let auth = format!("Bearer {token}");
    let body = if user.is_empty() {
        String::new()
    } else {
        form(&[("user_id", user)])
    };
    request(
        addr,
        "POST",
        "/api/oauth/authorization-grant",
        &[("Authorization", &auth), FORM],
        &body,
    )
}

fn exchange(addr: SocketAddr, code: &str) -> Resp {
    post_form(
        addr,
        "/api/oauth/token",
        &[("grant_type", "authorization_code"), ("code", code)],
    )
}

fn start() -> Emulator {
    start_with(Config::default())
}

fn start_with(cfg: Config) -> Emulator {
    Emulator::start(Config { quiet: true, ..cfg }).unwrap()
}

#[test]
fn client_credentials_success_and_failure() {
    let emu = start();
    let a = emu.addr();
    let r = client_credentials(a);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    let at = j["access_token"].as_str().unwrap();
    assert_eq!(at.len(), 128);
    assert!(at.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3600);
    assert!(j["refresh_token"].as_str().unwrap().contains('+'));

    // Trailing-slash spelling from Findity's docs.
    let r = post_form(
        a,
        "/api/oauth/token/",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ],
    );
    assert_eq!(r.status, 200);

    for pairs in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", "wrong"),
        ],
        vec![("grant_type", "client_credentials"), ("client_id", ID)],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", SECRET),
        ],
    ] {
        let r = post_form(a, "/api/oauth/token", &pairs);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            serde_json::json!({"error":"invalid_client","error_description":"Client authentication failed"})
        );
    }
    let r = post_form(a, "/api/oauth/token", &[("client_id", ID)]);
    assert_eq!((r.status, r.s("error")), (400, "invalid_request".into()));
    let r = post_form(a, "/api/oauth/token", &[("grant_type", "password")]);
    assert_eq!(
        (r.status, r.s("error")),
        (400, "unsupported_grant_type".into())
    );
    let r = request(a, "GET", "/api/oauth/token", &[], "");
    assert_eq!(r.status, 405);
    let r = request(
        a,
        "POST",
        "/api/oauth/token",
        &[("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!((r.status, r.s("error")), (400, "invalid_request".into()));

    let s = emu.stats();
    assert_eq!(s.token_requests, 9);
    assert_eq!(s.client_credentials, 5);
    assert_eq!(s.issued_for("org:demo-client"), 2);
}

#[test]
fn custom_clients_and_no_refresh_token() {
    let emu = start_with(Config {
        clients: vec![("erp".into(), "s3cr+t&=".into())],
        refresh_tokens: false,
        lifetime_secs: 120,
        ..Config::default()
    });
    let r = post_form(
        emu.addr(),
        "/api/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "erp"),
            ("client_secret", "s3cr+t&="),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("refresh_token").is_none());
    assert_eq!(r.json()["expires_in"], 120);
    assert_eq!(client_credentials(emu.addr()).status, 401);
}

#[test]
fn refresh_token_is_single_use() {
    let emu = start();
    let a = emu.addr();
    let first = client_credentials(a);
    let rt = first.s("refresh_token");
    let r = refresh(a, &rt);
    assert_eq!(r.status, 200, "{}", r.text());
    let (at2, rt2) = (r.s("access_token"), r.s("refresh_token"));
    assert_ne!(rt2, rt);
    assert_eq!(
        bearer_get(a, "/api/v1/me", &at2).s("subject"),
        "org:demo-client"
    );

    let r = refresh(a, &rt);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        serde_json::json!({"error":"invalid_grant","error_description":"Refresh token is invalid, used or revoked"})
    );
    assert_eq!(emu.stats().refresh_reuse, 1);

    // Unknown token and a token that lost its '+' to bad encoding: not reuse.
    assert_eq!(refresh(a, "nope").status, 400);
    assert_eq!(refresh(a, &rt2.replace('+', " ")).status, 400);
    // Another client id cannot use it.
    let r = post_form(
        a,
        "/api/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "other"),
            ("refresh_token", &rt2),
        ],
    );
    assert_eq!(r.status, 401);
    let r = post_form(
        a,
        "/api/oauth/token",
        &[("grant_type", "refresh_token"), ("client_id", ID)],
    );
    assert_eq!((r.status, r.s("error")), (400, "invalid_request".into()));
    // rt2 is still good.
    assert_eq!(refresh(a, &rt2).status, 200);
    let s = emu.stats();
    assert_eq!(s.refresh_reuse, 1);
    assert_eq!(s.refresh_token, 7);
    assert_eq!(s.issued_for("org:demo-client"), 3);
}

#[test]
fn revoked_refresh_is_not_reuse() {
    let emu = start();
    let a = emu.addr();
    let r = client_credentials(a);
    let (at, rt) = (r.s("access_token"), r.s("refresh_token"));
    let used = client_credentials(a).s("refresh_token");
    assert_eq!(refresh(a, &used).status, 200);
    let r = request(a, "POST", "/_emulator/revoke?what=refresh", &[], "");
    assert_eq!(r.status, 200);
    let r = refresh(a, &rt);
    assert_eq!((r.status, r.s("error")), (400, "invalid_grant".into()));
    assert_eq!(emu.stats().refresh_reuse, 0);
    // A token used before the revocation is still reuse.
    assert_eq!(refresh(a, &used).status, 400);
    assert_eq!(emu.stats().refresh_reuse, 1);
    // Access tokens survive refresh revocation, not access revocation.
    assert_eq!(bearer_get(a, "/api/v1/me", &at).status, 200);
    emu.revoke(Revoke::Access);
    assert_eq!(bearer_get(a, "/api/v1/me", &at).status, 401);
}

#[test]
fn authorization_grant_flow() {
    let emu = start_with(Config {
        unknown_users: vec!["unknown-42".into()],
        ..Config::default()
    });
    let a = emu.addr();
    let org = client_credentials(a).s("access_token");
    let r = grant(a, &org, "8ab28c3e6f8023c3016f8046be110002");
    assert_eq!(r.status, 200, "{}", r.text());
    let code = r.s("code");
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_hexdigit()));

    // The code's own client_id may be sent along.
    let r = post_form(
        a,
        "/api/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", ID),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (user_at, user_rt) = (r.s("access_token"), r.s("refresh_token"));
    let me = bearer_get(a, "/api/v1/me", &user_at);
    assert_eq!(
        me.json(),
        serde_json::json!({"subject":"user:8ab28c3e6f8023c3016f8046be110002","path":"/api/v1/me"})
    );
    // Refreshing a user token keeps the user as subject.
    let r = refresh(a, &user_rt);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        bearer_get(a, "/api/v1/expenses", &r.s("access_token")).s("subject"),
        "user:8ab28c3e6f8023c3016f8046be110002"
    );

    // Code single use.
    let r = exchange(a, &code);
    assert_eq!((r.status, r.s("error")), (400, "invalid_grant".into()));
    assert_eq!(emu.stats().code_reuse, 1);
    assert_eq!(exchange(a, "0123456789abcdef0123456789abcdef").status, 400);
    let r = post_form(
        a,
        "/api/oauth/token",
        &[("grant_type", "authorization_code")],
    );
    assert_eq!((r.status, r.s("error")), (400, "invalid_request".into()));
    assert_eq!(emu.stats().code_reuse, 1);

    // Bearer problems.
    let r = request(
        a,
        "POST",
        "/api/oauth/authorization-grant/",
        &[FORM],
        "user_id=alice",
    );
    assert_eq!((r.status, r.s("error")), (401, "invalid_token".into()));
    assert_eq!(grant(a, "bogus", "alice").status, 401);
    assert_eq!(
        grant(a, &user_at, "alice").status,
        401,
        "user token must not grant"
    );
    // Findity's own error shape.
    let r = grant(a, &org, "unknown-42");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        serde_json::json!({"code":"USER_NOT_FOUND","description":"No user with id unknown-42"})
    );
    let r = grant(a, &org, "");
    assert_eq!(
        r.json(),
        serde_json::json!({"code":"INVALID_REQUEST","description":"user_id is required"})
    );

    let s = emu.stats();
    assert_eq!(s.authorization_grant, 6);
    assert_eq!(s.authorization_code, 4);
    assert_eq!(s.issued_for("user:8ab28c3e6f8023c3016f8046be110002"), 2);
}

#[test]
fn configured_users_only() {
    let emu = start_with(Config {
        users: vec!["alice".into()],
        ..Config::default()
    });
    let org = client_credentials(emu.addr()).s("access_token");
    assert_eq!(grant(emu.addr(), &org, "alice").status, 200);
    assert_eq!(grant(emu.addr(), &org, "bob").s("code"), "USER_NOT_FOUND");
}

#[test]
fn resource_api_and_expiry() {
    let emu = start();
    let a = emu.addr();
    let r = request(a, "GET", "/api/v1/me", &[], "");
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), serde_json::json!({"error":"invalid_token"}));
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(bearer_get(a, "/api/v1/me", "nope").status, 401);
    let at = client_credentials(a).s("access_token");
    assert_eq!(bearer_get(a, "/api/v1/me", &at).status, 200);
    emu.set_lifetime(0);
    let r = client_credentials(a);
    assert_eq!(r.json()["expires_in"], 0);
    assert_eq!(
        bearer_get(a, "/api/v1/me", &r.s("access_token")).status,
        401
    );
    emu.set_omit_expires_in(true);
    assert!(client_credentials(a).json().get("expires_in").is_none());
    assert_eq!(emu.stats().api_requests, 4);
    assert_eq!(request(a, "GET", "/nothing", &[], "").status, 404);
}

fn add(emu: &Emulator, kind: &str) {
    emu.add_fault(Fault::parse("token", kind, 1).unwrap());
}

#[test]
fn status_and_body_faults() {
    let emu = start();
    let a = emu.addr();
    for (kind, status, error) in [
        ("status:503", 503, "server_error"),
        ("status:500", 500, "server_error"),
        ("status:401", 401, "invalid_client"),
        ("status:400", 400, "invalid_request"),
        ("invalid_grant", 400, "invalid_grant"),
    ] {
        add(&emu, kind);
        let r = client_credentials(a);
        assert_eq!(
            (r.status, r.s("error")),
            (status, error.to_string()),
            "{kind}"
        );
    }
    add(&emu, "429");
    let r = client_credentials(a);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    emu.add_fault(Fault::parse("token", "429", 1).unwrap().retry_after(7));
    assert_eq!(client_credentials(a).header("retry-after"), Some("7"));

    add(&emu, "malformed");
    let r = client_credentials(a);
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    add(&emu, "no_access_token");
    assert_eq!(
        client_credentials(a).json(),
        serde_json::json!({"token_type":"Bearer","expires_in":3600})
    );
    add(&emu, "html");
    let r = client_credentials(a);
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<html>"));
    add(&emu, "text");
    let r = client_credentials(a);
    assert_eq!(r.status, 500);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    add(&emu, "huge");
    let r = client_credentials(a);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 10 * 1024 * 1024);
    assert!(r.body.starts_with(b"{\"access_token\":\""));

    add(&emu, "redirect");
    let r = client_credentials(a);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/_emulator/redirect-target"));
    assert_eq!(emu.stats().redirect_target_hits, 0);
    let r = post_form(
        a,
        "/_emulator/redirect-target",
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.s("access_token").len(), 128);
    let s = emu.stats();
    assert_eq!(s.redirect_target_hits, 1);
    assert_eq!(s.faults_served, 13);
    assert_eq!(s.client_credentials, 13);
    assert_eq!(s.issued_for("org:demo-client"), 0);
    assert_eq!(client_credentials(a).status, 200, "faults are used up");
}

#[test]
fn expires_in_and_delay_faults() {
    let emu = start();
    let a = emu.addr();
    for raw in ["-5", "0", "99999999999999", "\"3600\"", "null"] {
        add(&emu, &format!("expires_in:{raw}"));
        let r = client_credentials(a);
        assert_eq!(r.status, 200);
        let expected: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(r.json()["expires_in"], expected, "{raw}");
        // The token was really issued.
        assert_eq!(
            bearer_get(a, "/api/v1/me", &r.s("access_token")).status,
            200
        );
    }
    add(&emu, "delay:300");
    let t = Instant::now();
    assert_eq!(client_credentials(a).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn connection_faults() {
    let emu = start();
    let a = emu.addr();
    let send = |s: &mut TcpStream| {
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ]);
        s.write_all(&raw_request("POST", "/api/oauth/token", &[FORM], &body))
            .unwrap();
    };

    add(&emu, "close");
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    send(&mut s);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty());

    add(&emu, "reset");
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    send(&mut s);
    let mut got = Vec::new();
    let res = s.read_to_end(&mut got);
    assert!(
        got.len() < 40,
        "partial head only: {:?}",
        String::from_utf8_lossy(&got)
    );
    #[cfg(unix)]
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    let _ = res;

    add(&emu, "hang");
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    send(&mut s);
    let mut buf = [0u8; 16];
    let e = s.read(&mut buf).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    // The hanging request is not counted as in flight, and the server still serves others.
    assert_eq!(client_credentials(a).status, 200);
    assert_eq!(emu.stats().in_flight, 0);
    assert_eq!(emu.stats().faults_served, 3);

    // Shutdown must not wait for the hanging connection.
    let t = Instant::now();
    emu.shutdown();
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "connection closed by shutdown"
    );
}

#[test]
fn fault_matching_rules() {
    let emu = start();
    let a = emu.addr();
    emu.add_fault(
        Fault::parse("token", "status:503", 2)
            .unwrap()
            .grant(Grant::RefreshToken),
    );
    let rt = client_credentials(a).s("refresh_token");
    assert_eq!(refresh(a, &rt).status, 503);
    assert_eq!(refresh(a, &rt).status, 503);
    assert_eq!(
        refresh(a, &rt).status,
        200,
        "faulted refreshes did not use the token"
    );

    emu.add_fault(Fault::parse("api", "status:500", 0).unwrap());
    for _ in 0..3 {
        assert_eq!(request(a, "GET", "/api/v1/me", &[], "").status, 500);
    }
    assert_eq!(
        client_credentials(a).status,
        200,
        "api fault does not hit token"
    );
    assert_eq!(emu.faults().len(), 1);
    emu.clear_faults();
    assert_eq!(request(a, "GET", "/api/v1/me", &[], "").status, 401);

    emu.add_fault(Fault::parse("grant", "status:502", 1).unwrap());
    let org = client_credentials(a).s("access_token");
    assert_eq!(grant(a, &org, "alice").status, 502);
    assert_eq!(grant(a, &org, "alice").status, 200);
    emu.add_fault(Fault::parse("any", "invalid_grant", 1).unwrap());
    assert_eq!(grant(a, &org, "alice").s("error"), "invalid_grant");
    let s = emu.stats();
    assert_eq!(s.faults_served, 7);
    assert_eq!(s.refresh_token, 3);
    assert_eq!(s.authorization_grant, 3);
}

#[test]
fn control_api_over_http() {
    let emu = start();
    let a = emu.addr();
    // Query parameters with an empty body, as a bare socket client sends them.
    let r = request(
        a,
        "POST",
        "/_emulator/fault?endpoint=token&kind=status:503&count=2",
        &[],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["queued"], 1);
    assert_eq!(client_credentials(a).status, 503);
    // Form body works too.
    let r = post_form(
        a,
        "/_emulator/fault",
        &[
            ("kind", "429"),
            ("retry_after", "3"),
            ("grant", "client_credentials"),
        ],
    );
    assert_eq!(r.status, 200);
    let r = request(a, "GET", "/_emulator/faults", &[], "");
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = request(a, "POST", "/_emulator/fault/clear", &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(client_credentials(a).status, 200);

    for bad in [
        "kind=bogus",
        "kind=status:abc",
        "endpoint=nowhere&kind=hang",
        "kind=hang&colour=red",
        "count=1",
    ] {
        let r = request(a, "POST", &format!("/_emulator/fault?{bad}"), &[], "");
        assert_eq!(r.status, 400, "{bad}");
    }

    let r = request(
        a,
        "POST",
        "/_emulator/config?lifetime=42&latency_ms=0&refresh_tokens=0&omit_expires_in=0",
        &[],
        "",
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"lifetime":42,"latency_ms":0,"refresh_tokens":false,"omit_expires_in":false,
                           "unknown_users":[],"echo":false,"throttle":null})
    );
    let t = client_credentials(a).json();
    assert_eq!(t["expires_in"], 42);
    assert!(t.get("refresh_token").is_none());
    assert_eq!(
        request(a, "POST", "/_emulator/config?lifetime=x", &[], "").status,
        400
    );
    assert_eq!(
        request(a, "GET", "/_emulator/config", &[], "").json()["lifetime"],
        42
    );

    let r = request(a, "GET", "/_emulator/stats", &[], "");
    assert_eq!(r.status, 200);
    let j = r.json();
    for k in [
        "token_requests",
        "client_credentials",
        "refresh_token",
        "authorization_code",
        "authorization_grant",
        "api_requests",
        "refresh_reuse",
        "code_reuse",
        "redirect_target_hits",
        "faults_served",
        "throttled",
        "max_concurrent",
        "in_flight",
    ] {
        assert!(j[k].is_u64(), "{k}");
    }
    assert_eq!(j["token_requests"], 3);
    assert_eq!(j["by_subject"]["org:demo-client"], 2);
    assert_eq!(
        findity_emulator::Stats::from_json(&r.text()).unwrap(),
        emu.stats()
    );

    let r = request(a, "POST", "/_emulator/reset", &[], "");
    assert_eq!(r.status, 200);
    let s = emu.stats();
    assert_eq!((s.token_requests, s.by_subject.len()), (0, 0));
    assert_eq!(
        client_credentials(a).json()["expires_in"],
        3600,
        "start-up config restored"
    );

    assert_eq!(request(a, "GET", "/_emulator/nope", &[], "").status, 404);
    assert_eq!(request(a, "GET", "/_emulator/reset", &[], "").status, 405);
    assert_eq!(
        request(a, "POST", "/_emulator/revoke?what=everything", &[], "").status,
        400
    );
    assert_eq!(request(a, "GET", "/_emulator/ca.pem", &[], "").status, 404);
    assert_eq!(request(a, "GET", "/_emulator/health", &[], "").status, 200);
}

#[test]
fn max_concurrent_with_latency() {
    let emu = start_with(Config {
        latency_ms: 300,
        ..Config::default()
    });
    let a = emu.addr();
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || client_credentials(a).status))
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let s = emu.stats();
    assert_eq!(s.max_concurrent, 4);
    assert_eq!(s.in_flight, 0);
    emu.reset();
    emu.set_latency(0);
    client_credentials(a);
    client_credentials(a);
    assert_eq!(emu.stats().max_concurrent, 1);
}

#[test]
fn keep_alive_and_limits() {
    let emu = start();
    let a = emu.addr();
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for _ in 0..2 {
        s.write_all(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let mut len = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
    }

    let big = "a".repeat(65 * 1024);
    assert_eq!(
        request(a, "POST", "/api/oauth/token", &[FORM], &big).status,
        413
    );
    let r = request(
        a,
        "POST",
        "/api/oauth/token",
        &[("Transfer-Encoding", "chunked")],
        "",
    );
    assert_eq!(r.status, 411);
}

#[test]
fn refuses_non_loopback() {
    let e = Emulator::start(Config {
        host: "0.0.0.0".into(),
        quiet: true,
        ..Config::default()
    })
    .err()
    .expect("must refuse");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    let emu = start_with(Config {
        host: "::1".into(),
        ..Config::default()
    });
    assert!(emu.url().starts_with("http://[::1]:"));
}

#[test]
fn tls_handshake_with_ca() {
    let emu = start_with(Config {
        tls: true,
        ..Config::default()
    });
    assert!(emu.url().starts_with("https://127.0.0.1:"));
    let pem = emu.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(emu.ca_der().unwrap().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let cfg = Arc::new(cfg);
    for name in ["localhost", "127.0.0.1"] {
        let conn = rustls::ClientConnection::new(cfg.clone(), name.to_string().try_into().unwrap())
            .unwrap();
        let tcp = TcpStream::connect(emu.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(&raw_request("GET", "/_emulator/ca.pem", &[], ""))
            .unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw);
        let r = parse_response(&raw);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), pem);
    }
    let r = {
        let conn =
            rustls::ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(emu.addr()).unwrap());
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ]);
        tls.write_all(&raw_request("POST", "/api/oauth/token", &[FORM], &body))
            .unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw);
        parse_response(&raw)
    };
    assert_eq!(r.status, 200);
}

#[test]
fn binary_prints_url_and_exits_on_stdin_close() {
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("findity-emu-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url_file = dir.join("url");
    let ca_file = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_findity-emulator"))
        .args([
            "--exit-on-stdin-close",
            "--quiet",
            "--tls",
            "--user",
            "alice",
        ])
        .arg("--url-file")
        .arg(&url_file)
        .arg("--ca-out")
        .arg(&ca_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("https://127.0.0.1:"), "{line:?}");
    assert_eq!(std::fs::read_to_string(&url_file).unwrap(), line);
    assert!(std::fs::read_to_string(&ca_file)
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    drop(child.stdin.take());
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "did not exit on stdin close"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);

    let out = Command::new(env!("CARGO_BIN_EXE_findity-emulator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/_emulator/fault"));
    let out = Command::new(env!("CARGO_BIN_EXE_findity-emulator"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Sends a form and reads until the server closes, resets or goes quiet
/// for `wait`; returns what arrived.
fn send_expecting_no_answer(
    addr: SocketAddr,
    path: &str,
    pairs: &[(&str, &str)],
    wait: Duration,
) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(&raw_request("POST", path, &[FORM], &form(pairs)))
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

fn refresh_pairs(rt: &str) -> [(&str, &str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", ID),
        ("refresh_token", rt),
    ]
}

#[test]
fn consume_faults_use_up_the_grant() {
    let emu = start();
    let a = emu.addr();
    let short = Duration::from_millis(300);
    for kind in ["consume:reset", "consume:close", "consume:hang"] {
        let rt = client_credentials(a).s("refresh_token");
        emu.add_fault(
            Fault::parse("token", kind, 1)
                .unwrap()
                .grant(Grant::RefreshToken),
        );
        let before = emu.stats().issued_for("org:demo-client");
        let got = send_expecting_no_answer(a, "/api/oauth/token", &refresh_pairs(&rt), short);
        assert!(
            got.len() < 40,
            "{kind}: {:?}",
            String::from_utf8_lossy(&got)
        );
        // Processed: the token is used and a new pair was issued.
        assert_eq!(
            emu.stats().issued_for("org:demo-client"),
            before + 1,
            "{kind}"
        );
        let r = refresh(a, &rt);
        assert_eq!(
            (r.status, r.s("error")),
            (400, "invalid_grant".into()),
            "{kind}"
        );
    }
    assert_eq!(emu.stats().refresh_reuse, 3);

    // consume:status on a code exchange: 502 server_error, the code is used.
    let org = client_credentials(a).s("access_token");
    let code = grant(a, &org, "alice").s("code");
    emu.add_fault(
        Fault::parse("token", "consume:status:502", 1)
            .unwrap()
            .retry_after(3),
    );
    let r = exchange(a, &code);
    assert_eq!((r.status, r.s("error")), (502, "server_error".into()));
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(emu.stats().issued_for("user:alice"), 1);
    assert_eq!(exchange(a, &code).status, 400);
    assert_eq!(emu.stats().code_reuse, 1);

    // A failing grant under consume:* still loses its answer; nothing else is used up or double counted.
    let used = client_credentials(a).s("refresh_token");
    assert_eq!(refresh(a, &used).status, 200);
    let before = emu.stats();
    emu.add_fault(Fault::parse("token", "consume:status:503", 1).unwrap());
    let r = refresh(a, &used);
    assert_eq!((r.status, r.s("error")), (503, "server_error".into()));
    let s = emu.stats();
    assert_eq!(s.refresh_reuse, before.refresh_reuse + 1);
    assert_eq!(
        s.issued_for("org:demo-client"),
        before.issued_for("org:demo-client")
    );

    // On the authorization-grant endpoint (here refused for want of a bearer token, then lost).
    emu.add_fault(Fault::parse("grant", "consume:close", 1).unwrap());
    let got = send_expecting_no_answer(
        a,
        "/api/oauth/authorization-grant",
        &[("user_id", "alice")],
        short,
    );
    assert!(got.is_empty());
    emu.add_fault(Fault::parse("grant", "consume:status:500", 1).unwrap());
    assert_eq!(grant(a, &org, "alice").status, 500);
    assert_eq!(grant(a, &org, "alice").status, 200);

    // Through the control API too.
    let r = request(
        a,
        "POST",
        "/_emulator/fault?kind=consume:status:502&count=2",
        &[],
        "",
    );
    assert_eq!(r.json()["fault"]["kind"], "consume:status:502");
    assert_eq!(
        request(
            a,
            "POST",
            "/_emulator/fault?kind=consume:status:200",
            &[],
            ""
        )
        .status,
        400
    );
}

#[test]
fn reuse_is_counted_whatever_fault_hits_the_request() {
    let emu = start();
    let a = emu.addr();
    let rt = client_credentials(a).s("refresh_token");
    assert_eq!(refresh(a, &rt).status, 200);
    for (kind, status) in [("status:503", 503), ("429", 429)] {
        add(&emu, kind);
        assert_eq!(refresh(a, &rt).status, status);
    }
    for kind in ["reset", "close", "hang"] {
        add(&emu, kind);
        let got = send_expecting_no_answer(
            a,
            "/api/oauth/token",
            &refresh_pairs(&rt),
            Duration::from_millis(200),
        );
        assert!(got.len() < 40, "{kind}");
    }
    assert_eq!(emu.stats().refresh_reuse, 5);
    // Without a fault: counted once, not twice.
    assert_eq!(refresh(a, &rt).status, 400);
    assert_eq!(emu.stats().refresh_reuse, 6);

    let org = client_credentials(a).s("access_token");
    let code = grant(a, &org, "alice").s("code");
    assert_eq!(exchange(a, &code).status, 200);
    add(&emu, "reset");
    send_expecting_no_answer(
        a,
        "/api/oauth/token",
        &[("grant_type", "authorization_code"), ("code", &code)],
        Duration::from_millis(200),
    );
    add(&emu, "status:500");
    assert_eq!(exchange(a, &code).status, 500);
    assert_eq!(exchange(a, &code).status, 400);
    assert_eq!(emu.stats().code_reuse, 3);
}

#[test]
fn form_content_type_is_required() {
    let emu = start();
    let a = emu.addr();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", ID),
        ("client_secret", SECRET),
    ]);
    let r = request(a, "POST", "/api/oauth/token", &[], &body);
    assert_eq!((r.status, r.s("error")), (400, "invalid_request".into()));
    let ct = (
        "Content-Type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    );
    assert_eq!(
        request(a, "POST", "/api/oauth/token", &[ct], &body).status,
        200
    );
    let org = client_credentials(a).s("access_token");
    let auth = format!("Bearer {org}");
    let r = request(
        a,
        "POST",
        "/api/oauth/authorization-grant",
        &[("Authorization", &auth)],
        "user_id=alice",
    );
    assert_eq!((r.status, r.s("error")), (400, "invalid_request".into()));
    // Counted by what the body says, even when refused.
    assert_eq!(emu.stats().client_credentials, 3);
}

#[test]
fn code_exchange_checks_client_if_sent() {
    let emu = start_with(Config {
        clients: vec![
            (ID.into(), SECRET.into()),
            ("other".into(), "other-secret".into()),
        ],
        ..Config::default()
    });
    let a = emu.addr();
    let org = client_credentials(a).s("access_token");
    let code = grant(a, &org, "alice").s("code");
    let with = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        pairs.extend_from_slice(extra);
        post_form(a, "/api/oauth/token", &pairs)
    };
    let r = with(&[("client_id", "other")]);
    assert_eq!((r.status, r.s("error")), (400, "invalid_grant".into()));
    let r = with(&[("client_id", "other"), ("client_secret", "other-secret")]);
    assert_eq!((r.status, r.s("error")), (400, "invalid_grant".into()));
    let r = with(&[("client_secret", "wrong")]);
    assert_eq!((r.status, r.s("error")), (401, "invalid_client".into()));
    let r = with(&[("client_id", ID), ("client_secret", "wrong")]);
    assert_eq!((r.status, r.s("error")), (401, "invalid_client".into()));
    // Refusals did not use the code.
    let r = with(&[("client_id", ID), ("client_secret", SECRET)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(emu.stats().code_reuse, 0);
}

#[test]
fn token_paths_per_grant() {
    let emu = start();
    let a = emu.addr();
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", ID),
        ("client_secret", SECRET),
    ];
    let rt = post_form(a, "/api/oauth/token/", &cc).s("refresh_token");
    post_form(a, "/api/oauth/token/", &cc);
    post_form(a, "/api/oauth/token", &cc);
    post_form(a, "/api/oauth/token/", &refresh_pairs(&rt));
    let org = client_credentials(a).s("access_token");
    exchange(a, &grant(a, &org, "alice").s("code"));
    let s = emu.stats();
    assert_eq!(
        s.token_path_count("client_credentials", "/api/oauth/token/"),
        2
    );
    assert_eq!(
        s.token_path_count("client_credentials", "/api/oauth/token"),
        2
    );
    assert_eq!(s.token_path_count("refresh_token", "/api/oauth/token/"), 1);
    assert_eq!(
        s.token_path_count("authorization_code", "/api/oauth/token"),
        1
    );
    assert_eq!(
        s.token_path_count("authorization_code", "/api/oauth/token/"),
        0
    );
    let j = request(a, "GET", "/_emulator/stats", &[], "").json();
    assert_eq!(
        j["token_paths"],
        serde_json::json!({
            "client_credentials": {"/api/oauth/token/": 2, "/api/oauth/token": 2},
            "refresh_token": {"/api/oauth/token/": 1},
            "authorization_code": {"/api/oauth/token": 1},
        })
    );
}

#[test]
fn unknown_users_are_configured_not_guessed() {
    let emu = start();
    let a = emu.addr();
    let org = client_credentials(a).s("access_token");
    // No magic prefix.
    assert_eq!(grant(a, &org, "unknown-person").status, 200);
    emu.set_unknown_users(vec!["unknown-person".into()]);
    assert_eq!(grant(a, &org, "unknown-person").s("code"), "USER_NOT_FOUND");
    let r = request(
        a,
        "POST",
        "/_emulator/config?unknown_users=bob,carol",
        &[],
        "",
    );
    assert_eq!(
        r.json()["unknown_users"],
        serde_json::json!(["bob", "carol"])
    );
    assert_eq!(grant(a, &org, "carol").s("code"), "USER_NOT_FOUND");
    assert_eq!(grant(a, &org, "unknown-person").status, 200);
    request(a, "POST", "/_emulator/config?unknown_users=", &[], "");
    assert_eq!(grant(a, &org, "carol").status, 200);

    let emu = start_with(Config {
        users: vec!["alice".into(), "bob".into()],
        unknown_users: vec!["bob".into()],
        ..Config::default()
    });
    let a = emu.addr();
    let org = client_credentials(a).s("access_token");
    assert_eq!(grant(a, &org, "alice").status, 200);
    assert_eq!(grant(a, &org, "bob").s("code"), "USER_NOT_FOUND");
    assert_eq!(grant(a, &org, "carol").s("code"), "USER_NOT_FOUND");
}

#[test]
fn echo_mode_repeats_the_request_in_error_answers() {
    let emu = start_with(Config {
        echo: true,
        ..Config::default()
    });
    let a = emu.addr();
    let secret_form = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", ID),
        ("client_secret", "wrong\r\nsecret"),
    ]);
    let r = request(a, "POST", "/api/oauth/token?q=1", &[FORM], &secret_form);
    assert_eq!((r.status, r.s("error")), (401, "invalid_client".into()));
    let d = r.s("error_description");
    assert!(d.starts_with("Client authentication failed ("), "{d}");
    assert!(d.contains(&secret_form) && d.contains("query=q=1"), "{d}");
    assert!(r.header("x-echo-request").unwrap().contains(&secret_form));
    // Raw CR/LF in a value is percent-encoded in the header.
    let r = request(
        a,
        "POST",
        "/api/oauth/token",
        &[FORM, ("Authorization", "Basic c2VjcmV0")],
        "grant_type=client_credentials&client_secret=a\r\nb",
    );
    assert_eq!(r.status, 401);
    let h = r.header("x-echo-request").unwrap();
    assert!(
        h.contains("client_secret=a%0D%0Ab") && h.contains("authorization=Basic c2VjcmV0"),
        "{h}"
    );
    assert!(r.s("error_description").contains("client_secret=a\r\nb"));

    // Success answers are untouched.
    let r = client_credentials(a);
    assert_eq!(r.status, 200);
    assert!(r.header("x-echo-request").is_none());
    let org = r.s("access_token");

    // Injected faults with a body, JSON or not, on both endpoints.
    for kind in ["status:503", "429", "invalid_grant", "consume:status:502"] {
        add(&emu, kind);
        let r = client_credentials(a);
        assert!(
            r.s("error_description")
                .contains("client_secret=demo-secret"),
            "{kind}"
        );
        assert!(r.header("x-echo-request").is_some(), "{kind}");
    }
    for kind in ["html", "text"] {
        add(&emu, kind);
        assert!(
            client_credentials(a)
                .text()
                .contains("client_secret=demo-secret"),
            "{kind}"
        );
    }
    emu.add_fault(Fault::parse("grant", "status:500", 1).unwrap());
    let r = grant(a, &org, "alice");
    assert!(r
        .s("error_description")
        .contains(&format!("authorization=Bearer {org}")));
    emu.set_unknown_users(vec!["nobody".into()]);
    let r = grant(a, &org, "nobody");
    assert!(r.s("description").contains("user_id=nobody"));

    // Off at run time through the control API.
    let r = request(a, "POST", "/_emulator/config?echo=0", &[], "");
    assert_eq!(r.json()["echo"], false);
    let r = post_form(
        a,
        "/api/oauth/token",
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.status, 401);
    assert!(r.header("x-echo-request").is_none());
    assert_eq!(r.s("error_description"), "Client authentication failed");
    emu.set_echo(true);
    let r = post_form(
        a,
        "/api/oauth/token",
        &[("grant_type", "client_credentials")],
    );
    assert!(r.header("x-echo-request").is_some());
}

#[test]
fn throttle_refuses_without_processing() {
    let emu = start_with(Config {
        throttle: Some((3, Duration::from_millis(1500))),
        clients: vec![
            (ID.into(), SECRET.into()),
            ("other".into(), "other-secret".into()),
        ],
        ..Config::default()
    });
    let a = emu.addr();
    let rt = client_credentials(a).s("refresh_token");
    assert_eq!(client_credentials(a).status, 200);
    let org = client_credentials(a).s("access_token");
    let t0 = Instant::now();
    // Fourth request of this client in the window: refused, refresh token not used.
    let r = refresh(a, &rt);
    assert_eq!((r.status, r.s("error")), (429, "too_many_requests".into()));
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // The authorization grant counts for the token's client too.
    assert_eq!(grant(a, &org, "alice").status, 429);
    // Another client has its own bucket.
    let other = [
        ("grant_type", "client_credentials"),
        ("client_id", "other"),
        ("client_secret", "other-secret"),
    ];
    assert_eq!(post_form(a, "/api/oauth/token", &other).status, 200);
    let s = emu.stats();
    assert_eq!(
        (s.throttled, s.token_requests, s.authorization_grant),
        (2, 5, 1)
    );
    assert_eq!(s.issued_for("org:demo-client"), 3);

    // Once the window admits again, the same refresh token still works.
    std::thread::sleep(Duration::from_millis(1550).saturating_sub(t0.elapsed()));
    let r = refresh(a, &rt);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(emu.stats().refresh_reuse, 0);

    // Runtime control: set, read back, clear.
    let r = request(a, "POST", "/_emulator/config?throttle=1/60000", &[], "");
    assert_eq!(r.json()["throttle"], "1/60000");
    assert_eq!(client_credentials(a).status, 200);
    let r = client_credentials(a);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("60"));
    // Requests naming no client share a bucket.
    assert_eq!(
        post_form(
            a,
            "/api/oauth/token",
            &[("grant_type", "client_credentials")]
        )
        .status,
        401
    );
    assert_eq!(
        post_form(a, "/api/oauth/token", &[("grant_type", "password")]).status,
        429
    );
    assert_eq!(
        request(a, "POST", "/_emulator/config?throttle=x", &[], "").status,
        400
    );
    let r = request(a, "POST", "/_emulator/config?throttle=off", &[], "");
    assert!(r.json()["throttle"].is_null());
    for _ in 0..5 {
        assert_eq!(client_credentials(a).status, 200);
    }
    emu.set_throttle(Some((1, Duration::from_secs(60))));
    assert_eq!(client_credentials(a).status, 200);
    assert_eq!(client_credentials(a).status, 429);
    emu.reset();
    assert_eq!(emu.stats().throttled, 0);
    // Start-up limit restored, history cleared.
    for _ in 0..3 {
        assert_eq!(client_credentials(a).status, 200);
    }
    assert_eq!(client_credentials(a).status, 429);
}

/// A code exchange names no client, but the server issued the code to one: it counts in that
/// client's bucket, so one client's user sign-ins (grant + exchange) share one limit.
#[test]
fn throttle_counts_a_code_exchange_for_the_codes_client() {
    let emu = start_with(Config {
        throttle: Some((3, Duration::from_secs(60))),
        clients: vec![
            (ID.into(), SECRET.into()),
            ("other".into(), "other-secret".into()),
        ],
        ..Config::default()
    });
    let a = emu.addr();
    let org = client_credentials(a).s("access_token");
    let code = grant(a, &org, "alice").s("code");
    assert_eq!(
        exchange(a, &code).status,
        200,
        "third request of the client"
    );
    // The exchange used the client's third slot.
    assert_eq!(client_credentials(a).status, 429);
    let other = [
        ("grant_type", "client_credentials"),
        ("client_id", "other"),
        ("client_secret", "other-secret"),
    ];
    assert_eq!(post_form(a, "/api/oauth/token", &other).status, 200);
    // A code the server never issued is nobody's: refused as a bad grant, not throttled.
    assert_eq!(exchange(a, "no-such-code").status, 400);
    assert_eq!(emu.stats().throttled, 1);
}
