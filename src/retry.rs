//! Backoff between attempts: exponential with full jitter, `Retry-After` honoured,
//! never past the caller's deadline.

use crate::error::Error;
use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(5);

pub struct Backoff {
    attempt: u32,
    /// No new attempt starts after this: the deadline, or earlier (see `no_retry_after`).
    retry_until: Instant,
}

thread_local! {
    static RETRY_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Run `f` with no retry starting after `until` on this thread. A background renewal uses it:
/// retrying is worth a renewal worker only while the token it replaces can still be served
/// (after that the next caller renews in the foreground), and a queue of keys whose host
/// refuses connections would otherwise hold every worker for timeout_ms each. A request in
/// flight is never cut short by it: that would lose a single-use refresh token.
pub fn no_retry_after<R>(until: Instant, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<Instant>);
    impl Drop for Reset {
        fn drop(&mut self) {
            RETRY_UNTIL.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(RETRY_UNTIL.with(|c| c.replace(Some(until))));
    f()
}

/// The last moment a retry may start on this thread for a request with `deadline`: the
/// deadline, or earlier inside `no_retry_after`.
pub fn horizon(deadline: Instant) -> Instant {
    RETRY_UNTIL
        .try_with(Cell::get)
        .ok()
        .flatten()
        .map_or(deadline, |u| u.min(deadline))
}

impl Backoff {
    pub fn new(deadline: Instant) -> Backoff {
        Backoff {
            attempt: 0,
            retry_until: horizon(deadline),
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempt + 1
    }

    /// Sleep before the next attempt after `err` and return how long. None (without sleeping)
    /// when the error is not worth retrying or the wait would end past the deadline.
    pub fn wait(&mut self, err: &Error) -> Option<Duration> {
        if !err.retryable {
            return None;
        }
        // A name that does not resolve gets one quick retry (a resolver hiccup), not the
        // whole timeout: it rarely starts resolving within seconds.
        if err.unresolved && self.attempt >= 1 {
            return None;
        }
        // The server's Retry-After is a floor, never a reason to retry faster than our backoff.
        let backoff = jittered(delay_for(self.attempt));
        let delay = err.retry_after.map_or(backoff, |d| d.max(backoff));
        if delay >= self.retry_until.saturating_duration_since(Instant::now()) {
            return None;
        }
        self.attempt += 1;
        std::thread::sleep(delay);
        Some(delay)
    }
}

/// Exponential delay for the n-th retry, capped.
pub fn delay_for(attempt: u32) -> Duration {
    BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP)
}

/// Full jitter in [d/2, d]: spreads processes that failed together without waiting too little.
pub fn jittered(d: Duration) -> Duration {
    let half = d / 2;
    let nanos = half.as_nanos() as u64;
    if nanos == 0 {
        return d;
    }
    half + Duration::from_nanos(random_u64() % (nanos + 1))
}

/// Randomness from std's per-process random SipHash keys; no crate needed for jitter.
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        Instant::now()
            .elapsed()
            .as_nanos()
            .wrapping_add(std::process::id() as u128) as u64,
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    #[test]
    fn delays_grow_and_cap() {
        assert_eq!(delay_for(0), Duration::from_millis(100));
        assert_eq!(delay_for(3), Duration::from_millis(800));
        assert_eq!(delay_for(40), CAP);
        for _ in 0..100 {
            let j = jittered(Duration::from_millis(800));
            assert!(j >= Duration::from_millis(400) && j <= Duration::from_millis(800));
        }
    }

    #[test]
    fn gives_up_on_permanent_errors_and_past_deadline() {
        let mut b = Backoff::new(Instant::now() + Duration::from_secs(10));
        assert!(b.wait(&Error::new(Status::Auth, "no")).is_none());
        let mut e = Error::new(Status::Server, "busy");
        e.retryable = true;
        e.retry_after = Some(Duration::from_secs(60));
        assert!(
            b.wait(&e).is_none(),
            "Retry-After beyond the deadline must not be waited for"
        );
        e.retry_after = Some(Duration::from_millis(1));
        let waited = b.wait(&e).unwrap();
        assert!(
            waited >= Duration::from_millis(50),
            "Retry-After 0 does not disable backoff: {waited:?}"
        );
        e.retry_after = Some(Duration::from_secs(u64::MAX));
        assert!(
            b.wait(&e).is_none(),
            "an absurd Retry-After is no panic, just no retry"
        );
        assert_eq!(b.attempts(), 2);
    }
}
