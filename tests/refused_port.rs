//! A port nothing listens on fails within 5 s with the default options, naming host and port,
//! not after timeout_ms (30 s); a host that drops packets costs connect_timeout_ms and one
//! retry; a valid cached token is still served (issue 19, item 2).

mod common;

use findity::ffi::FINDITY_ERR_NETWORK;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const ID: &str = "client-refused-port";
const SECRET: &str = "secret-refused-port-77c1";

/// A loopback port nothing listens on: bound, then closed.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_port_nothing_listens_on_fails_within_5_s() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for user in [None, Some("someone")] {
        let t0 = Instant::now();
        let (rc, http, msg) = common::token(&url, ID, SECRET, user).unwrap_err();
        let took = t0.elapsed();
        eprintln!("{user:?}: {took:?}: {msg}");
        assert_eq!((rc, http), (FINDITY_ERR_NETWORK, 0), "{msg}");
        assert!(took < Duration::from_secs(5), "{user:?}: {took:?}: {msg}");
        assert!(
            msg.contains(&format!(
                "nothing listens at 127.0.0.1:{port} (connection refused, "
            )),
            "{msg}"
        );
        assert!(msg.contains("attempts in"), "a few quick retries: {msg}");
        assert!(msg.contains("is the base URL right"), "{msg}");
    }
}

#[test]
fn a_server_back_within_refused_ms_is_reached() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        findity_emulator::Emulator::start(findity_emulator::Config {
            port,
            clients: vec![(ID.into(), SECRET.into())],
            quiet: true,
            ..Default::default()
        })
        .unwrap()
    });
    let t0 = Instant::now();
    let got = common::token(&url, ID, SECRET, Some("restarting"));
    let emu = restart.join().unwrap();
    assert!(got.is_ok(), "{got:?} after {:?}", t0.elapsed());
    assert_eq!(emu.stats().authorization_grant, 1);
}

#[test]
fn a_cached_token_is_served_while_nothing_listens() {
    let emu = common::emulator(ID, SECRET, 3600);
    let url = emu.url();
    let token = common::token(&url, ID, SECRET, Some("cached")).unwrap();
    emu.shutdown();
    let t0 = Instant::now();
    assert_eq!(
        common::token(&url, ID, SECRET, Some("cached")).unwrap(),
        token
    );
    assert!(t0.elapsed() < Duration::from_millis(100));
}

/// A listener whose accept queue is full: further SYNs are dropped, as by a firewall.
fn dropping_port() -> (OwnedFd, Vec<std::net::TcpStream>, u16) {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let owned = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        assert_eq!(
            libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len),
            0
        );
        let port = u16::from_be(addr.sin_port);
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut held = Vec::new();
        // Fill the queue until a connect hangs.
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
                Ok(s) => held.push(s),
                Err(_) => return (owned, held, port),
            }
        }
        panic!("the accept queue never filled");
    }
}

#[test]
fn a_host_dropping_packets_costs_connect_timeout_and_one_retry() {
    let (_listener, _held, port) = dropping_port();
    assert_eq!(common::set_option("connect_timeout_ms", "500"), 0);
    let url = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    let (rc, _, msg) = common::token(&url, ID, SECRET, None).unwrap_err();
    let took = t0.elapsed();
    common::set_option("connect_timeout_ms", "");
    eprintln!("{took:?}: {msg}");
    assert_eq!(rc, FINDITY_ERR_NETWORK, "{msg}");
    // Two connect timeouts and a backoff of at most 100 ms, not timeout_ms (30 s).
    assert!(took < Duration::from_millis(2500), "{took:?}: {msg}");
    assert!(
        took >= Duration::from_millis(1000),
        "one retry: {took:?}: {msg}"
    );
    assert!(
        msg.contains(&format!(
            "no connection to 127.0.0.1:{port} within connect_timeout_ms"
        )),
        "{msg}"
    );
    assert!(msg.contains("after 2 attempts"), "{msg}");
}
