//! The per-thread snapshot: the entry this thread used last and a copy of its fresh token,
//! recognised by the caller's raw C strings, so a thread asking for the same token again costs
//! no validation, hashing, lock or shared write. A snapshot is served only while the entry's
//! version is unchanged (any new token, invalidation, secret change, eviction or clear bumps
//! it) and the token is fresh on the coarse clock.
//!
//! This is the cache-hit path, measured against a C floor (bench/bench_cache.c), so it is
//! written for few instructions: one allocation holding every byte it compares and copies,
//! strcmp for the key, one constant-time pass for the secret, no strlen of the key.

use super::entry::Entry;
use super::key::RawKey;
use crate::secret::{opaque, xor_diff_raw};
use crate::state::State;
use crate::token::coarse_now_ns;
use std::cell::Cell;
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::Zeroizing;

/// A token call's key arguments as the caller passed them: NUL-terminated, not NULL (checked
/// by the caller), `user_id` NULL for the organization token.
pub struct CallerKey {
    pub base_url: *const c_char,
    pub client_id: *const c_char,
    pub client_secret: *const c_char,
    pub user_id: *const c_char,
}

/// Longest a snapshot is served without the full path (which reads the suspend-aware clock).
const SNAPSHOT_LIFE_NS: u64 = 1_000_000_000;

struct Snapshot {
    /// The fork generation of the state it was taken from (a child after fork has another
    /// state, whose entries these are not).
    generation: u64,
    /// crate::state::snapshot_epoch() when it was taken (fork and suspend bump it).
    epoch: u64,
    entry: Arc<Entry>,
    version: u64,
    fresh_until: u64,
    /// This thread's shard of the state's hit counter (states are never freed).
    hits: &'static AtomicU64,
    /// "base URL\0client id\0user id\0", then the client secret and the token; wiped on drop.
    bytes: Zeroizing<Vec<u8>>,
    /// Where the client id, user id and secret start in `bytes`; base URL starts at 0.
    starts: [usize; 3],
    token_at: usize,
    organization: bool,
}

impl Snapshot {
    /// Whether the caller's strings are this snapshot's key and secret. The key parts are not
    /// secret: strcmp against NUL-terminated copies, as a hand-written cache would (one call
    /// each, no strlen). The secret: its length, then a constant-time pass (time depends on the
    /// length only).
    ///
    /// # Safety
    /// The key's pointers are non-NULL, NUL-terminated strings (user_id may be NULL).
    #[inline(always)]
    unsafe fn serves(&self, c: &CallerKey) -> bool {
        let k = self.bytes.as_ptr();
        let [client, user, secret] = self.starts;
        let n = self.token_at - secret;
        c.user_id.is_null() == self.organization
            && libc::strcmp(c.base_url, k.cast()) == 0
            && libc::strcmp(c.client_id, k.add(client).cast()) == 0
            && (self.organization || libc::strcmp(c.user_id, k.add(user).cast()) == 0)
            && libc::strlen(c.client_secret) == n
            && opaque(xor_diff_raw(c.client_secret.cast(), k.add(secret), n)) == 0
    }

    /// Whether nothing outdated it: same epoch (not a child after fork, no suspend noticed), the entry's
    /// token unchanged (a new token, invalidation, secret change, eviction or clear bumps the
    /// version), and fresh on the coarse clock.
    #[inline(always)]
    fn current(&self, now: u64) -> bool {
        self.epoch == crate::state::snapshot_epoch()
            && self.entry.version.load(Ordering::Acquire) == self.version
            && now < self.fresh_until
    }

    #[inline(always)]
    fn token(&self) -> &str {
        // SAFETY: token_at <= bytes.len(), and the bytes from it were copied from a &str
        // (see `remember`).
        unsafe { std::str::from_utf8_unchecked(self.bytes.get_unchecked(self.token_at..)) }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // Not in a child after fork: there the parent's entry lock may be held by a thread
        // that is gone, and the parent's entries are never swept.
        if self.generation == crate::state::fork_generation() {
            self.entry.release_snapshot();
        }
    }
}

thread_local! {
    /// This thread's snapshot (a leaked Box; null: none). A plain pointer with no destructor,
    /// so reading it is one thread-local load with no "alive?" check and cannot fail or
    /// panic; only this thread reads or replaces it, and never while one of its own calls is
    /// reading it (nothing on the hit path calls out to code that could call the library).
    static RECENT: Cell<*mut Snapshot> = const { Cell::new(std::ptr::null_mut()) };
    /// Frees RECENT's snapshot (wiping its copies) when the thread exits. Touched by install()
    /// only, which registers its destructor; a thread past it keeps no snapshot.
    static OWNER: Owner = const { Owner };
}

struct Owner;

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = RECENT.try_with(|r| free(r.replace(std::ptr::null_mut())));
    }
}

fn free(p: *mut Snapshot) {
    if !p.is_null() {
        // SAFETY: every non-null RECENT was made by Box::into_raw in install() and is freed
        // only here, after being swapped out.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Make `new` this thread's snapshot (None: keep none); the old one is freed after the swap, so
/// anything its drop runs sees a consistent slot.
fn install(new: Option<Snapshot>) {
    let new = match new {
        // Only a thread whose OWNER can still free it keeps one (not one exiting).
        Some(s) if OWNER.try_with(|_| ()).is_ok() => Box::into_raw(Box::new(s)),
        _ => std::ptr::null_mut(),
    };
    if let Ok(old) = RECENT.try_with(|r| r.replace(new)) {
        free(old);
    } else {
        free(new);
    }
}

/// Serve this thread's snapshot through `f` if it is for `key` and still good; `f` says
/// whether it handed the token out (only then is it a hit). false: take the full path.
///
/// Panic-free by construction, so the C shell calls it outside catch_unwind (whose closure
/// frame cost the hit a second prologue and its arguments a trip through memory): no
/// allocation, no drop, no indexing, no unwrap. An outdated snapshot is therefore left for
/// [`forget_outdated`] on the full path.
///
/// # Safety
/// As [`Snapshot::serves`].
#[inline(always)]
pub unsafe fn hit(key: &CallerKey, f: impl FnOnce(&str) -> bool) -> bool {
    let Ok(p) = RECENT.try_with(Cell::get) else {
        return false;
    };
    // SAFETY: see RECENT: the snapshot stays alive and unchanged during this call.
    let Some(r) = (unsafe { p.as_ref() }) else {
        return false;
    };
    let now = coarse_now_ns();
    if !r.current(now) || !r.serves(key) || !f(r.token()) {
        return false;
    }
    r.entry.touch(now);
    r.hits.fetch_add(1, Ordering::Relaxed);
    true
}

/// Drop this thread's snapshot if it can no longer be served (cleared, invalidated, renewed,
/// evicted or stale), so the copy of a token that is gone is wiped now, not at the next
/// remember. Called by the full path, inside the panic boundary.
pub fn forget_outdated() {
    let Ok(p) = RECENT.try_with(Cell::get) else {
        return;
    };
    // SAFETY: as in hit().
    if unsafe { p.as_ref() }.is_some_and(|r| !r.current(coarse_now_ns())) {
        install(None);
    }
}

/// Make `entry` this thread's snapshot, if its token is fresh and the entry not retired (the
/// version is read with both: a clear() or eviction after it outdates the snapshot); else
/// drop the old one. `raw` is the validated request; a C caller's strings hold no NUL, so
/// strcmp compares exactly.
pub fn remember(st: &'static State, raw: &RawKey, entry: Arc<Entry>) {
    let user = raw.user_id.unwrap_or_default();
    if [raw.base_url, raw.client_id, user]
        .iter()
        .any(|p| p.contains(&0))
    {
        // Only a Rust caller can pass one; strcmp would match a prefix of it.
        return install(None);
    }
    // Read first: a fork or suspend noticed from here on outdates what is built below.
    let epoch = crate::state::snapshot_epoch();
    let now = coarse_now_ns();
    // From here on a Snapshot is built: snapshot_copy counted it.
    let Some((version, fresh_until, token, secret)) = entry.snapshot_copy(now) else {
        return install(None);
    };
    // The coarse clock stops while the machine is suspended, and only a slow path notices a
    // suspend: a snapshot lives at most SNAPSHOT_LIFE, so every thread takes one soon after.
    let fresh_until = fresh_until.min(now.saturating_add(SNAPSHOT_LIFE_NS));
    let secret = secret.expose().as_bytes();
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        raw.base_url.len() + raw.client_id.len() + user.len() + 3 + secret.len() + token.len(),
    ));
    let mut starts = [0; 3];
    for (i, part) in [raw.base_url, raw.client_id, user].into_iter().enumerate() {
        bytes.extend_from_slice(part);
        bytes.push(0);
        if i < 2 {
            starts[i] = bytes.len();
        }
    }
    starts[2] = bytes.len();
    bytes.extend_from_slice(secret);
    let token_at = bytes.len();
    bytes.extend_from_slice(token.expose().as_bytes());
    install(Some(Snapshot {
        generation: st.fork_generation,
        epoch,
        entry,
        version,
        fresh_until,
        hits: st.stats.hit_counter(),
        bytes,
        starts,
        token_at,
        organization: raw.user_id.is_none(),
    }));
}
