//! The process-wide state, and its renewal in a child after `fork()`.
//!
//! A forked child has only the thread that called fork: locks held by other threads stay
//! locked forever and the HTTP client's runtime thread is gone. So the child never touches the
//! parent's state again: the first call in the child builds a fresh state, copying (with
//! try_lock only) the parent's still-valid access tokens, but never its refresh tokens, which
//! the parent may still use, and each host's throttle (a pause the server asked for holds in
//! every worker of a prefork server). The old state is leaked on purpose: dropping it could
//! block.
//!
//! Locks here and in the cache are std's (futexes on Linux): a lock word belongs to its own
//! state only. parking_lot parks threads in one process-wide table whose bucket locks a fork
//! can catch held by a thread that does not exist in the child (parking_lot issue 515).

use crate::cache::renewal::Renewals;
use crate::cache::Cache;
use crate::config::{Effect, Options};
use crate::error::Error;
use crate::http::Http;
use crate::log::log;
use crate::stats::Stats;
use crate::throttle::Throttle;
#[cfg(unix)]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct State {
    pub fork_generation: u64,
    pub cache: Cache,
    pub stats: Stats,
    pub renewals: Renewals,
    pub throttle: Throttle,
    /// The shared cache (option shared_cache).
    pub store: crate::store::Config,
    options: Mutex<Arc<Options>>,
    /// The options as last set, for a child after fork (which must not take `options`: a
    /// thread that is gone in the child may have held it at the fork).
    options_for_child: ForkCopy<Options>,
    http: Mutex<Option<Arc<Http>>>,
    /// Serialises set_option (per state: a child after fork starts with a free one).
    setters: Mutex<()>,
    /// The parent's state this one replaced after fork: never used again, but kept reachable,
    /// so the abandoned memory is neither freed (dropping could block) nor a leak to a checker.
    #[allow(dead_code)]
    previous: AtomicPtr<State>,
}

static STATE: AtomicPtr<State> = AtomicPtr::new(std::ptr::null_mut());
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// Bumped by fork (in the child) and by a suspend noticed on a slow path: every thread's
/// snapshot taken before is outdated (crate::cache::snapshot), without a clock read on the hit.
static SNAPSHOT_EPOCH: AtomicU64 = AtomicU64::new(0);
#[cfg(unix)]
static ATFORK_REGISTERED: AtomicBool = AtomicBool::new(false);

/// How many forks this process descends from (bumped in the child): a state, or anything
/// taken from one, belongs to this process only while its generation is this one.
#[inline(always)]
pub fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// See SNAPSHOT_EPOCH.
#[inline(always)]
pub fn snapshot_epoch() -> u64 {
    SNAPSHOT_EPOCH.load(Ordering::Acquire)
}

/// Outdate every thread's snapshot (the machine was suspended: their coarse-clock stamps lag).
pub fn outdate_snapshots() {
    SNAPSHOT_EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// The current process's state; cheap: two atomic loads once initialised.
pub fn state() -> &'static State {
    let p = STATE.load(Ordering::Acquire);
    let generation = FORK_GENERATION.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: states are leaked, never freed, so the pointer stays valid.
        let s = unsafe { &*p };
        if s.fork_generation == generation {
            return s;
        }
    }
    build_state(p, generation)
}

/// The first state, or a child's after fork (`old`: the parent's).
#[cold]
fn build_state(old: *mut State, generation: u64) -> &'static State {
    // Registered before the flag is set, so every thread that builds a state knows the
    // handler is in place before anything of that state can be forked: a thread that forked
    // between another's flag and its registration would leave a child on the parent's state.
    // Threads racing here may each register it; every fork then bumps the generation more
    // than once, which changes nothing.
    // Windows has no fork: the generation stays 0 and there is nothing to register.
    #[cfg(unix)]
    if !ATFORK_REGISTERED.load(Ordering::Acquire) {
        // SAFETY: the handlers only use atomics, sched_yield and close(), which are
        // async-signal-safe.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        ATFORK_REGISTERED.store(true, Ordering::Release);
    }
    // SAFETY: as above, a non-null state is never freed.
    let parent = unsafe { old.as_ref() };
    let options = parent
        .and_then(|p| p.options_for_child.read_in_child())
        .unwrap_or_default();
    let fresh = Box::into_raw(Box::new(State {
        fork_generation: generation,
        cache: parent.map_or_else(Cache::default, |p| Cache::inherit(&p.cache)),
        options: Mutex::new(Arc::clone(&options)),
        options_for_child: ForkCopy::new(Arc::clone(&options)),
        http: Mutex::new(None),
        stats: Stats::default(),
        renewals: Renewals::default(),
        throttle: parent.map_or_else(Throttle::default, |p| Throttle::inherit(&p.throttle)),
        store: parent.map_or_else(Default::default, |p| p.store.inherit()),
        setters: Mutex::new(()),
        previous: AtomicPtr::new(old),
    }));
    match STATE.compare_exchange(old, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: just leaked above.
            let s = unsafe { &*fresh };
            if parent.is_some() {
                log!(
                    Debug,
                    "new process after fork(): fresh state, {} valid tokens inherited",
                    s.cache.len()
                );
            }
            s
        }
        Err(_) => {
            // Another thread won the race; ours was never shared and holds no threads yet.
            // SAFETY: `fresh` came from Box::into_raw and nobody else saw it.
            drop(unsafe { Box::from_raw(fresh) });
            state()
        }
    }
}

/// No thread is between opening a store lock file and registering it while fork() runs.
#[cfg(unix)]
extern "C" fn before_fork() {
    crate::store::file::hold_opens_for_fork();
}

#[cfg(unix)]
extern "C" fn after_fork_in_parent() {
    crate::store::file::release_opens_after_fork();
}

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
    SNAPSHOT_EPOCH.fetch_add(1, Ordering::AcqRel);
    // The parent's held store locks must not outlive it in this child (store::file).
    crate::store::file::close_inherited_locks();
    crate::store::file::reset_opens_in_child();
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each guarded value is replaced in one step: a panic elsewhere leaves nothing half-done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn options(&self) -> Arc<Options> {
        Arc::clone(&lock(&self.options))
    }

    pub fn set_option(&self, name: &str, value: &str) -> Result<(), Error> {
        // Serialises setters; the options lock itself is held only to read and to swap, so a
        // fork() in another thread almost never finds it held (the child would lose options).
        let one_at_a_time = lock(&self.setters);
        if name == "shared_cache" {
            let shown = self.store.set(value)?;
            // Logged with no lock held: a host's log callback may call back into the library.
            drop(one_at_a_time);
            if let Some(shown) = shown {
                log!(Info, "shared cache: {shown}");
            }
            return Ok(());
        }
        let current = self.options();
        let mut next = Options::clone(&current);
        let effect = next.set(name, value)?;
        if let Effect::LogLevel(level) = effect {
            crate::log::set_level(level);
        }
        // Setting an option to the value it has is cheap: no new client (and runtime thread).
        if effect == Effect::HttpClient && next != *current {
            // Built first (slow: it starts a runtime thread), so a client that can't be built
            // leaves the options as they were.
            let http = Arc::new(Http::new(&next)?);
            let next = Arc::new(next);
            *lock(&self.options) = Arc::clone(&next);
            self.options_for_child.publish(next);
            *lock(&self.http) = Some(http);
        } else {
            let next = Arc::new(next);
            *lock(&self.options) = Arc::clone(&next);
            self.options_for_child.publish(next);
        }
        Ok(())
    }

    /// The shared HTTP client, built on first use (building starts its runtime thread).
    pub fn http(&self) -> Result<Arc<Http>, Error> {
        // Options first: set_option locks options, then http; never the other order.
        let options = self.options();
        let mut slot = lock(&self.http);
        if let Some(h) = &*slot {
            return Ok(Arc::clone(h));
        }
        let h = Arc::new(Http::new(&options)?);
        *slot = Some(Arc::clone(&h));
        Ok(h)
    }
}

/// A value that a child after fork reads without a lock: the latest of a series of `Arc`s,
/// published with one atomic swap. Only the parent publishes, only a child reads (where no
/// other thread exists that could publish meanwhile).
pub struct ForkCopy<T>(AtomicPtr<T>);

impl<T> ForkCopy<T> {
    pub fn new(value: Arc<T>) -> ForkCopy<T> {
        ForkCopy(AtomicPtr::new(Arc::into_raw(value).cast_mut()))
    }

    pub fn publish(&self, value: Arc<T>) {
        let old = self
            .0
            .swap(Arc::into_raw(value).cast_mut(), Ordering::AcqRel);
        // SAFETY: every pointer stored came from Arc::into_raw and is released once, here or
        // in Drop, after being swapped out.
        drop(unsafe { Arc::from_raw(old) });
    }

    /// A child's copy of what the parent last published.
    pub fn read_in_child(&self) -> Option<Arc<T>> {
        let p = self.0.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: p came from Arc::into_raw and its count includes this ForkCopy's reference,
        // which nobody can release in the child while we take another.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }
}

impl<T> Drop for ForkCopy<T> {
    fn drop(&mut self) {
        let p = *self.0.get_mut();
        if !p.is_null() {
            // SAFETY: as in publish.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}
