//! One cache entry: a token, an expiry rule (crate::token) and, on top, single flight (at most
//! one token request per entry at a time; everyone else waits for it and shares its outcome)
//! and background renewal (queued to the renewal workers while the current token is served).

use super::key::Key;
use crate::error::{Delivery, Error, Status};
use crate::log::log;
use crate::refresh::RefreshToken;
use crate::retry;
use crate::secret::Secret;
use crate::state::State;
use crate::stats;
use crate::store;
use crate::token::{coarse_now_ns, Freshness, Token};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Granularity of `last_used`: an entry looks idle at most this much longer than it is.
pub const TOUCH_NS: u64 = 20_000_000;

/// Where an entry's renewal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    Idle,
    /// Waiting for a renewal worker; a caller that needs a token now runs it itself.
    Queued,
    /// A request is in flight (foreground or background); others wait for it.
    Running,
}

pub struct Entry {
    pub key: Key,
    slot: Mutex<Slot>,
    flight_done: Condvar,
    /// Bumped (under the slot lock) whenever the token or secret changes or the entry is
    /// retired, so a thread's snapshot can be checked without taking the lock.
    pub(super) version: AtomicU64,
    /// Coarse-clock time of the last use, for idle eviction (written at most every TOUCH_NS).
    last_used: AtomicU64,
    /// Threads whose snapshot holds this entry (changed under the slot lock): references that
    /// are not a use, so idle eviction does not count them (a thread that stopped asking must
    /// not pin its last key).
    pub(super) snapshots: AtomicUsize,
}

struct Slot {
    token: Option<Token>,
    /// Kept apart from the token: invalidating a token keeps it, and using it takes it out.
    refresh: Option<RefreshToken>,
    /// The client secret this entry's tokens were obtained with.
    secret: Secret,
    /// Coarse-clock time until which `token` is fresh (0: not fresh); see Token::fresh_until_coarse.
    fresh_until: u64,
    /// crate::state::snapshot_epoch() when `fresh_until` was stamped: a suspend noticed since
    /// (the coarse clock stopped meanwhile) makes the stamp wrong, so it is taken again.
    stamp_epoch: u64,
    flight: Flight,
    /// Completed flights, so a waiter can tell that the one it waited for has ended.
    flights: u64,
    /// How the last completed flight failed, if it did: shared with those who waited for it.
    last_error: Option<Failure>,
    failures: u32,
    /// No background renewal before this (backoff after a failed one).
    retry_at: Option<Instant>,
    /// Removed from the index (cleared or evicted): callers look the key up again.
    retired: bool,
    /// The access token last invalidated (the API answered 401 to it): never adopted again
    /// from the shared store. Forgotten when a new token lands.
    rejected: Option<Secret>,
}

/// A failed flight, as its waiters see it.
struct Failure {
    error: Error,
    /// The client secret the flight was made with: only waiters with that secret share it.
    secret: Secret,
    /// Until when the flight would have retried (crate::retry::horizon): its deadline, or for
    /// a background renewal (and the flights it starts) the token's hard margin, far earlier
    /// than a caller's timeout_ms.
    tried_until: Instant,
}

impl Failure {
    /// Whether a caller that waited for this flight, with `deadline`, gets its failure rather
    /// than try again: the server's final word (an answer not worth retrying), or a flight
    /// that tried about as long as the caller may. So callers arriving together share one
    /// failure, and a caller behind a background renewal, or behind a leader whose deadline
    /// (a throttle pause, a timeout) ran out well before its own, tries itself.
    fn shared_with(&self, secret: &str, deadline: Instant) -> bool {
        let final_answer = !self.error.retryable && self.error.delivery == Delivery::Answered;
        (final_answer || self.tried_until + SHARE_SLACK >= deadline) && self.secret.ct_eq(secret)
    }
}

/// How much later than the flight's own a waiter's deadline may be and still share its failure.
const SHARE_SLACK: Duration = Duration::from_secs(1);

/// What `Entry::get` hands back: the caller's result, or its closure if the entry was retired
/// meanwhile (the caller looks the key up again and retries).
pub type Got<R, F> = Result<Result<R, Error>, F>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is caught at the C boundary; the slot stays consistent
    // (every field is written in one step), so poisoning carries no information here.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    /// The only way the token changes: keeps `fresh_until` and the entry's version in step.
    fn set_token(&mut self, token: Option<Token>, version: &AtomicU64) {
        match (&token, self.token.take()) {
            (None, Some(old)) => self.rejected = Some(old.access),
            (Some(_), _) => self.rejected = None,
            (None, None) => {}
        }
        self.stamp_epoch = crate::state::snapshot_epoch();
        self.fresh_until = token
            .as_ref()
            .map_or(0, |t| t.fresh_until_coarse(crate::token::now()));
        self.token = token;
        version.fetch_add(1, Ordering::Release);
    }

    /// The one place that decides what may be handed out: the token, if it was obtained with
    /// this secret and is outside its hard margin, and whether it is due for renewal.
    fn usable(&self, secret: &str, now: Instant) -> Option<(&Token, bool)> {
        let t = self.token.as_ref()?;
        if !self.secret.ct_eq(secret) {
            return None;
        }
        match t.freshness(now) {
            Freshness::Fresh => Some((t, false)),
            Freshness::Stale => Some((t, true)),
            Freshness::Expired => None,
        }
    }
}

impl Entry {
    pub fn new(key: Key, secret: Secret) -> Arc<Entry> {
        Arc::new(Entry {
            key,
            slot: Mutex::new(Slot {
                token: None,
                refresh: None,
                secret,
                fresh_until: 0,
                stamp_epoch: 0,
                flight: Flight::Idle,
                flights: 0,
                last_error: None,
                failures: 0,
                retry_at: None,
                retired: false,
                rejected: None,
            }),
            flight_done: Condvar::new(),
            version: AtomicU64::new(0),
            last_used: AtomicU64::new(coarse_now_ns()),
            snapshots: AtomicUsize::new(0),
        })
    }

    /// Note a use (for idle eviction); a shared write at most every TOUCH_NS per entry, so
    /// threads hitting one entry hardly ever write the same cache line.
    #[inline]
    pub fn touch(&self, now_coarse: u64) {
        if now_coarse.saturating_sub(self.last_used.load(Ordering::Relaxed)) > TOUCH_NS {
            self.last_used.store(now_coarse, Ordering::Relaxed);
        }
    }

    /// Nanoseconds since the last use.
    pub fn idle_ns(&self, now_coarse: u64) -> u64 {
        now_coarse.saturating_sub(self.last_used.load(Ordering::Relaxed))
    }

    /// For a per-thread snapshot: (version, fresh_until, token, secret), if the token is fresh
    /// at `now` (coarse) and the entry not retired. The caller then holds a snapshot of this
    /// entry and must build it (its drop calls release_snapshot): both are counted under the
    /// slot lock, so idle eviction (held_only_by) sees references and snapshots at one instant.
    pub fn snapshot_copy(&self, now: u64) -> Option<(u64, u64, Secret, Secret)> {
        let mut slot = lock(&self.slot);
        let epoch = crate::state::snapshot_epoch();
        if slot.stamp_epoch != epoch {
            // Stamped before a suspend noticed since: stamp again on the token clock.
            slot.fresh_until = slot
                .token
                .as_ref()
                .map_or(0, |t| t.fresh_until_coarse(crate::token::now()));
            slot.stamp_epoch = epoch;
        }
        match (&slot.token, slot.fresh_until, slot.retired) {
            (Some(t), until, false) if until > now => {
                self.snapshots.fetch_add(1, Ordering::Relaxed);
                Some((
                    self.version.load(Ordering::Acquire),
                    until,
                    t.access.clone(),
                    slot.secret.clone(),
                ))
            }
            _ => None,
        }
    }

    /// A snapshot taken with snapshot_copy is gone.
    pub fn release_snapshot(&self) {
        let _slot = lock(&self.slot);
        self.snapshots.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether nothing but `index_refs` references and threads' snapshots holds this entry (for
    /// idle eviction: a snapshot is not a use, and retiring the entry outdates it). Read under
    /// the slot lock, where snapshots are counted; a busy lock means the entry is in use.
    pub fn held_only_by(self: &Arc<Self>, index_refs: usize) -> bool {
        let Ok(_slot) = self.slot.try_lock() else {
            return false;
        };
        Arc::strong_count(self) == index_refs + self.snapshots.load(Ordering::Relaxed)
    }

    /// Serve a usable token, renewing as needed. At most one request per entry is in flight.
    ///
    /// A caller whose secret differs from the one this entry's tokens were obtained with
    /// (rotated, or wrong) is never served them: it leads, or waits for, a flight made with its
    /// own secret, which never uses the refresh token (that would hand a token to a caller whose
    /// secret was never checked). If that flight succeeds, its secret becomes the entry's.
    pub fn get<R, F: FnOnce(&str) -> R>(
        self: &Arc<Self>,
        st: &'static State,
        secret: &str,
        deadline: Instant,
        f: F,
    ) -> Got<R, F> {
        let mut slot = lock(&self.slot);
        loop {
            if slot.retired {
                return Err(f);
            }
            let now = crate::token::now();
            if let Some((t, due)) = slot.usable(secret, now) {
                st.stats.hit();
                let served = f(t.access.expose());
                self.serve_stale(st, slot, due, now);
                return Ok(Ok(served));
            }
            if slot.flight == Flight::Running {
                stats::inc(&st.stats.misses);
                let seen = slot.flights;
                let timeout = deadline.saturating_duration_since(Instant::now());
                let (s, waited) = self
                    .flight_done
                    .wait_timeout(slot, timeout)
                    .unwrap_or_else(|e| e.into_inner());
                slot = s;
                if slot.flights != seen {
                    // Share the failure of the flight we waited for if it was made with our
                    // secret, left no usable token, and was final or tried about as long as we
                    // may; otherwise look again (and lead a flight of our own if still needed).
                    let usable = slot.usable(secret, crate::token::now()).is_some();
                    if let (Some(f), false) = (&slot.last_error, usable) {
                        if f.shared_with(secret, deadline) {
                            return Ok(Err(f.error.clone()));
                        }
                    }
                } else if waited.timed_out() || Instant::now() >= deadline {
                    return Ok(Err(Error::new(
                        Status::Network,
                        "no token within timeout_ms: the request already in flight for this key did not finish in time",
                    )));
                }
                continue;
            }
            // Idle, or queued for a worker: lead a flight in this thread (a queued renewal is
            // taken over, so nobody ever waits for a worker), if time is left for one.
            if Instant::now() >= deadline {
                return Ok(Err(Error::new(
                    Status::Network,
                    "no token within timeout_ms: the request in flight for this key failed and no time was left to try again",
                )));
            }
            stats::inc(&st.stats.misses);
            let own = slot.secret.ct_eq(secret);
            slot.flight = Flight::Running;
            let refresh = if own { slot.refresh.take() } else { None };
            if let Some(r) = st.cache.take_refused(&self.key) {
                slot.rejected = Some(r);
            }
            let rejected = slot.rejected.clone();
            let flight_secret = Secret::new(secret);
            let flight = FlightGuard {
                entry: self,
                secret: Some(flight_secret.clone()),
                tried_until: crate::retry::horizon(deadline),
            };
            drop(slot);
            let (result, unused) = store::obtain(
                st,
                &self.key,
                refresh,
                &flight_secret,
                deadline,
                false,
                rejected.as_ref(),
            );
            let mut slot = lock(&self.slot);
            if let Err(e) = flight.land(&mut slot, result, unused) {
                drop(slot);
                log!(Error, "{}: no token: {e}", self.key);
                return Ok(Err(e));
            }
            let t = slot.token.as_ref().expect("landed token");
            if t.freshness(crate::token::now()) == Freshness::Expired {
                // Only a server whose tokens live barely longer than a request takes gets here.
                return Ok(Err(Error::new(
                    Status::Server,
                    format!(
                        "the new token's lifetime ({:.1} s) left less than the safety margin after the request; check the server's expires_in",
                        t.lifetime.as_secs_f64()
                    ),
                )));
            }
            self.touch(coarse_now_ns());
            return Ok(Ok(f(t.access.expose())));
        }
    }

    /// The token only if it can be handed out now (as `get` would, background renewal
    /// included): never a request, never a wait. None: nothing usable (or retired).
    pub fn cached<R>(
        self: &Arc<Self>,
        st: &'static State,
        secret: &str,
        f: impl FnOnce(&str) -> R,
    ) -> Option<R> {
        let slot = lock(&self.slot);
        if slot.retired {
            return None;
        }
        let now = crate::token::now();
        let (t, due) = slot.usable(secret, now)?;
        st.stats.hit();
        let served = f(t.access.expose());
        self.serve_stale(st, slot, due, now);
        Some(served)
    }

    /// After serving a token: if it is due for renewal, queue one (unless one is queued or
    /// running, or a failed one is backing off), and start a worker once the lock is released.
    fn serve_stale(
        self: &Arc<Self>,
        st: &'static State,
        mut slot: MutexGuard<Slot>,
        due: bool,
        now: Instant,
    ) {
        let queued = due
            && slot.flight == Flight::Idle
            && slot.retry_at.is_none_or(|t| now >= t)
            && slot
                .token
                .as_ref()
                .is_some_and(|t| st.renewals.push(t.expires_at(), Arc::clone(self)));
        if queued {
            slot.flight = Flight::Queued;
            stats::inc(&st.stats.background_refreshes);
        }
        drop(slot);
        self.touch(coarse_now_ns());
        if queued {
            st.renewals.kick(st);
        }
    }

    /// Run a queued background renewal (called by a renewal worker). Nothing to do if a
    /// caller took it over meanwhile or the entry was retired.
    pub fn run_queued(self: &Arc<Self>, st: &'static State) {
        let mut slot = lock(&self.slot);
        if slot.flight != Flight::Queued {
            return;
        }
        if slot.retired {
            slot.flight = Flight::Idle;
            return;
        }
        // A job whose token expired while it waited for a worker is dropped: the next caller,
        // if there is one, renews in the foreground, and a key nobody asks for any more costs
        // no request (a queue of dead keys would otherwise renew them all).
        let now = crate::token::now();
        let Some(usable_until) = slot
            .token
            .as_ref()
            .filter(|t| t.freshness(now) != Freshness::Expired)
            .map(|t| t.expires_at() - t.hard_margin())
        else {
            slot.flight = Flight::Idle;
            drop(slot);
            log!(Debug, "{}: background renewal dropped: the token expired before a worker was free; the next caller renews it", self.key);
            return;
        };
        slot.flight = Flight::Running;
        let refresh = slot.refresh.take();
        if let Some(r) = st.cache.take_refused(&self.key) {
            slot.rejected = Some(r);
        }
        let rejected = slot.rejected.clone();
        let secret = slot.secret.clone();
        let left = slot
            .token
            .as_ref()
            .map_or(Duration::ZERO, |t| t.remaining(now));
        drop(slot);
        let deadline = Instant::now() + st.options().timeout;
        // Token time to the monotonic frame of deadlines (they differ by time suspended).
        let usable_until = crate::token::to_monotonic(usable_until);
        let flight = FlightGuard {
            entry: self,
            secret: Some(secret.clone()),
            tried_until: usable_until.min(deadline),
        };
        log!(
            Info,
            "{}: renewing in the background, {:.0} s left",
            self.key,
            left.as_secs_f64()
        );
        let (result, unused) = crate::retry::no_retry_after(usable_until, || {
            store::obtain(
                st,
                &self.key,
                refresh,
                &secret,
                deadline,
                true,
                rejected.as_ref(),
            )
        });
        let mut slot = lock(&self.slot);
        let outcome = flight.land(&mut slot, result, unused);
        let next = slot.retry_at;
        drop(slot);
        if let Err(e) = outcome {
            let next = next.map_or(0.0, |t| {
                t.saturating_duration_since(crate::token::now())
                    .as_secs_f64()
            });
            log!(Warn, "{}: background renewal failed, the current token is still served; next try in {next:.1} s: {e}", self.key);
        }
    }

    /// A queued renewal that no worker will run: back to idle.
    pub fn unqueue(&self) {
        let mut slot = lock(&self.slot);
        if slot.flight == Flight::Queued {
            slot.flight = Flight::Idle;
        }
    }

    /// Forget the access token (the refresh token is kept, so the next call renews with it).
    pub fn invalidate(&self) {
        let mut slot = lock(&self.slot);
        slot.set_token(None, &self.version);
    }

    /// Drop the access token if it is still `access` (a newer one is left alone). True if dropped.
    pub fn invalidate_if(&self, access: &[u8]) -> bool {
        let mut slot = lock(&self.slot);
        let same = slot
            .token
            .as_ref()
            .is_some_and(|t| t.access.ct_eq_bytes(access));
        if same {
            slot.set_token(None, &self.version);
        }
        same
    }

    /// The API refused `access`: drop it if it is the current token (true), and in any case
    /// never adopt it from the shared store while this entry holds no newer token.
    pub fn refuse(&self, access: &str) -> bool {
        let mut slot = lock(&self.slot);
        match &slot.token {
            Some(t) if t.access.ct_eq(access) => {
                slot.set_token(None, &self.version);
                true
            }
            Some(_) => false,
            None => {
                slot.rejected = Some(Secret::new(access));
                false
            }
        }
    }

    /// Time left before the access token expires, if one is held.
    pub fn expires_in(&self) -> Option<Duration> {
        let slot = lock(&self.slot);
        slot.token
            .as_ref()
            .map(|t| t.remaining(crate::token::now()))
    }

    /// Taken out of the index: wipe what it holds; callers holding it look the key up again.
    pub fn retire(&self) {
        let mut slot = lock(&self.slot);
        slot.retired = true;
        slot.refresh = None;
        slot.set_token(None, &self.version);
        drop(slot);
        self.flight_done.notify_all();
    }

    /// For a child after fork: a copy of this entry's still-valid access token and secret,
    /// never its refresh token, taken only if no lock is held (a holder that was not forked
    /// never lets go).
    pub fn inheritable(&self) -> Option<(Token, Secret)> {
        let slot = self.slot.try_lock().ok()?;
        let t = slot
            .token
            .as_ref()
            .filter(|t| t.freshness(crate::token::now()) != Freshness::Expired)?;
        Some((t.access_only(), slot.secret.clone()))
    }

    /// A child's entry holding an inherited token (see `inheritable`).
    pub fn inherited(key: Key, token: Token, secret: Secret) -> Arc<Entry> {
        let e = Entry::new(key, secret);
        let mut token = token;
        let mut slot = lock(&e.slot);
        // As when a flight lands: a refresh token moves from the token into the slot (there is
        // none: `inheritable` is the one place that decides what a child gets).
        slot.refresh = token.refresh.take();
        slot.set_token(Some(token), &e.version);
        drop(slot);
        e
    }
}

/// A flight in progress, made with `secret`. Landing records the outcome and wakes the waiters;
/// a flight dropped without landing (a panic) still clears the in-flight mark and backs off, so
/// nobody waits forever and a failing renewal is not restarted on every call.
struct FlightGuard<'a> {
    entry: &'a Arc<Entry>,
    /// Taken when the flight lands.
    secret: Option<Secret>,
    /// See Failure::tried_until.
    tried_until: Instant,
}

impl FlightGuard<'_> {
    fn land(
        self,
        slot: &mut Slot,
        result: Result<Token, Error>,
        unused_refresh: Option<RefreshToken>,
    ) -> Result<(), Error> {
        let mut this = self;
        let secret = this.secret.take().expect("a flight lands once");
        let (entry, tried_until) = (this.entry, this.tried_until);
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
                    slot.retry_at =
                        Some(crate::token::now() + background_retry_delay(slot.failures));
                }
                slot.last_error = Some(Failure {
                    error: e.clone(),
                    secret,
                    tried_until,
                });
                Err(e)
            }
        };
        if slot.retired {
            // Cleared while in flight: the callers that waited get the outcome, nobody keeps it.
            slot.refresh = None;
        }
        slot.flight = Flight::Idle;
        slot.flights += 1;
        entry.flight_done.notify_all();
        out
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut slot = lock(&self.entry.slot);
        slot.flight = Flight::Idle;
        slot.flights += 1;
        slot.failures += 1;
        slot.retry_at = Some(crate::token::now() + background_retry_delay(slot.failures));
        if let Some(secret) = self.secret.take() {
            slot.last_error = Some(Failure {
                error: Error::internal("token request aborted by an internal error"),
                secret,
                tried_until: self.tried_until,
            });
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
