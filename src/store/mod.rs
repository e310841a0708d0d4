//! The shared cache (option `shared_cache`, env `FINDITY_SHARED_CACHE`): a layer between the
//! in-process cache and the token source, so processes and hosts that share a store make one
//! token request per key per renewal, and send each refresh token at most once, fleet-wide.
//!
//! The in-process cache stays in front: a hit never gets here. Its flight leader calls
//! [`obtain`] (same signature as [`source::request_token`]) with no lock held, which, with a store:
//! takes the key's cross-process lock → reads and decrypts the record → adopts a usable token
//! (no request) or renews with the stored refresh token, which is first taken out of the
//! record → writes the new record → unlocks. Without a store it is `source::renew`.
//!
//! Invariant: a refresh token that was read from or handed to the store is never returned to
//! the in-process cache, so the cache holds only refresh tokens no other process can have, and
//! working process-locally (store down) never sends a token another process may hold.
//!
//! A store failure never fails a token call: it is counted (`store_errors`), logged once per
//! outage, and the call goes process-local; the store is tried again after a back-off.
//!
//! A backend is one file: implement [`Store`] (lock) and [`Guard`] (read, write, remove, and
//! unlock on drop), and add its scheme to [`open`].

#[cfg(unix)]
pub mod file;
#[cfg(windows)]
#[path = "file_windows.rs"]
pub mod file;
pub mod record;
pub mod redis;

use crate::cache::Key;
use crate::error::Error;
use crate::log::{log, Level};
use crate::refresh::RefreshToken;
use crate::secret::Secret;
use crate::source;
use crate::state::{ForkCopy, State};
use crate::stats::inc;
use crate::token::{Freshness, Token};
use record::{Crypt, Identity, Opened, Record};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A failure of the store itself. The message names the store (directory, host:port) and
/// never a secret, token, user id or URL credentials.
#[derive(Debug)]
pub struct StoreError {
    pub kind: Failure,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The store failed (or did not answer): the outcome of a write is unknown.
    Down,
    /// The lock was held by another process until the wait budget ran out: the store works.
    Busy,
    /// The lock is no longer ours (lease ran out, lock file removed): nothing was written.
    Lost,
}

impl StoreError {
    pub fn down(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: Failure::Down,
            message: message.into(),
        }
    }

    pub fn busy(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: Failure::Busy,
            message: message.into(),
        }
    }

    pub fn lost(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: Failure::Lost,
            message: message.into(),
        }
    }
}

/// A change of a shared record (see Store::update): the current bytes, if any, to the new ones
/// (None: leave it).
pub type Change<'a> = dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>> + 'a;

/// A shared store of records, one per record id (hex SHA-256 of the key's identity).
pub trait Store: Send + Sync {
    /// Take the cross-process lock of record `id`, waiting until `deadline` at most; a holder
    /// keeps it for `hold` at most (a backend with leases makes them longer). Returns the guard,
    /// which unlocks when dropped, and whether it had to wait.
    fn lock(
        &self,
        id: &str,
        deadline: Instant,
        hold: Duration,
    ) -> Result<(Box<dyn Guard + '_>, bool), StoreError>;

    /// Replace the small shared record `name` (not a token: crate::fleet's throttle record)
    /// with `f(current)` atomically; `f` returning None leaves it as it is. `f` may run more
    /// than once (optimistic retries); its last run is the one that counted. A backend that
    /// keeps no such records leaves the defaults: the fleet then throttles per process.
    fn shares_throttle(&self) -> bool {
        false
    }

    /// See `shares_throttle`.
    fn update(&self, _name: &str, _deadline: Instant, _f: &mut Change) -> Result<(), StoreError> {
        Err(StoreError::down("this store keeps no shared throttle"))
    }
}

/// A held lock, and the record it guards.
pub trait Guard {
    fn read(&mut self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replace the record; `ttl`: the token's remaining life (a backend may expire it then).
    fn write(&mut self, bytes: &[u8], ttl: Duration) -> Result<(), StoreError>;
    fn remove(&mut self) -> Result<(), StoreError>;
}

/// A configured store with its outage state.
pub struct Active {
    /// The option's value as given (a Redis URL may hold a password): to rebuild after fork.
    spec: Secret,
    /// The store as it may be shown: "file:/dir", "redis://host:port/db".
    pub shown: String,
    backend: Box<dyn Store>,
    /// While set and in the future: work process-locally.
    down_until: Mutex<Option<Instant>>,
    outages: AtomicU32,
    /// The current outage has been logged.
    outage_logged: AtomicBool,
    unreadable_logged: AtomicBool,
    newer_format_logged: AtomicBool,
}

/// Parses and opens a `shared_cache` value. Ok(None): off. Err: why it is not usable (no
/// secret in it).
pub fn open(spec: &str) -> Result<Option<Arc<Active>>, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(None);
    }
    let (shown, backend): (String, Box<dyn Store>) = if let Some(dir) = spec.strip_prefix("file:") {
        let dir = dir.strip_prefix("//").unwrap_or(dir);
        // file:///C:/dir (a file URL of a Windows path): the drive letter starts the path.
        #[cfg(windows)]
        let dir = match dir.as_bytes() {
            [b'/', d, b':', ..] if d.is_ascii_alphabetic() => &dir[1..],
            _ => dir,
        };
        let f = file::FileStore::open(dir)?;
        (format!("file:{}", f.dir().display()), Box::new(f))
    } else if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        let r = redis::open(spec)?;
        (r.shown().to_string(), Box::new(r))
    } else {
        return Err(
            "must be empty (off), file:/path/to/dir, redis://[user:password@]host:port[/db] or rediss://..."
                .into(),
        );
    };
    Ok(Some(Arc::new(Active {
        spec: Secret::new(spec),
        shown,
        backend,
        down_until: Mutex::new(None),
        outages: AtomicU32::new(0),
        outage_logged: AtomicBool::new(false),
        unreadable_logged: AtomicBool::new(false),
        newer_format_logged: AtomicBool::new(false),
    })))
}

enum Setting {
    /// Neither set nor read from FINDITY_SHARED_CACHE yet.
    Unread,
    /// Inherited through fork(): rebuilt (new descriptors, new connections) on first use.
    Pending(Secret),
    Off,
    On(Arc<Active>),
}

/// The process's shared-cache setting (a field of [`State`]).
pub struct Config {
    setting: Mutex<Setting>,
    /// What a child after fork starts from, readable without the lock (see ForkCopy).
    for_child: ForkCopy<ForChild>,
}

enum ForChild {
    Unread,
    Off,
    Spec(Secret),
}

impl Default for Config {
    fn default() -> Config {
        Config {
            setting: Mutex::new(Setting::Unread),
            for_child: ForkCopy::new(Arc::new(ForChild::Unread)),
        }
    }
}

impl Config {
    /// From `findity_set_option("shared_cache", value)`: a bad value changes nothing. Returns
    /// what the caller logs once it holds no lock (a host's log callback may call back in).
    pub fn set(&self, value: &str) -> Result<Option<String>, Error> {
        let opened =
            open(value).map_err(|why| Error::invalid_argument(format!("shared_cache: {why}")))?;
        let shown = opened.as_ref().map(|a| a.shown.clone());
        let mut s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
        *s = opened.map_or(Setting::Off, Setting::On);
        self.publish(&s);
        Ok(shown)
    }

    /// The store to use now, if any. Reads FINDITY_SHARED_CACHE on first use. The store is
    /// opened and logged with no lock held: a log callback may call back into the library.
    pub fn active(&self) -> Option<Arc<Active>> {
        let spec = {
            let mut s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
            match &*s {
                Setting::On(a) => return Some(Arc::clone(a)),
                Setting::Off => return None,
                Setting::Pending(spec) => spec.clone(),
                Setting::Unread => match std::env::var("FINDITY_SHARED_CACHE") {
                    Ok(v) => Secret::new(v),
                    Err(_) => {
                        *s = Setting::Off;
                        self.publish(&s);
                        return None;
                    }
                },
            }
        };
        let opened = open(spec.expose());
        let mut s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread (or a set_option) may have settled it meanwhile: theirs wins.
        let unsettled = match &*s {
            Setting::Unread => true,
            Setting::Pending(p) => p.ct_eq(spec.expose()),
            _ => false,
        };
        let mut line = None;
        if unsettled {
            *s = match opened {
                Ok(Some(a)) => {
                    line = Some(format!("shared cache: {}", a.shown));
                    Setting::On(a)
                }
                Ok(None) => Setting::Off,
                Err(why) => {
                    line = Some(format!(
                        "FINDITY_SHARED_CACHE ignored, tokens are cached in this process only: {why}"
                    ));
                    Setting::Off
                }
            };
            self.publish(&s);
        }
        let active = match &*s {
            Setting::On(a) => Some(Arc::clone(a)),
            _ => None,
        };
        drop(s);
        match line {
            Some(l) if active.is_some() => log!(Info, "{l}"),
            Some(l) => log!(Warn, "{l}"),
            None => {}
        }
        active
    }

    /// What a child after fork starts from, published with every change (under the lock).
    fn publish(&self, s: &Setting) {
        self.for_child.publish(Arc::new(match s {
            Setting::Unread => ForChild::Unread,
            Setting::Off => ForChild::Off,
            Setting::Pending(spec) => ForChild::Spec(spec.clone()),
            Setting::On(a) => ForChild::Spec(a.spec.clone()),
        }));
    }

    /// A child's setting after fork: the same store, reopened on first use. Takes no lock (a
    /// thread that is gone in the child may have held it at the fork).
    pub fn inherit(&self) -> Config {
        let next = match self.for_child.read_in_child().as_deref() {
            Some(ForChild::Spec(spec)) => Setting::Pending(spec.clone()),
            Some(ForChild::Off) => Setting::Off,
            Some(ForChild::Unread) | None => Setting::Unread,
        };
        let c = Config::default();
        *c.setting.lock().unwrap_or_else(PoisonError::into_inner) = next;
        c.publish(&c.setting.lock().unwrap_or_else(PoisonError::into_inner));
        c
    }
}

impl Active {
    /// Whether the fleet's throttle can be kept here now (the backend keeps such records and
    /// the store is not backing off after a failure).
    pub fn shares_throttle(&self) -> bool {
        self.backend.shares_throttle() && self.up()
    }

    /// See Store::update.
    pub fn update(&self, name: &str, deadline: Instant, f: &mut Change) -> Result<(), StoreError> {
        let r = self.backend.update(name, deadline, f);
        if r.is_ok() {
            self.worked();
        }
        r
    }

    pub fn up(&self) -> bool {
        match *self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(t) => Instant::now() >= t,
            None => true,
        }
    }

    /// The store failed: count, log once per outage, back off. A busy lock or a lost lease is
    /// not an outage: the store works, this one renewal goes on without it.
    pub(crate) fn failed(&self, st: &State, key: &Key, e: &StoreError) {
        match e.kind {
            Failure::Busy => {
                log!(
                    Debug,
                    "shared cache {}: client \"{}\": {}; renewing in this process",
                    self.shown,
                    key.client_id,
                    e.message
                );
                return;
            }
            Failure::Lost => {
                inc(&st.stats.store_errors);
                log!(
                    Warn,
                    "shared cache {}: client \"{}\": {}",
                    self.shown,
                    key.client_id,
                    e.message
                );
                return;
            }
            Failure::Down => inc(&st.stats.store_errors),
        }
        let n = self.outages.fetch_add(1, Ordering::Relaxed).min(5);
        let pause = Duration::from_secs(1 << n).min(Duration::from_secs(30));
        *self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + pause);
        if !self.outage_logged.swap(true, Ordering::AcqRel) {
            log!(
                Warn,
                "shared cache {} unavailable, tokens are cached in this process only until it is back (next try in {} s): {}",
                self.shown,
                pause.as_secs(),
                e.message
            );
        }
    }

    fn worked(&self) {
        if self.outages.swap(0, Ordering::Relaxed) != 0 {
            *self
                .down_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
        if self.outage_logged.swap(false, Ordering::AcqRel) {
            log!(Info, "shared cache {} is back", self.shown);
        }
    }
}

/// Obtain a token for `key` through the shared store when one is configured (see the module
/// documentation); exactly [`source::request_token`] otherwise. Same contract for the refresh
/// token given (crate::refresh): sent, handed back unsent, or stored. `background`: a renewal
/// ahead of expiry (a renewal worker), which adopts only a fresh stored token.
pub fn obtain(
    st: &'static State,
    key: &Key,
    refresh: Option<RefreshToken>,
    secret: &Secret,
    deadline: Instant,
    background: bool,
    rejected: Option<&Secret>,
) -> (Result<Token, Error>, Option<RefreshToken>) {
    let Some(active) = st.store.active() else {
        return source::request_token(st, key, refresh, secret, deadline);
    };
    if !active.up() {
        // Down: process-local. `refresh` never came from the store (module invariant).
        return source::request_token(st, key, refresh, secret, deadline);
    }
    let who = Identity::of(key);
    let now = Instant::now();
    // A quarter of the budget is kept for a request of our own if the holder never finishes.
    let lock_by = now + deadline.saturating_duration_since(now) * 3 / 4;
    // The lease (Redis) covers the caller's remaining time: any request made under the lock.
    let hold = deadline.saturating_duration_since(now);
    // Declared before the guard, so its lines are written after the lock is let go: a host's
    // log callback may call back into the library, even for this key.
    let mut later = Later::default();
    let (mut guard, waited) = match active.backend.lock(&who.id, lock_by, hold) {
        Ok(g) => g,
        Err(e) => {
            if e.kind == Failure::Busy {
                inc(&st.stats.store_lock_waits);
            }
            active.failed(st, key, &e);
            return source::request_token(st, key, refresh, secret, deadline);
        }
    };
    if waited {
        inc(&st.stats.store_lock_waits);
    }
    let crypt = Crypt::new(secret, &who);
    let stored = match guard.read() {
        Ok(None) => None,
        Ok(Some(bytes)) if bytes.len() > record::MAX_RECORD => {
            unreadable(st, &active, key, &mut later);
            None
        }
        Ok(Some(bytes)) => match crypt.open(&who, bytes) {
            Opened::Record(r) => Some(r),
            Opened::Unreadable => {
                unreadable(st, &active, key, &mut later);
                None
            }
            Opened::NewerFormat(v) => {
                // A newer release's record: neither read nor replaced. This renewal is ours.
                drop(guard);
                if !active.newer_format_logged.swap(true, Ordering::AcqRel) {
                    log!(
                        Warn,
                        "shared cache {}: records in format {v} (a newer libfindity; this one writes format {}); their keys are renewed in this process only",
                        active.shown,
                        record::FORMAT
                    );
                }
                return source::request_token(st, key, refresh, secret, deadline);
            }
        },
        Err(e) => {
            drop(guard);
            active.failed(st, key, &e);
            return source::request_token(st, key, refresh, secret, deadline);
        }
    };
    active.worked();

    // Adopt a usable token: not Expired; from a background renewal (ours is Stale) only a
    // Fresh one, which is necessarily newer than ours.
    // Never the token the caller just invalidated (the API answered 401 to it).
    if let Some(t) = stored
        .as_ref()
        .and_then(Record::token)
        .filter(|t| !rejected.is_some_and(|r| t.access.ct_eq(r.expose())))
    {
        let f = t.freshness(crate::token::now());
        if f == Freshness::Fresh || (f == Freshness::Stale && !background) {
            inc(&st.stats.store_hits);
            later.push(
                Level::Debug,
                format!(
                    "{key}: token from the shared cache, expires in {:.0} s",
                    t.remaining(crate::token::now()).as_secs_f64()
                ),
            );
            drop(guard);
            return (Ok(t), refresh);
        }
    }

    // Renew. The stored refresh token wins over ours, and is taken out of the record before
    // it is sent: if this process dies mid-request, nobody sends it again.
    let mut stored = stored;
    // The token the caller reported refused leaves the record with whatever is written back
    // (the take-out, or a refresh token put back), or now if nothing else will be.
    let refused_here = match (rejected, stored.as_mut()) {
        (Some(r), Some(rec)) if rec.access.as_ref().is_some_and(|a| a.ct_eq(r.expose())) => {
            rec.access = None;
            true
        }
        _ => false,
    };
    if refused_here && stored.as_ref().is_some_and(|r| r.refresh.is_none()) {
        if let Some(rest) = stored.as_ref() {
            if let Err(e) = put(&mut *guard, &crypt, &who, rest, &st.stats) {
                drop(guard);
                active.failed(st, key, &e);
                return source::request_token(st, key, refresh, secret, deadline);
            }
        }
    }
    let stored_refresh = stored.as_mut().and_then(|r| r.refresh.take());
    let (send, from_store) = match stored_refresh {
        Some(r) => {
            let rest = stored.as_ref().expect("the record the token came from");
            if let Err(e) = put(&mut *guard, &crypt, &who, rest, &st.stats) {
                // Could not take it out: don't send it (another process may read it).
                drop(guard);
                active.failed(st, key, &e);
                return source::request_token(st, key, refresh, secret, deadline);
            }
            // The store's refresh token is the newest: ours (if any) is superseded.
            drop(refresh);
            (Some(r), true)
        }
        None => (refresh, false),
    };
    let (result, unused) = source::request_token(st, key, send, secret, deadline);
    match result {
        Ok(mut token) => {
            // The new refresh token moves into the record: stored, never kept in this process.
            let mut rec = Record::of(&mut token);
            match put(&mut *guard, &crypt, &who, &rec, &st.stats) {
                Ok(()) => {}
                // Certainly not written (the lock was lost first): nobody else has the new
                // refresh token, so this process keeps it.
                Err(e) if e.kind == Failure::Lost => {
                    drop(guard);
                    active.failed(st, key, &e);
                    token.refresh = rec.refresh.take();
                }
                // Maybe written: another process may read it, so it goes with the record.
                Err(e) => {
                    drop(guard);
                    active.failed(st, key, &e);
                }
            }
            (Ok(token), None)
        }
        Err(e) => {
            if from_store {
                if let (Some(r), Some(mut rest)) = (unused, stored) {
                    // Never sent: put it back for whoever renews next.
                    rest.refresh = Some(r);
                    if let Err(se) = put(&mut *guard, &crypt, &who, &rest, &st.stats) {
                        drop(guard);
                        active.failed(st, key, &se);
                    }
                }
                (Err(e), None)
            } else {
                (Err(e), unused)
            }
        }
    }
}

fn unreadable(st: &State, active: &Active, key: &Key, later: &mut Later) {
    inc(&st.stats.store_errors);
    if !active.unreadable_logged.swap(true, Ordering::AcqRel) {
        later.push(
            Level::Warn,
            format!(
                "shared cache {}: a record of client \"{}\" cannot be read with this client secret (rotated, wrong, or the record was altered); renewing, and replacing it on success",
                active.shown,
                key.client_id
            ),
        );
    }
}

/// Log lines held back until the store's lock is let go (dropped after the guard).
#[derive(Default)]
struct Later(Vec<(Level, String)>);

impl Later {
    fn push(&mut self, level: Level, line: String) {
        if crate::log::enabled(level) {
            self.0.push((level, line));
        }
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        for (level, line) in self.0.drain(..) {
            crate::log::write(level, format_args!("{line}"));
        }
    }
}

/// Seal and write `rec` for as long as it is worth keeping (record::Record::keep_for: the one
/// lifetime rule of both stores), or remove it when it holds nothing worth keeping.
fn put(
    guard: &mut dyn Guard,
    crypt: &Crypt,
    who: &Identity,
    rec: &Record,
    stats: &crate::stats::Stats,
) -> Result<(), StoreError> {
    let keep = rec.keep_for();
    if keep.is_zero() {
        return guard.remove();
    }
    let bytes = crypt
        .seal(who, rec)
        .ok_or_else(|| StoreError::down("cannot seal a record"))?;
    guard.write(&bytes, keep)?;
    inc(&stats.store_writes);
    Ok(())
}
