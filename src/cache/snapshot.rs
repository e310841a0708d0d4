//! The per-thread snapshot: the entry this thread used last and a copy of its fresh token,
//! recognised by the caller's raw bytes, so a thread asking for the same token again costs no
//! validation, hashing, lock or shared write. A snapshot is served only while the entry's
//! version is unchanged (any new token, invalidation, secret change or eviction bumps it), the
//! cache was not cleared since, and the token is fresh on the coarse clock.

use super::entry::Entry;
use super::key::RawKey;
use crate::secret::Secret;
use crate::state::State;
use crate::token::coarse_now_ns;
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct Snapshot {
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
    /// This thread's hit-counter shard.
    shard: usize,
}

impl Snapshot {
    fn is(&self, raw: &RawKey) -> bool {
        raw.base_url == self.base_url.as_slice()
            && raw.client_id == self.client_id.as_slice()
            && raw.user_id == self.user_id.as_deref()
    }
}

thread_local! {
    static RECENT: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
}

/// Serve this thread's snapshot if it is for `raw` and still good. `epoch`: the cache's now.
pub fn hit<R>(st: &State, epoch: u64, raw: &RawKey, f: impl FnOnce(&str) -> R) -> Option<R> {
    // try_with: during thread exit the slot may already be gone; then just take the full path.
    RECENT
        .try_with(|recent| {
            let mut recent = recent.try_borrow_mut().ok()?;
            let r = recent.as_ref()?;
            let now = coarse_now_ns();
            if r.state != st as *const State as usize
                || r.epoch != epoch
                || r.entry.version.load(Ordering::Acquire) != r.version
                || now >= r.fresh_until
            {
                // Outdated (cleared, invalidated, renewed, evicted or stale): drop the copies now.
                *recent = None;
                return None;
            }
            if !r.is(raw) || !r.secret.ct_eq_bytes(raw.client_secret) {
                return None;
            }
            r.entry.touch(now);
            st.stats.hit_on(r.shard);
            Some(f(r.token.expose()))
        })
        .ok()
        .flatten()
}

/// Make `entry` this thread's snapshot, if its token is fresh. `epoch` is the cache's epoch
/// from before the entry was looked up, so a clear() in between outdates the snapshot.
pub fn remember(st: &State, raw: &RawKey, entry: Arc<Entry>, epoch: u64) {
    let copy = entry.fresh_copy();
    let _ = RECENT.try_with(|recent| {
        let Ok(mut recent) = recent.try_borrow_mut() else {
            return;
        };
        let Some((version, fresh_until, token, secret)) = copy else {
            *recent = None;
            return;
        };
        *recent = Some(Snapshot {
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
            shard: crate::stats::hit_shard(),
        });
    });
}
