//! Listener, accept loop and per-connection threads (one thread each).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::control;
use crate::faults::Action;
use crate::http::{read_request, write_response, ReadError, Request, Response};
use crate::oauth;
use crate::state::Shared;

/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Resolves and binds `host:port`, refusing non-loopback addresses unless allowed.
pub(crate) fn bind(host: &str, port: u16, allow_non_loopback: bool) -> io::Result<TcpListener> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let usable: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| allow_non_loopback || a.ip().is_loopback())
        .collect();
    if usable.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to bind non-loopback address {host} (pass --allow-non-loopback / \
                 Config::allow_non_loopback to allow it)"
            ),
        ));
    }
    let mut last = None;
    for a in usable {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one address tried"))
}

/// Address clients should use: a wildcard bind is reached via loopback.
pub(crate) fn client_addr(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

pub(crate) fn spawn_accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("findity-emulator-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if shared.stopping() {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        let conn_shared = shared.clone();
                        let spawned = thread::Builder::new()
                            .name("findity-emulator-conn".into())
                            .spawn(move || serve_connection(&conn_shared, stream));
                        if let Err(e) = spawned {
                            shared.log(format_args!("cannot spawn connection thread: {e}"));
                        }
                    }
                    // E.g. EMFILE: back off instead of spinning.
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        })
}

/// Unblocks the accept loop by connecting to it once.
pub(crate) fn wake_accept_loop(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&client_addr(addr), Duration::from_millis(500));
}

/// Plain or TLS client stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Unregisters the socket even if the handler panics.
struct Registered<'a>(&'a Shared, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.unregister(self.1);
    }
}

fn serve_connection(shared: &Shared, tcp: TcpStream) {
    let Some(id) = shared.register(&tcp) else {
        return;
    };
    let _registered = Registered(shared, id);
    let Ok(raw) = tcp.try_clone() else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut stream = match &shared.tls {
        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
            Ok(conn) => Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))),
            Err(_) => return,
        },
        None => Stream::Plain(tcp),
    };
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut stream, &mut buf) {
            Ok(r) => r,
            Err(ReadError::Closed) => break,
            Err(ReadError::Bad(resp)) => {
                let _ = write_response(&mut stream, &resp, true, false);
                shared.log(format_args!("(rejected request) -> {}", resp.status));
                lingering_close(&raw);
                return;
            }
        };
        let started = Instant::now();
        let (action, grant) = dispatch(shared, &req);
        let log = |outcome: &dyn std::fmt::Display| {
            shared.log(format_args!(
                "{} {}{}{} -> {} {}ms",
                req.method,
                req.path,
                if grant.is_some() { " grant_type=" } else { "" },
                grant.unwrap_or(""),
                outcome,
                started.elapsed().as_millis()
            ))
        };
        match action {
            Action::Respond(resp) => {
                let close = resp.close || !req.keep_alive() || shared.stopping();
                let written = write_response(&mut stream, &resp, close, req.method == "HEAD");
                log(&resp.status);
                if written.is_err() || close {
                    break;
                }
            }
            Action::Hang => {
                log(&"hang");
                hang(shared, &raw);
                break;
            }
            Action::Reset => {
                log(&"reset");
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: appl");
                let _ = stream.flush();
                // Let the partial head reach the client before the RST.
                thread::sleep(Duration::from_millis(20));
                set_linger_zero(&raw);
                return; // every handle drops: the kernel sends RST
            }
            Action::Close => {
                log(&"close");
                return;
            }
        }
    }
    if let Stream::Tls(s) = &mut stream {
        s.conn.send_close_notify();
        let _ = s.flush();
    }
}

fn dispatch(shared: &Shared, req: &Request) -> oauth::Handled {
    let p = req.path.as_str();
    match p {
        "/api/oauth/token" | "/api/oauth/token/" => oauth::token(shared, req),
        "/api/oauth/authorization-grant" | "/api/oauth/authorization-grant/" => {
            oauth::authorization_grant(shared, req)
        }
        _ if p.starts_with("/api/oauth/") => (Action::Respond(Response::not_found()), None),
        _ if p == "/api" || p.starts_with("/api/") => oauth::resource(shared, req),
        _ if p == "/_emulator" || p.starts_with("/_emulator/") => {
            (Action::Respond(control::handle(shared, req)), None)
        }
        _ => (Action::Respond(Response::not_found()), None),
    }
}

/// After rejecting a request whose body was not read (413, 411), drain
/// what the client is still sending so closing does not turn into an RST
/// that destroys the answer before the client reads it.
fn lingering_close(raw: &TcpStream) {
    let _ = raw.shutdown(std::net::Shutdown::Write);
    let _ = raw.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 8192];
    let mut raw = raw;
    let mut total = 0usize;
    while Instant::now() < deadline && total < 1024 * 1024 {
        match raw.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Holds the connection, answering nothing, until the client closes it or
/// the emulator stops (shutdown also shuts the socket down, ending the read).
fn hang(shared: &Shared, raw: &TcpStream) {
    let _ = raw.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut raw = raw;
    while !shared.stopping() {
        match raw.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// SO_LINGER {on, 0}: close() then sends RST instead of FIN.
#[cfg(unix)]
fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd owned by `s`; the option value is a properly sized linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(not(unix))]
fn set_linger_zero(s: &TcpStream) {
    // Without SO_LINGER, an abrupt shutdown is the closest approximation.
    let _ = s.shutdown(std::net::Shutdown::Both);
}
