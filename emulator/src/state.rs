//! State shared by all connection threads: runtime config, counters,
//! fault queue, issued credentials, and the shutdown machinery.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::faults::{Endpoint, Fault, FaultQueue, Grant};
use crate::oauth::TokenStore;
use crate::rng::Rng;
use crate::stats::Stats;
use crate::throttle::Throttle;
use crate::Config;

/// Settings changeable at run time (`POST /_emulator/config`).
#[derive(Clone, Debug)]
pub(crate) struct Runtime {
    pub lifetime_secs: i64,
    pub latency_ms: u64,
    pub refresh_tokens: bool,
    pub omit_expires_in: bool,
    pub unknown_users: Vec<String>,
    pub echo: bool,
    pub throttle: Option<crate::throttle::Limit>,
}

impl Runtime {
    pub(crate) fn from_config(c: &Config) -> Runtime {
        Runtime {
            lifetime_secs: c.lifetime_secs,
            latency_ms: c.latency_ms,
            refresh_tokens: c.refresh_tokens,
            omit_expires_in: c.omit_expires_in,
            unknown_users: c.unknown_users.clone(),
            echo: c.echo,
            throttle: c.throttle,
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "lifetime": self.lifetime_secs,
            "latency_ms": self.latency_ms,
            "refresh_tokens": self.refresh_tokens,
            "omit_expires_in": self.omit_expires_in,
            "unknown_users": self.unknown_users,
            "echo": self.echo,
            "throttle": self.throttle.map(crate::throttle::format),
        })
    }
}

pub(crate) struct State {
    pub runtime: Runtime,
    pub stats: Stats,
    pub faults: FaultQueue,
    pub store: TokenStore,
    pub rng: Rng,
    pub throttle: Throttle,
}

pub(crate) struct Shared {
    /// Start-up configuration; `reset` restores the runtime part from it.
    pub config: Config,
    pub state: Mutex<State>,
    pub ca_pem: Option<String>,
    pub ca_der: Option<Vec<u8>>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    stopping: AtomicBool,
    sleep_lock: Mutex<()>,
    sleep_cv: Condvar,
    /// Clones of every open client socket, so shutdown can unblock them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the whole emulator down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        ca_pem: Option<String>,
        ca_der: Option<Vec<u8>>,
    ) -> Shared {
        let state = State {
            runtime: Runtime::from_config(&config),
            stats: Stats::default(),
            faults: FaultQueue::default(),
            store: TokenStore::default(),
            rng: Rng::from_entropy(),
            throttle: Throttle::default(),
        };
        Shared {
            config,
            state: Mutex::new(state),
            ca_pem,
            ca_der,
            tls,
            stopping: AtomicBool::new(false),
            sleep_lock: Mutex::new(()),
            sleep_cv: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        relock(&self.state)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks the emulator as stopping and wakes every sleeping handler.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _g = relock(&self.sleep_lock);
        self.sleep_cv.notify_all();
    }

    /// Sleeps `d`, returning early when the emulator stops.
    pub(crate) fn sleep(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        let deadline = Instant::now() + d;
        let mut g = relock(&self.sleep_lock);
        while !self.stopping() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = self
                .sleep_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The configured delay before every token/grant answer.
    pub(crate) fn latency(&self) {
        let ms = self.lock().runtime.latency_ms;
        self.sleep(Duration::from_millis(ms));
    }

    /// Registers a client socket; `None` if the emulator is already stopping.
    pub(crate) fn register(&self, s: &TcpStream) -> Option<u64> {
        let clone = s.try_clone().ok()?;
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        relock(&self.conns).insert(id, clone);
        // Checked after inserting so close_all cannot miss this socket.
        if self.stopping() {
            self.unregister(id);
            return None;
        }
        Some(id)
    }

    pub(crate) fn unregister(&self, id: u64) {
        relock(&self.conns).remove(&id);
    }

    /// Shuts every client socket down, which unblocks their threads' reads.
    pub(crate) fn close_all(&self) {
        for s in relock(&self.conns).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn open_connections(&self) -> usize {
        relock(&self.conns).len()
    }

    /// Request log on stderr. Never pass credentials here.
    pub(crate) fn log(&self, line: std::fmt::Arguments<'_>) {
        if !self.config.quiet {
            // One write for the whole line: stderr is unbuffered, and eprintln! writes it in
            // pieces, between which a process sharing the terminal (or log) can cut in.
            use std::io::Write;
            let line = format!("findity-emulator: {line}\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    /// Takes the first matching fault, counting it as served.
    pub(crate) fn take_fault(&self, endpoint: Endpoint, grant: Option<Grant>) -> Option<Fault> {
        let mut st = self.lock();
        let f = st.faults.take(endpoint, grant)?;
        st.stats.faults_served += 1;
        Some(f)
    }

    /// Back to the start-up state: counters, faults, credentials, config.
    pub(crate) fn reset(&self) {
        let mut st = self.lock();
        let in_flight = st.stats.in_flight;
        st.stats = Stats {
            in_flight,
            max_concurrent: in_flight,
            ..Stats::default()
        };
        st.faults.clear();
        st.store = TokenStore::default();
        st.throttle.clear();
        st.runtime = Runtime::from_config(&self.config);
    }
}

/// Counts a token/grant request as in flight while alive.
pub(crate) struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    pub(crate) fn enter(shared: &'a Shared) -> InFlight<'a> {
        let mut st = shared.lock();
        st.stats.in_flight += 1;
        st.stats.max_concurrent = st.stats.max_concurrent.max(st.stats.in_flight);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.stats.in_flight = st.stats.in_flight.saturating_sub(1);
    }
}
