//! Options that change how requests are sent: proxy and user agent. Own test binary, because
//! options are process-wide. No traffic leaves loopback: the "proxy" here is a local listener
//! that records the CONNECT request and refuses it.

mod common;

use findity::ffi::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

fn set(name: &str, value: &str) -> u32 {
    common::set_option(name, value)
}

/// Accept one connection, send its request head (up to the blank line) back, answer `reply`.
fn one_shot(reply: &'static str) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        tx.send(head).unwrap();
        let _ = s.write_all(reply.as_bytes());
    });
    (addr, rx)
}

fn get_token(base: &str) -> (u32, String) {
    match common::token(base, "id", "secret-xyz", None) {
        Ok(_) => (FINDITY_OK, String::new()),
        Err((rc, _, msg)) => (rc, msg),
    }
}

#[test]
fn proxy_and_user_agent_options() {
    assert_eq!(set("timeout_ms", "3000"), FINDITY_OK);

    // The proxy option sends requests for a remote host through the proxy (CONNECT), which here
    // refuses: nothing is resolved or sent anywhere else.
    let (proxy, seen) = one_shot("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(set("proxy", &format!("http://{proxy}")), FINDITY_OK);
    let (rc, msg) = get_token("stage");
    assert_eq!(rc, FINDITY_ERR_NETWORK, "{msg}");
    let head = seen.recv().unwrap();
    assert!(
        head.starts_with("CONNECT stage-expense.findity.com:443 "),
        "proxy saw: {head}"
    );

    // Loopback stays direct even with a proxy set; and the user agent is what was set.
    assert_eq!(set("user_agent", "erp-connector/2.1"), FINDITY_OK);
    let (server, seen) = one_shot(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{\"error\":\"invalid_client\"}",
    );
    let (rc, msg) = get_token(&format!("http://{server}"));
    assert_eq!(rc, FINDITY_ERR_AUTH, "{msg}");
    let head = seen.recv().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("post /api/oauth/token/ "), "{head}");
    assert!(head.contains("user-agent: erp-connector/2.1"), "{head}");
    assert!(
        head.contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );

    assert_eq!(set("proxy", ""), FINDITY_OK);
    assert_eq!(set("user_agent", ""), FINDITY_OK);
}
