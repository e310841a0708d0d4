//! Process-wide token caches: one entry per (base URL, client id, user id or none). Reading
//! order for a change:
//! - [`key`]: what a caller asks for, and its raw spelling;
//! - [`index`]: key → entry, sharded, with idle eviction;
//! - [`entry`]: one entry: its token, single flight, serving and landing a renewal;
//! - [`renewal`]: background renewal workers fed in order of expiry;
//! - [`snapshot`]: the per-thread copy that makes a repeated cache hit lock-free.
//!
//! Freshness is decided in crate::token, how a token is obtained in crate::source, how fast
//! requests may go to a host in crate::throttle.

mod entry;
mod index;
mod key;
mod refused;
pub mod renewal;
mod snapshot;

pub use entry::Entry;
pub use key::{Key, RawKey, Request};
pub use snapshot::CallerKey;

use crate::error::Error;
use crate::log::log;
use crate::state::State;
use index::Index;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Cache {
    index: Index,
    refused: refused::Refused,
}

/// Cache hit on the entry this thread used last, before the arguments are even validated
/// (bytes equal to a validated spelling are valid) or the process state is looked up. false:
/// take the full path. It cannot panic (see snapshot::hit).
///
/// # Safety
/// `key`'s strings are NUL-terminated and not NULL (user_id may be NULL).
#[inline(always)]
pub unsafe fn recent_hit(key: &CallerKey, f: impl FnOnce(&str) -> bool) -> bool {
    snapshot::hit(key, f)
}

impl Cache {
    /// Hand the caller's closure a valid access token: from the cache, or after one shared request.
    pub fn with_token<R>(
        &self,
        st: &'static State,
        req: &Request,
        f: impl FnOnce(&str) -> R,
    ) -> Result<R, Error> {
        let raw = RawKey::from(req);
        snapshot::forget_outdated();
        let mut spelling = Vec::new();
        raw.spell(&mut spelling);
        let deadline = Instant::now() + st.options().timeout;
        let mut f = f;
        // A retired entry (evicted or cleared since it was found) hands the closure back.
        for _ in 0..8 {
            let entry = match self.index.by_spelling(&spelling) {
                Some(e) => e,
                None => self.insert(st, req, &spelling)?,
            };
            match entry.get(st, req.client_secret, deadline, f) {
                Ok(result) => {
                    if result.is_ok() {
                        snapshot::remember(st, &raw, entry);
                    }
                    return result;
                }
                Err(back) => f = back,
            }
        }
        Err(Error::internal(
            "cache entry retired repeatedly during one call",
        ))
    }

    /// The token for `req` only if it can be handed out now (as `with_token` would, background
    /// renewal included): never a request, never a wait. Ok(None): nothing usable is cached.
    pub fn cached<R>(
        &self,
        st: &'static State,
        req: &Request,
        f: impl FnOnce(&str) -> R,
    ) -> Result<Option<R>, Error> {
        let raw = RawKey::from(req);
        snapshot::forget_outdated();
        let mut spelling = Vec::new();
        raw.spell(&mut spelling);
        let entry = match self.index.by_spelling(&spelling) {
            Some(e) => e,
            None => match self
                .index
                .get(&Key::parse(req.base_url, req.client_id, req.user_id)?)
            {
                Some(e) => e,
                None => return Ok(None),
            },
        };
        Ok(entry.cached(st, req.client_secret, f))
    }

    /// Get or create the entry for a request, remembering its spelling.
    fn insert(&self, st: &State, req: &Request, spelling: &[u8]) -> Result<Arc<Entry>, Error> {
        let key = Key::parse(req.base_url, req.client_id, req.user_id)?;
        Ok(self.entry_for(st, &key, req.client_secret, Some(spelling)))
    }

    fn entry_for(
        &self,
        st: &State,
        key: &Key,
        secret: &str,
        spelling: Option<&[u8]>,
    ) -> Arc<Entry> {
        let idle = st.options().idle;
        let (entry, evicted) = self.index.get_or_insert(key, secret, spelling, idle);
        if evicted > 0 {
            st.stats
                .evicted
                .fetch_add(evicted as u64, Ordering::Relaxed);
            log!(
                Debug,
                "{evicted} cache entries idle for {} s dropped",
                idle.as_secs()
            );
        }
        entry
    }

    /// The entry for a key, created if needed (the user flow uses it for the organization
    /// token). Get it through here for each use: an entry held across calls may be retired.
    pub fn entry(&self, st: &State, key: &Key, secret: &str) -> Arc<Entry> {
        match self.index.get(key) {
            Some(e) => e,
            None => self.entry_for(st, key, secret, None),
        }
    }

    /// Forget the access token of one key (the API answered 401 with it). Its refresh token is
    /// kept, so the next call renews with it.
    pub fn invalidate(&self, key: &Key) {
        if let Some(e) = self.index.get(key) {
            e.invalidate();
            // Logged with no lock held: a host's log callback may call back into the library.
            log!(Info, "{key}: invalidated by the caller");
        }
    }

    /// Forget the access token of one key only if it is still `token` (the API answered 401
    /// with it): a token renewed meanwhile stays, so one rejected token causes one renewal.
    /// The refusal also reaches the shared store: the key's next flight neither adopts `token`
    /// from it nor leaves it standing there. A process that holds no entry for the key (a
    /// script, a worker that never served it) remembers the refusal for that flight.
    pub fn invalidate_token(&self, key: &Key, token: &[u8]) {
        let Ok(token) = std::str::from_utf8(token) else {
            return; // Not a token this library handed out.
        };
        match self.index.get(key) {
            Some(e) => {
                if e.refuse(token) {
                    log!(Info, "{key}: invalidated by the caller (rejected token)");
                }
            }
            None => {
                self.refused.remember(key, token);
                log!(
                    Info,
                    "{key}: rejected token noted; the next call renews it in the shared cache"
                );
            }
        }
    }

    /// A refusal noted for `key` while no entry held it (see invalidate_token), taken once.
    pub(crate) fn take_refused(&self, key: &Key) -> Option<crate::secret::Secret> {
        self.refused.take(key)
    }

    /// Time left before the cached access token of `key` expires, if one is cached.
    pub fn expires_in(&self, key: &Key) -> Option<Duration> {
        self.index.get(key)?.expires_in()
    }

    /// Forget everything. Requests in flight finish into entries nobody can reach any more,
    /// and their tokens go only to the callers that waited for them. Retiring an entry bumps
    /// its version, which outdates every thread's snapshot of it, and a retired entry is never
    /// snapshotted (Entry::snapshot_copy).
    pub fn clear(&self) {
        for e in self.index.take_all() {
            e.retire();
        }
    }

    /// A child's cache after fork: the parent's valid access tokens, without refresh tokens,
    /// taken only where no lock is held (a holder that was not forked never lets go).
    pub fn inherit(parent: &Cache) -> Cache {
        let cache = Cache::default();
        parent.index.try_each(|key, entry| {
            if let Some((token, secret)) = entry.inheritable() {
                cache
                    .index
                    .put(key.clone(), Entry::inherited(key.clone(), token, secret));
            }
        });
        cache
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
