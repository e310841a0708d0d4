//! Process-wide token caches: one entry per (base URL, client id, user id or none), with single
//! flight (at most one token request per entry at a time; everyone else waits for it and shares
//! its outcome) and background renewal ahead of expiry, so no caller waits on the network while
//! a valid token is held. How a token is obtained is [`crate::source`]'s business.

use crate::base_url::BaseUrl;
use crate::error::{Error, Status};
use crate::log::log;
use crate::retry;
use crate::secret::Secret;
use crate::state::State;
use crate::stats;
use crate::store;
use crate::token::{coarse_now_ns, Freshness, Token};
use parking_lot::{Condvar, Mutex, RwLock};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Distinct spellings of keys remembered for the fast path; beyond it lookups just normalise.
const MAX_SPELLINGS: usize = 4096;
/// With this many entries, adding one first drops those holding nothing (a connector looping
/// over every employee would otherwise keep an entry per employee forever).
const PRUNE_AT: usize = 1024;

/// What a caller asks for, as given (not yet validated beyond UTF-8).
pub struct Request<'a> {
    pub base_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub user_id: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub base: BaseUrl,
    pub client_id: String,
    pub user_id: Option<String>,
}

/// A request's key as the caller's bytes, before any validation: the cache-hit paths compare
/// these with spellings that were validated when first seen.
pub struct RawKey<'a> {
    pub base_url: &'a [u8],
    pub client_id: &'a [u8],
    pub client_secret: &'a [u8],
    pub user_id: Option<&'a [u8]>,
}

impl RawKey<'_> {
    fn parts(&self) -> [&[u8]; 6] {
        let (tag, user): (&[u8], &[u8]) = match self.user_id {
            Some(u) => (b"u", u),
            None => (b"o", b""),
        };
        [self.base_url, b"\0", self.client_id, b"\0", tag, user]
    }

    /// The spelling "base\0client\0" + "u" + user, or "o" for the organization.
    fn spell(&self, buf: &mut Vec<u8>) {
        buf.clear();
        for p in self.parts() {
            buf.extend_from_slice(p);
        }
    }
}

impl<'a> From<&Request<'a>> for RawKey<'a> {
    fn from(r: &Request<'a>) -> RawKey<'a> {
        RawKey {
            base_url: r.base_url.as_bytes(),
            client_id: r.client_id.as_bytes(),
            client_secret: r.client_secret.as_bytes(),
            user_id: r.user_id.map(str::as_bytes),
        }
    }
}

#[derive(Default)]
pub struct Cache {
    entries: RwLock<Entries>,
    /// Bumped by clear(), so entries remembered by threads are known to be gone.
    epoch: AtomicU64,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Key, Arc<Entry>>,
    /// Raw spelling (see RawKey::spell) → entry, so a hit needs no URL parsing.
    by_spelling: HashMap<Vec<u8>, Arc<Entry>>,
}

pub struct Entry {
    pub key: Key,
    slot: Mutex<Slot>,
    flight_done: Condvar,
    /// Bumped (under the slot lock) whenever the token or secret changes, so a thread's
    /// snapshot (see Recent) can be checked without taking the lock.
    version: AtomicU64,
}

struct Slot {
    token: Option<Token>,
    /// Kept apart from the token: invalidating a token keeps it, and using it takes it out.
    refresh: Option<Secret>,
    /// The client secret this entry's tokens were obtained with.
    secret: Secret,
    /// Coarse-clock time until which `token` is fresh (0: not fresh); see Token::fresh_until_coarse.
    fresh_until: u64,
    in_flight: bool,
    /// Completed flights, so a waiter can tell that the one it waited for has ended.
    flights: u64,
    /// Outcome of the last completed flight, and the secret it was made with: shared with
    /// those who waited for it with that secret.
    last_error: Option<(Error, Secret)>,
    failures: u32,
    /// No background renewal before this (backoff after a failed one).
    retry_at: Option<Instant>,
}

impl Entries {
    /// Forget entries with no usable token, no refresh token and no request in flight.
    fn prune(&mut self) {
        let now = Instant::now();
        let mut gone = std::collections::HashSet::new();
        self.by_key.retain(|_, e| {
            let Some(slot) = e.slot.try_lock() else {
                return true;
            };
            let keep = slot.in_flight
                || slot.refresh.is_some()
                || slot
                    .token
                    .as_ref()
                    .is_some_and(|t| t.freshness(now) != Freshness::Expired);
            if !keep {
                gone.insert(Arc::as_ptr(e));
            }
            keep
        });
        self.by_spelling
            .retain(|_, e| !gone.contains(&Arc::as_ptr(e)));
    }
}

impl Slot {
    /// The only way the token changes: keeps `fresh_until` and the entry's version in step.
    fn set_token(&mut self, token: Option<Token>, version: &AtomicU64) {
        self.fresh_until = token
            .as_ref()
            .map_or(0, |t| t.fresh_until_coarse(Instant::now()));
        self.token = token;
        version.fetch_add(1, Ordering::Release);
    }

    /// The token, if fresh and asked for with this entry's secret. The cache-hit check.
    fn fresh_token(&self, secret: &[u8]) -> Option<&str> {
        if self.fresh_until == 0 || coarse_now_ns() >= self.fresh_until {
            return None;
        }
        if !self.secret.ct_eq_bytes(secret) {
            return None;
        }
        self.token.as_ref().map(|t| t.access.expose())
    }
}

/// The entry this thread used last and a snapshot of its fresh token, recognised by the
/// caller's raw bytes: a thread asking for the same token again costs no validation, hashing,
/// lock or shared write. The snapshot is good while the entry's version is unchanged.
struct Recent {
    /// Address of the State it belongs to (a child after fork has another).
    state: usize,
    epoch: u64,
    base_url: Vec<u8>,
    client_id: Vec<u8>,
    user_id: Option<Vec<u8>>,
    entry: Arc<Entry>,
    version: u64,
    fresh_until: u64,
    token: Secret,
    secret: Secret,
}

impl Recent {
    fn is(&self, raw: &RawKey) -> bool {
        raw.base_url == self.base_url.as_slice()
            && raw.client_id == self.client_id.as_slice()
            && raw.user_id == self.user_id.as_deref()
    }
}

thread_local! {
    static RECENT: RefCell<Option<Recent>> = const { RefCell::new(None) };
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.user_id {
            Some(u) => write!(
                f,
                "user token for \"{u}\" (client \"{}\" at {})",
                self.client_id,
                self.base.as_str()
            ),
            None => write!(
                f,
                "organization token (client \"{}\" at {})",
                self.client_id,
                self.base.as_str()
            ),
        }
    }
}

impl Key {
    pub fn parse(base_url: &str, client_id: &str, user_id: Option<&str>) -> Result<Key, Error> {
        Ok(Key {
            base: BaseUrl::parse(base_url)?,
            client_id: client_id.to_string(),
            user_id: user_id.map(str::to_string),
        })
    }
}

impl Cache {
    /// Cache hit on the entry this thread used last, before the arguments are even validated
    /// (bytes equal to a validated spelling are valid). `None`: take the full path.
    pub fn recent_hit<R>(&self, st: &State, raw: &RawKey, f: impl FnOnce(&str) -> R) -> Option<R> {
        // try_with: during thread exit the slot may already be gone; then just take the full path.
        RECENT
            .try_with(|recent| {
                let mut recent = recent.try_borrow_mut().ok()?;
                let r = recent.as_ref()?;
                if r.state != st as *const State as usize
                    || r.epoch != self.epoch.load(Ordering::Acquire)
                    || r.entry.version.load(Ordering::Acquire) != r.version
                    || r.fresh_until == 0
                    || coarse_now_ns() >= r.fresh_until
                {
                    // Outdated (cleared, invalidated, renewed or stale): drop the copies now.
                    *recent = None;
                    return None;
                }
                if !r.is(raw) || !r.secret.ct_eq_bytes(raw.client_secret) {
                    return None;
                }
                st.stats.hit();
                Some(f(r.token.expose()))
            })
            .ok()
            .flatten()
    }

    /// Hand the caller's closure a valid access token: from the cache, or after one shared request.
    pub fn with_token<R>(
        &self,
        st: &'static State,
        req: &Request,
        f: impl FnOnce(&str) -> R,
    ) -> Result<R, Error> {
        let raw = RawKey::from(req);
        // Read before the entry is looked up: if clear() runs meanwhile, the snapshot taken
        // after the request is already outdated and is never served.
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut f = Some(f);
        let mut buf = Vec::new();
        let found = {
            raw.spell(&mut buf);
            let entries = self.entries.read();
            match entries.by_spelling.get(buf.as_slice()) {
                None => None,
                Some(entry) => match entry.slot.lock().fresh_token(raw.client_secret) {
                    Some(t) => {
                        st.stats.hit();
                        let f = f.take().expect("closure used once");
                        Some(Ok((f(t), Arc::clone(entry))))
                    }
                    None => Some(Err(Arc::clone(entry))),
                },
            }
        };
        let (result, entry) = match found {
            Some(Ok((r, entry))) => (Ok(r), entry),
            found => {
                let entry = match found {
                    Some(Err(entry)) => entry,
                    _ => self.insert(req)?,
                };
                let f = f.take().expect("closure used once");
                let deadline = Instant::now() + st.options().timeout;
                (entry.get(st, req.client_secret, deadline, f), entry)
            }
        };
        if result.is_ok() {
            self.remember(st, &raw, entry, epoch);
        }
        result
    }

    /// Make `entry` this thread's recent one, with a snapshot of its token if fresh. `epoch` is
    /// the cache's epoch from before the entry was looked up.
    fn remember(&self, st: &State, raw: &RawKey, entry: Arc<Entry>, epoch: u64) {
        let snapshot = {
            let slot = entry.slot.lock();
            match (&slot.token, slot.fresh_until) {
                (Some(t), until) if until != 0 => Some((
                    entry.version.load(Ordering::Acquire),
                    until,
                    t.access.clone(),
                    slot.secret.clone(),
                )),
                _ => None,
            }
        };
        let _ = RECENT.try_with(|recent| {
            let Ok(mut recent) = recent.try_borrow_mut() else {
                return;
            };
            let Some((version, fresh_until, token, secret)) = snapshot else {
                *recent = None;
                return;
            };
            *recent = Some(Recent {
                state: st as *const State as usize,
                epoch,
                base_url: raw.base_url.to_vec(),
                client_id: raw.client_id.to_vec(),
                user_id: raw.user_id.map(<[u8]>::to_vec),
                entry,
                version,
                fresh_until,
                token,
                secret,
            });
        });
    }

    /// The token for `req` only if it can be handed out now (as `get` would, background renewal
    /// included): never a request, never a wait. Ok(None): nothing usable is cached.
    pub fn cached<R>(
        &self,
        st: &'static State,
        req: &Request,
        f: impl FnOnce(&str) -> R,
    ) -> Result<Option<R>, Error> {
        let raw = RawKey::from(req);
        let mut spelling = Vec::new();
        raw.spell(&mut spelling);
        let found = self
            .entries
            .read()
            .by_spelling
            .get(spelling.as_slice())
            .cloned();
        let entry = match found {
            Some(e) => e,
            None => {
                let key = Key::parse(req.base_url, req.client_id, req.user_id)?;
                match self.entries.read().by_key.get(&key).cloned() {
                    Some(e) => e,
                    None => return Ok(None),
                }
            }
        };
        let mut slot = entry.slot.lock();
        if !slot.secret.ct_eq(req.client_secret) {
            return Ok(None);
        }
        let now = Instant::now();
        let Some(t) = &slot.token else {
            return Ok(None);
        };
        match t.freshness(now) {
            Freshness::Fresh => {
                st.stats.hit();
                Ok(Some(f(t.access.expose())))
            }
            Freshness::Stale => {
                st.stats.hit();
                let served = f(t.access.expose());
                let renewal = entry.start_background(st, &mut slot, now);
                drop(slot);
                if let Some(r) = renewal {
                    r.spawn(st);
                }
                Ok(Some(served))
            }
            Freshness::Expired => Ok(None),
        }
    }

    /// Get or create the entry for a request, remembering its spelling.
    fn insert(&self, req: &Request) -> Result<Arc<Entry>, Error> {
        let key = Key::parse(req.base_url, req.client_id, req.user_id)?;
        let mut entries = self.entries.write();
        if entries.by_key.len() >= PRUNE_AT && !entries.by_key.contains_key(&key) {
            entries.prune();
        }
        let entry = Arc::clone(
            entries
                .by_key
                .entry(key.clone())
                .or_insert_with(|| Entry::new(key, Secret::new(req.client_secret))),
        );
        if entries.by_spelling.len() < MAX_SPELLINGS {
            let mut spelling = Vec::new();
            RawKey::from(req).spell(&mut spelling);
            entries.by_spelling.insert(spelling, Arc::clone(&entry));
        }
        Ok(entry)
    }

    /// The entry for a key, created if needed (the user flow uses it for the organization token).
    pub fn entry(&self, key: &Key, secret: &str) -> Arc<Entry> {
        if let Some(e) = self.entries.read().by_key.get(key) {
            return Arc::clone(e);
        }
        let mut entries = self.entries.write();
        Arc::clone(
            entries
                .by_key
                .entry(key.clone())
                .or_insert_with(|| Entry::new(key.clone(), Secret::new(secret))),
        )
    }

    /// Forget the access token of one key (the API answered 401 with it). Its refresh token is
    /// kept, so the next call renews with it.
    pub fn invalidate(&self, key: &Key) {
        let entry = self.entries.read().by_key.get(key).cloned();
        if let Some(e) = entry {
            e.slot.lock().set_token(None, &e.version);
            // Logged with no lock held: a host's log callback may call back into the library.
            log!(Info, "{key}: invalidated by the caller");
        }
    }

    /// Forget the access token of one key only if it is still `token` (the API answered 401
    /// with it): a token renewed meanwhile stays, so one rejected token causes one renewal.
    pub fn invalidate_token(&self, key: &Key, token: &[u8]) {
        let entry = self.entries.read().by_key.get(key).cloned();
        if let Some(e) = entry {
            let dropped = {
                let mut slot = e.slot.lock();
                let same = slot
                    .token
                    .as_ref()
                    .is_some_and(|t| t.access.ct_eq_bytes(token));
                if same {
                    slot.set_token(None, &e.version);
                }
                same
            };
            if dropped {
                log!(Info, "{key}: invalidated by the caller (rejected token)");
            }
        }
    }

    /// Time left before the cached access token of `key` expires, if one is cached.
    pub fn expires_in(&self, key: &Key) -> Option<Duration> {
        let entries = self.entries.read();
        let slot = entries.by_key.get(key)?.slot.lock();
        slot.token.as_ref().map(|t| t.remaining(Instant::now()))
    }

    /// Forget everything. Requests in flight finish into entries nobody can reach any more.
    pub fn clear(&self) {
        let mut entries = self.entries.write();
        // Wipe what the entries hold: a request in flight may keep one alive a little longer.
        for e in entries.by_key.values() {
            let mut slot = e.slot.lock();
            slot.set_token(None, &e.version);
            slot.refresh = None;
        }
        entries.by_key.clear();
        entries.by_spelling.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A child's cache after fork: the parent's valid access tokens, without refresh tokens,
    /// taken only where no lock is held (a holder that was not forked never lets go).
    pub fn inherit(parent: &Cache) -> Cache {
        let cache = Cache::default();
        let Some(old) = parent.entries.try_read() else {
            return cache;
        };
        let now = Instant::now();
        let mut new = cache.entries.write();
        for (key, entry) in &old.by_key {
            let Some(slot) = entry.slot.try_lock() else {
                continue;
            };
            if let Some(t) = slot
                .token
                .as_ref()
                .filter(|t| t.freshness(now) != Freshness::Expired)
            {
                let child = Entry::new(key.clone(), slot.secret.clone());
                child.slot.lock().set_token(Some(t.clone()), &child.version);
                new.by_key.insert(key.clone(), child);
            }
        }
        drop(new);
        cache
    }

    pub fn len(&self) -> usize {
        self.entries.read().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entry {
    fn new(key: Key, secret: Secret) -> Arc<Entry> {
        Arc::new(Entry {
            key,
            slot: Mutex::new(Slot {
                token: None,
                refresh: None,
                secret,
                fresh_until: 0,
                in_flight: false,
                flights: 0,
                last_error: None,
                failures: 0,
                retry_at: None,
            }),
            flight_done: Condvar::new(),
            version: AtomicU64::new(0),
        })
    }

    /// Serve a usable token, renewing as needed. At most one request per entry is in flight.
    ///
    /// A caller whose secret differs from the one this entry's tokens were obtained with
    /// (rotated, or wrong) is never served them: it leads, or waits for, a flight made with its
    /// own secret, which never uses the refresh token (that would hand a token to a caller whose
    /// secret was never checked). If that flight succeeds, its secret becomes the entry's.
    pub fn get<R>(
        self: &Arc<Self>,
        st: &'static State,
        secret: &str,
        deadline: Instant,
        f: impl FnOnce(&str) -> R,
    ) -> Result<R, Error> {
        let mut slot = self.slot.lock();
        loop {
            let own = slot.secret.ct_eq(secret);
            let now = Instant::now();
            if let (true, Some(t)) = (own, &slot.token) {
                match t.freshness(now) {
                    Freshness::Fresh => {
                        st.stats.hit();
                        return Ok(f(t.access.expose()));
                    }
                    Freshness::Stale => {
                        st.stats.hit();
                        let served = f(t.access.expose());
                        let renewal = self.start_background(st, &mut slot, now);
                        drop(slot);
                        if let Some(r) = renewal {
                            r.spawn(st);
                        }
                        return Ok(served);
                    }
                    Freshness::Expired => {}
                }
            }
            if slot.in_flight {
                stats::inc(&st.stats.misses);
                let seen = slot.flights;
                let timed_out = self.flight_done.wait_until(&mut slot, deadline).timed_out();
                if slot.flights != seen {
                    // Share the outcome of the flight we waited for if it was made with our
                    // secret and left no usable token.
                    let usable = slot.secret.ct_eq(secret)
                        && slot
                            .token
                            .as_ref()
                            .is_some_and(|t| t.freshness(Instant::now()) != Freshness::Expired);
                    if let (Some((e, with)), false) = (&slot.last_error, usable) {
                        if with.ct_eq(secret) {
                            return Err(e.clone());
                        }
                    }
                } else if timed_out {
                    return Err(Error::new(
                        Status::Network,
                        "no token within timeout_ms: the request already in flight for this key did not finish in time",
                    ));
                }
                continue;
            }
            // Lead a flight in this thread.
            stats::inc(&st.stats.misses);
            slot.in_flight = true;
            let refresh = if own { slot.refresh.take() } else { None };
            let flight_secret = Secret::new(secret);
            let flight = Flight {
                entry: self,
                secret: Some(flight_secret.clone()),
            };
            drop(slot);
            let (result, unused) = store::renew(st, &self.key, refresh, &flight_secret, deadline);
            let mut slot = self.slot.lock();
            if let Err(e) = flight.land(&mut slot, result, unused) {
                drop(slot);
                log!(Error, "{}: no token: {e}", self.key);
                return Err(e);
            }
            let t = slot.token.as_ref().expect("landed token");
            if t.freshness(Instant::now()) == Freshness::Expired {
                // Only a server whose tokens live barely longer than a request takes gets here.
                return Err(Error::new(
                    Status::Server,
                    format!(
                        "the new token's lifetime ({:.1} s) left less than the safety margin after the request; check the server's expires_in",
                        t.lifetime.as_secs_f64()
                    ),
                ));
            }
            return Ok(f(t.access.expose()));
        }
    }

    /// Mark a background renewal as started (in flight, refresh token taken) while the current
    /// token is still served; the caller starts its thread once the slot lock is released, so
    /// nobody waits on the lock while a thread is created.
    fn start_background(
        self: &Arc<Self>,
        st: &'static State,
        slot: &mut Slot,
        now: Instant,
    ) -> Option<Renewal> {
        if slot.in_flight || slot.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        slot.in_flight = true;
        stats::inc(&st.stats.background_refreshes);
        Some(Renewal {
            entry: Arc::clone(self),
            refresh: slot.refresh.take(),
            secret: slot.secret.clone(),
            deadline: now + st.options().timeout,
            left: slot
                .token
                .as_ref()
                .map_or(Duration::ZERO, |t| t.remaining(now)),
        })
    }

    /// Drop the access token if it is still `access` (a newer one is left alone).
    pub fn invalidate_if(&self, access: &Secret) {
        let mut slot = self.slot.lock();
        if slot
            .token
            .as_ref()
            .is_some_and(|t| t.access.ct_eq(access.expose()))
        {
            slot.set_token(None, &self.version);
        }
    }
}

/// A background renewal marked as started, to be run on a thread of its own.
struct Renewal {
    entry: Arc<Entry>,
    refresh: Option<Secret>,
    secret: Secret,
    deadline: Instant,
    left: Duration,
}

impl Renewal {
    fn spawn(self, st: &'static State) {
        let entry = Arc::clone(&self.entry);
        // Handed over through a cell, so it can be put back if no thread can be started.
        let handoff = Arc::new(Mutex::new(self.refresh));
        let theirs = Arc::clone(&handoff);
        let (secret, deadline, left) = (self.secret, self.deadline, self.left);
        let spawned = std::thread::Builder::new()
            .name("findity-refresh".into())
            .spawn(move || {
                let entry = self.entry;
                let flight = Flight {
                    entry: &entry,
                    secret: Some(secret.clone()),
                };
                let refresh = theirs.lock().take();
                log!(Info, "{}: renewing in the background, {:.0} s left", entry.key, left.as_secs_f64());
                let (result, unused) = store::renew(st, &entry.key, refresh, &secret, deadline);
                let mut slot = entry.slot.lock();
                let outcome = flight.land(&mut slot, result, unused);
                let next = slot.retry_at;
                drop(slot);
                if let Err(e) = outcome {
                    let next = next.map_or(0.0, |t| t.saturating_duration_since(Instant::now()).as_secs_f64());
                    log!(Warn, "{}: background renewal failed, the current token is still served; next try in {next:.1} s: {e}", entry.key);
                }
            });
        if spawned.is_err() {
            // No thread to spare: a foreground caller renews once the token runs out.
            let mut slot = entry.slot.lock();
            slot.in_flight = false;
            slot.refresh = handoff.lock().take();
        }
    }
}

/// A flight in progress, made with `secret`. Landing records the outcome and wakes the waiters;
/// a flight dropped without landing (a panic) still clears the in-flight mark and backs off, so
/// nobody waits forever and a failing renewal is not restarted on every call.
struct Flight<'a> {
    entry: &'a Arc<Entry>,
    /// Taken when the flight lands.
    secret: Option<Secret>,
}

impl Flight<'_> {
    fn land(
        self,
        slot: &mut Slot,
        result: Result<Token, Error>,
        unused_refresh: Option<Secret>,
    ) -> Result<(), Error> {
        let mut this = self;
        let secret = this.secret.take().expect("a flight lands once");
        let entry = this.entry;
        // Landed: the abort path in Drop must not run (nothing is left in `this` to free).
        std::mem::forget(this);
        let own = slot.secret.ct_eq(secret.expose());
        let out = match result {
            Ok(mut token) => {
                if own {
                    // A refresh token that was never sent is still good if no newer one came.
                    slot.refresh = token.refresh.take().or(unused_refresh);
                } else {
                    // A rotation: the new secret and what it brought replace the old ones.
                    slot.refresh = token.refresh.take();
                    slot.secret = secret.clone();
                }
                slot.set_token(Some(token), &entry.version);
                slot.failures = 0;
                slot.retry_at = None;
                slot.last_error = None;
                Ok(())
            }
            Err(e) => {
                // A failed rotation (say, a wrong secret) leaves the entry's own renewal alone.
                if own {
                    if slot.refresh.is_none() {
                        slot.refresh = unused_refresh;
                    }
                    slot.failures += 1;
                    slot.retry_at = Some(Instant::now() + background_retry_delay(slot.failures));
                }
                slot.last_error = Some((e.clone(), secret));
                Err(e)
            }
        };
        slot.in_flight = false;
        slot.flights += 1;
        entry.flight_done.notify_all();
        out
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut slot = self.entry.slot.lock();
        slot.in_flight = false;
        slot.flights += 1;
        slot.failures += 1;
        slot.retry_at = Some(Instant::now() + background_retry_delay(slot.failures));
        if let Some(secret) = self.secret.take() {
            let e = Error::internal("token request aborted by an internal error");
            slot.last_error = Some((e, secret));
        }
        drop(slot);
        self.entry.flight_done.notify_all();
    }
}

/// Backoff between failed background renewals while the current token is still good.
fn background_retry_delay(failures: u32) -> Duration {
    let d = Duration::from_millis(500)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(Duration::from_secs(60));
    retry::jittered(d)
}
