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
    started: Instant,
    /// Refused connections are retried for this long after the first one (option refused_ms).
    refused_for: Duration,
    first_refused: Option<Instant>,
    connect_timeouts: u32,
}

/// Why an error is not followed by another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// Not worth retrying: a refusal, or a single-use grant that may have been used.
    Final,
    /// The server asked (`Retry-After`) to wait longer than the time left.
    RetryAfter { asked: Duration, left: Duration },
    /// The next attempt would start past the deadline.
    Deadline,
    /// Connections were refused for refused_ms: nothing listens there.
    Refused,
    /// A name that does not resolve, or a connection set-up that timed out, was retried once.
    RetriedOnce,
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
            started: Instant::now(),
            refused_for: Duration::from_millis(crate::config::DEFAULT_REFUSED_MS),
            first_refused: None,
            connect_timeouts: 0,
        }
    }

    /// Retry refused connections for `d` after the first refusal (option refused_ms).
    pub fn refused_for(mut self, d: Duration) -> Backoff {
        self.refused_for = d;
        self
    }

    pub fn attempts(&self) -> u32 {
        self.attempt + 1
    }

    /// Time since the first attempt.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sleep before the next attempt after `err` and return how long; or say (without
    /// sleeping) why there is no next attempt.
    pub fn wait(&mut self, err: &Error) -> Result<Duration, GiveUp> {
        if !err.retryable {
            return Err(GiveUp::Final);
        }
        // A name that does not resolve gets one quick retry (a resolver hiccup), not the
        // whole timeout: it rarely starts resolving within seconds.
        if err.unresolved && self.attempt >= 1 {
            return Err(GiveUp::RetriedOnce);
        }
        // A host that drops packets costs connect_timeout_ms and one retry, not timeout_ms.
        if err.connect_timed_out {
            if self.connect_timeouts >= 1 {
                return Err(GiveUp::RetriedOnce);
            }
            self.connect_timeouts += 1;
        }
        // The server's Retry-After is a floor, never a reason to retry faster than our backoff.
        let backoff = jittered(delay_for(self.attempt));
        let delay = err.retry_after.map_or(backoff, |d| d.max(backoff));
        let now = Instant::now();
        // Nothing listens there: a few quick retries cover a server that is restarting; a
        // wrong port or a stopped server fails within refused_ms, not timeout_ms.
        if err.refused {
            let first = *self.first_refused.get_or_insert(now);
            if now
                .checked_add(delay)
                .is_none_or(|t| t > first + self.refused_for)
            {
                return Err(GiveUp::Refused);
            }
        }
        let left = self.retry_until.saturating_duration_since(now);
        if delay >= left {
            return Err(match err.retry_after {
                Some(asked) if asked >= backoff => GiveUp::RetryAfter { asked, left },
                _ => GiveUp::Deadline,
            });
        }
        self.attempt += 1;
        std::thread::sleep(delay);
        Ok(delay)
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
        assert_eq!(b.wait(&Error::new(Status::Auth, "no")), Err(GiveUp::Final));
        let mut e = Error::new(Status::Server, "busy");
        e.retryable = true;
        e.retry_after = Some(Duration::from_secs(60));
        match b.wait(&e) {
            Err(GiveUp::RetryAfter { asked, left }) => {
                assert_eq!(asked, Duration::from_secs(60));
                assert!(left <= Duration::from_secs(10), "{left:?}");
            }
            other => panic!("Retry-After beyond the deadline must not be waited for: {other:?}"),
        }
        e.retry_after = Some(Duration::from_millis(1));
        let waited = b.wait(&e).unwrap();
        assert!(
            waited >= Duration::from_millis(50),
            "Retry-After 0 does not disable backoff: {waited:?}"
        );
        e.retry_after = Some(Duration::from_secs(u64::MAX));
        assert!(
            b.wait(&e).is_err(),
            "an absurd Retry-After is no panic, just no retry"
        );
        assert_eq!(b.attempts(), 2);
    }

    #[test]
    fn refused_connections_are_retried_for_refused_ms_only() {
        let mut e = Error::new(Status::Network, "refused");
        e.retryable = true;
        e.refused = true;
        let t0 = Instant::now();
        let mut b =
            Backoff::new(t0 + Duration::from_secs(60)).refused_for(Duration::from_millis(400));
        let mut waits = 0;
        while b.wait(&e).is_ok() {
            waits += 1;
        }
        assert!(
            t0.elapsed() <= Duration::from_millis(450),
            "{:?}",
            t0.elapsed()
        );
        assert!((2..=4).contains(&waits), "{waits} retries");
        assert_eq!(b.wait(&e), Err(GiveUp::Refused));
        let mut b = Backoff::new(t0 + Duration::from_secs(60)).refused_for(Duration::ZERO);
        assert_eq!(b.wait(&e), Err(GiveUp::Refused), "refused_ms 0: no retry");
    }

    #[test]
    fn a_connect_timeout_is_retried_once() {
        let mut e = Error::new(Status::Network, "connect timeout");
        e.retryable = true;
        e.connect_timed_out = true;
        let mut b = Backoff::new(Instant::now() + Duration::from_secs(60));
        assert!(b.wait(&e).is_ok());
        assert_eq!(b.wait(&e), Err(GiveUp::RetriedOnce));
    }
}
