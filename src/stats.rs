//! Counters an operator watches: cache hits and misses, token requests by grant, background
//! refreshes, fallbacks, retries, failures by status. Relaxed atomics: each figure is exact,
//! a snapshot of several is not a single instant.
//!
//! Cache hits are counted on the hottest path from many threads, so that counter is sharded
//! over cache lines: a thread adds to its own shard and never contends with another.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SHARDS: usize = 16;

#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

#[derive(Default)]
pub struct Stats {
    hits: [Padded; SHARDS],
    pub misses: AtomicU64,
    pub client_credentials: AtomicU64,
    pub refresh_token: AtomicU64,
    pub authorization_grant: AtomicU64,
    pub authorization_code: AtomicU64,
    pub background_refreshes: AtomicU64,
    pub fallbacks: AtomicU64,
    pub retries: AtomicU64,
    /// 429 (or 503 with Retry-After) answers that paused a base URL.
    pub throttled: AtomicU64,
    /// Token requests that waited for a pause or for pacing before they were sent.
    pub throttle_waits: AtomicU64,
    /// Idle cache entries dropped.
    pub evicted: AtomicU64,
    /// Shared cache: tokens adopted from the store, records written, lock waits, failures.
    pub store_hits: AtomicU64,
    pub store_writes: AtomicU64,
    pub store_lock_waits: AtomicU64,
    pub store_errors: AtomicU64,
    /// Failed calls by status code (index = FINDITY_ERR_*; 0 unused).
    pub failures: [AtomicU64; 7],
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// This thread's hit-counter shard.
fn hit_shard() -> usize {
    SHARD
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
            }
            s.get()
        })
        .unwrap_or(0)
}

impl Stats {
    pub fn hit(&self) {
        self.hit_counter().fetch_add(1, Ordering::Relaxed);
    }

    /// This thread's shard of the hit counter (the per-thread snapshot keeps it, so the cache
    /// hit adds to it with no lookup).
    pub fn hit_counter(&self) -> &AtomicU64 {
        &self.hits[hit_shard() % SHARDS].0
    }

    pub fn hits(&self) -> u64 {
        self.hits.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }

    pub fn failure(&self, status: u32) {
        if let Some(c) = self.failures.get(status as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}
