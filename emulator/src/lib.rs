//! Loopback emulator of Findity's OAuth server (Findity Expense API).
//!
//! Serves `/api/oauth/token`, `/api/oauth/authorization-grant`, a stand-in
//! resource API under `/api/`, and a `/_emulator/*` control API for tests:
//! counters, fault injection, revocation, runtime config. Plain HTTP/1.1 on
//! std threads (optionally TLS with a per-run CA), so every byte on the wire
//! is under the emulator's control.
//!
//! A token or authorization-grant request goes through, in order:
//! 1. counting on arrival: `token_requests` / `authorization_grant`, the
//!    grant counters and `token_paths` (by what the body says, whatever the
//!    Content-Type), and `refresh_reuse` / `code_reuse` if it presents an
//!    already used refresh token or code;
//! 2. the throttle ([`Config::throttle`]): 429, nothing processed, no fault used;
//! 3. a queued fault: most kinds answer now, without processing;
//! 4. latency, then processing (the grant uses up tokens and codes);
//! 5. a `consume:*` fault replaces the processed answer;
//! 6. echo mode ([`Config::echo`]) copies the request into error answers;
//! 7. gzip mode ([`Config::gzip`]) compresses the answer regardless of `Accept-Encoding`.
//!
//! ```no_run
//! use findity_emulator::{Config, Emulator, Fault};
//! let emu = Emulator::start(Config { quiet: true, ..Config::default() }).unwrap();
//! emu.add_fault(Fault::parse("token", "status:503", 1).unwrap());
//! println!("token endpoint: {}", emu.token_url());
//! ```

pub mod cli;
mod control;
mod echo;
mod faults;
mod http;
mod oauth;
mod rng;
mod server;
mod state;
mod stats;
pub mod throttle;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use faults::{Endpoint, Fault, FaultKind, Grant};
pub use stats::Stats;

use state::Shared;

/// Default client when none is configured.
pub const DEFAULT_CLIENT_ID: &str = "demo-client";
/// Secret of the default client.
pub const DEFAULT_CLIENT_SECRET: &str = "demo-secret";

/// Start-up configuration (also what `reset` restores).
#[derive(Clone, Debug)]
pub struct Config {
    /// Host or IP to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind; 0 picks an ephemeral port (default).
    pub port: u16,
    /// Serve HTTPS with a CA generated at start (see [`Emulator::ca_pem`]).
    pub tls: bool,
    /// Allow binding addresses that are not loopback.
    pub allow_non_loopback: bool,
    /// Access token lifetime in seconds, sent as `expires_in` (default 3600).
    /// Zero or negative: tokens are expired as soon as issued.
    pub lifetime_secs: i64,
    /// Delay before every token/grant answer, in milliseconds.
    pub latency_ms: u64,
    /// `(client_id, client_secret)` pairs; empty means the default client
    /// `demo-client:demo-secret`.
    pub clients: Vec<(String, String)>,
    /// Known user ids; empty means every id is known (unless in `unknown_users`).
    pub users: Vec<String>,
    /// User ids the authorization grant refuses with `USER_NOT_FOUND`
    /// (also settable at run time). Default: none.
    pub unknown_users: Vec<String>,
    /// Issue refresh tokens (default true).
    pub refresh_tokens: bool,
    /// Leave `expires_in` out of token answers.
    pub omit_expires_in: bool,
    /// Error answers (status >= 400) of the token and authorization-grant
    /// endpoints repeat the request's raw form body, Authorization header and
    /// query string in `error_description` (JSON) or the body text, and in an
    /// `X-Echo-Request` header: a careless server the library must redact.
    pub echo: bool,
    /// `Some((max, window))`: more than `max` token + authorization-grant
    /// requests of one client (its `client_id`, or the bearer token's client)
    /// in any sliding `window` get 429 `too_many_requests` with `Retry-After`
    /// and are not processed. Requests naming no client share one bucket.
    pub throttle: Option<throttle::Limit>,
    /// Every token and authorization-grant answer (errors included) is gzip-encoded
    /// (`Content-Encoding: gzip`) whatever the request's `Accept-Encoding` says, like a
    /// gateway that compresses regardless.
    pub gzip: bool,
    /// No request log on stderr.
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: 0,
            tls: false,
            allow_non_loopback: false,
            lifetime_secs: 3600,
            latency_ms: 0,
            clients: vec![(DEFAULT_CLIENT_ID.into(), DEFAULT_CLIENT_SECRET.into())],
            users: Vec::new(),
            unknown_users: Vec::new(),
            refresh_tokens: true,
            omit_expires_in: false,
            echo: false,
            throttle: None,
            gzip: false,
            quiet: false,
        }
    }
}

/// What [`Emulator::revoke`] revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoke {
    /// Every unused refresh token (later use: `invalid_grant`, not counted as reuse).
    Refresh,
    /// Every access token (later use: 401).
    Access,
    /// Both.
    All,
}

impl FromStr for Revoke {
    type Err = String;
    fn from_str(s: &str) -> Result<Revoke, String> {
        match s {
            "refresh" => Ok(Revoke::Refresh),
            "access" => Ok(Revoke::Access),
            "all" => Ok(Revoke::All),
            _ => Err(format!("unknown revoke target {s:?} (refresh|access|all)")),
        }
    }
}

/// A running emulator. Dropping it shuts it down.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    accept: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds, starts the accept loop and returns once it is accepting.
    pub fn start(mut cfg: Config) -> io::Result<Emulator> {
        if cfg.clients.is_empty() {
            cfg.clients = Config::default().clients;
        }
        if let Some((id, _)) = cfg.clients.iter().find(|(id, _)| id.is_empty()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("empty client id {id:?}"),
            ));
        }
        if let Some(limit) = cfg.throttle {
            throttle::validate(limit)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let listener = server::bind(&cfg.host, cfg.port, cfg.allow_non_loopback)?;
        let bound = listener.local_addr()?;
        let (tls_config, ca_pem, ca_der) = if cfg.tls {
            let t = tls::setup(Some(cfg.host.trim_start_matches('[').trim_end_matches(']')))?;
            (Some(t.config), Some(t.ca_pem), Some(t.ca_der))
        } else {
            (None, None, None)
        };
        let addr = server::client_addr(bound);
        let url = format!("{}://{}", if cfg.tls { "https" } else { "http" }, addr);
        let shared = Arc::new(Shared::new(cfg, tls_config, ca_pem, ca_der));
        let accept = server::spawn_accept_loop(listener, shared.clone())?;
        Ok(Emulator {
            shared,
            addr: bound,
            url,
            accept: Some(accept),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// `<url>/api/oauth/token`
    pub fn token_url(&self) -> String {
        format!("{}/api/oauth/token", self.url)
    }

    /// `<url>/api/oauth/authorization-grant`
    pub fn grant_url(&self) -> String {
        format!("{}/api/oauth/authorization-grant", self.url)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the per-run CA that signed the server certificate (TLS only).
    pub fn ca_pem(&self) -> Option<String> {
        self.shared.ca_pem.clone()
    }

    /// DER of the per-run CA certificate (TLS only).
    pub fn ca_der(&self) -> Option<Vec<u8>> {
        self.shared.ca_der.clone()
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Queues a fault (FIFO; the first matching one is consumed).
    pub fn add_fault(&self, f: Fault) {
        self.shared.lock().faults.push(f);
    }

    /// Removes all queued faults.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Faults still queued.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.list()
    }

    /// Clears counters, faults and every issued token/code; restores the
    /// start-up config.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Lifetime of tokens issued from now on (`expires_in`).
    pub fn set_lifetime(&self, secs: i64) {
        self.shared.lock().runtime.lifetime_secs = secs;
    }

    /// Delay before every token/grant answer.
    pub fn set_latency(&self, ms: u64) {
        self.shared.lock().runtime.latency_ms = ms;
    }

    /// Whether token answers carry a refresh token.
    pub fn set_refresh_tokens(&self, on: bool) {
        self.shared.lock().runtime.refresh_tokens = on;
    }

    /// Whether token answers leave out `expires_in`.
    pub fn set_omit_expires_in(&self, on: bool) {
        self.shared.lock().runtime.omit_expires_in = on;
    }

    /// Echo mode on or off (see [`Config::echo`]).
    pub fn set_echo(&self, on: bool) {
        self.shared.lock().runtime.echo = on;
    }

    /// Throttle from now on (`None`: off); request history starts afresh.
    /// Panics on a limit that admits nothing (`max` 0 or an empty window).
    pub fn set_throttle(&self, limit: Option<throttle::Limit>) {
        if let Some(l) = limit {
            throttle::validate(l).expect("throttle limit");
        }
        let mut st = self.shared.lock();
        st.runtime.throttle = limit;
        st.throttle.clear();
    }

    /// User ids refused as unknown from now on (replaces the list).
    pub fn set_unknown_users(&self, ids: Vec<String>) {
        self.shared.lock().runtime.unknown_users = ids;
    }

    /// Revokes all outstanding refresh and/or access tokens.
    pub fn revoke(&self, what: Revoke) {
        let mut st = self.shared.lock();
        if matches!(what, Revoke::Refresh | Revoke::All) {
            st.store.revoke_refresh();
        }
        if matches!(what, Revoke::Access | Revoke::All) {
            st.store.revoke_access();
        }
    }

    /// Stops accepting, closes every connection (hanging ones included) and
    /// waits up to about a second for connection threads to finish.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop();
        server::wake_accept_loop(self.addr);
        let deadline = Instant::now() + Duration::from_secs(1);
        while !accept.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // If the wake-up connection failed the thread is left detached
        // rather than blocking shutdown forever.
        if accept.is_finished() {
            let _ = accept.join();
        }
        self.shared.close_all();
        while self.shared.open_connections() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}
