//! Background renewal: a small, fixed pool of worker threads (option `renewal_threads`) fed
//! from one queue in order of expiry, whatever the number of keys. Workers start on demand and
//! exit after [`WORKER_LINGER`] with nothing to do: a process that is done with its tokens keeps
//! no thread of ours (runtimes such as Mono wait at exit for every thread that ever ran one of
//! their callbacks, e.g. the log callback). A worker that cannot be started is not retried for a
//! while, and nothing ever waits for one: a caller that needs a token while its renewal is still
//! queued runs it itself.

use super::entry::Entry;
use crate::log::log;
use crate::state::State;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// After a failed thread start, no new attempt for this long.
const SPAWN_RETRY: Duration = Duration::from_secs(5);

/// An idle worker exits after this long; the next renewal starts one again (about 50 µs).
pub const WORKER_LINGER: Duration = Duration::from_secs(2);

/// Tests make thread starts fail (as they do at a thread limit) and count the attempts; only
/// in builds with the `test-hooks` feature (the test suites), never in the shipped library.
#[cfg(feature = "test-hooks")]
pub mod hooks {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    pub(super) static FAIL_SPAWNS: AtomicBool = AtomicBool::new(false);
    pub(super) static SPAWN_ATTEMPTS: AtomicU64 = AtomicU64::new(0);

    pub fn fail_spawns(fail: bool) {
        FAIL_SPAWNS.store(fail, Ordering::Relaxed);
    }

    pub fn spawn_attempts() -> u64 {
        SPAWN_ATTEMPTS.load(Ordering::Relaxed)
    }
}

/// Start a renewal worker (with the test hooks: maybe fail as at a thread limit).
fn spawn_worker(n: usize, st: &'static State) -> std::io::Result<()> {
    #[cfg(feature = "test-hooks")]
    {
        use std::sync::atomic::Ordering::Relaxed;
        hooks::SPAWN_ATTEMPTS.fetch_add(1, Relaxed);
        if hooks::FAIL_SPAWNS.load(Relaxed) {
            return Err(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        }
    }
    std::thread::Builder::new()
        .name(format!("findity-renew-{n}"))
        .spawn(move || st.renewals.work(st))
        .map(drop)
}

#[derive(Default)]
pub struct Renewals {
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: BinaryHeap<Job>,
    seq: u64,
    workers: usize,
    idle: usize,
    /// No thread start before this (one failed).
    spawn_blocked_until: Option<Instant>,
}

struct Job {
    /// When the token being renewed expires: the soonest first.
    expires_at: Instant,
    seq: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Job) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    /// Reversed: BinaryHeap pops the greatest, we want the earliest expiry (then FIFO).
    fn cmp(&self, other: &Job) -> Ordering {
        (other.expires_at, other.seq).cmp(&(self.expires_at, self.seq))
    }
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Renewals {
    /// Queue a renewal. False if no worker exists and none may be started now: the caller
    /// then leaves the entry alone (it renews in the foreground once its token runs out).
    pub fn push(&self, expires_at: Instant, entry: Arc<Entry>) -> bool {
        let mut q = lock(&self.queue);
        if q.workers == 0 && q.spawn_blocked_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        q.seq += 1;
        let seq = q.seq;
        q.jobs.push(Job {
            expires_at,
            seq,
            entry,
        });
        true
    }

    /// Wake an idle worker, or start one more (up to `renewal_threads`) if none is idle.
    /// Called with no entry lock held: creating a thread takes a while.
    pub fn kick(&self, st: &'static State) {
        let max = st.options().renewal_threads.max(1);
        let mut q = lock(&self.queue);
        if q.jobs.is_empty() {
            return;
        }
        if q.idle > 0 {
            drop(q);
            self.ready.notify_one();
            return;
        }
        let now = Instant::now();
        if q.workers >= max || q.spawn_blocked_until.is_some_and(|t| now < t) {
            return;
        }
        q.workers += 1;
        let n = q.workers;
        drop(q);
        let spawned = spawn_worker(n, st);
        if let Err(e) = spawned {
            let mut q = lock(&self.queue);
            q.workers -= 1;
            q.spawn_blocked_until = Some(Instant::now() + SPAWN_RETRY);
            let stranded = q.workers == 0;
            drop(q);
            log!(
                Warn,
                "cannot start a background renewal thread ({e}); tokens are renewed by the callers that need them"
            );
            if stranded {
                // Nobody runs the queue: forget it, so the entries go back to idle.
                self.drain();
            }
        }
    }

    fn drain(&self) {
        let jobs = std::mem::take(&mut lock(&self.queue).jobs);
        for job in jobs {
            job.entry.unqueue();
        }
    }

    fn work(&self, st: &'static State) {
        loop {
            let job = {
                let mut q = lock(&self.queue);
                let mut idle_since = None;
                loop {
                    if let Some(job) = q.jobs.pop() {
                        break job;
                    }
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    let left = WORKER_LINGER.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        // Leaving under the queue lock: a push from now on sees one worker
                        // fewer and kick starts a new one.
                        q.workers -= 1;
                        return;
                    }
                    q.idle += 1;
                    q = self
                        .ready
                        .wait_timeout(q, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    q.idle -= 1;
                }
            };
            // A panic in one renewal (its FlightGuard has cleaned the entry up) must not take
            // a worker away for good: the pool would shrink to nothing.
            let entry = job.entry;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry.run_queued(st)));
        }
    }

    /// Renewals waiting for a worker, and workers started (for tests and stats).
    pub fn counts(&self) -> (usize, usize) {
        let q = lock(&self.queue);
        (q.jobs.len(), q.workers)
    }
}
