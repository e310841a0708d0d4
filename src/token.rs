//! A token and its expiry rules. All expiry logic lives here.

use crate::secret::Secret;
use std::time::{Duration, Instant};

/// Lifetime assumed when the server sends no `expires_in`: short, never "forever".
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest lifetime believed; a larger `expires_in` is capped so tokens still rotate daily.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub struct Token {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// Monotonic time taken before the request was sent: the server's clock starts later.
    pub issued_at: Instant,
    pub lifetime: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and renew in the background.
    Stale,
    /// Inside the hard margin or past expiry: never hand it out.
    Expired,
}

impl Token {
    pub fn expires_at(&self) -> Instant {
        self.issued_at + self.lifetime
    }

    /// A handed-out token has at least this much life left: min(60 s, 25 % of its lifetime).
    pub fn hard_margin(&self) -> Duration {
        (self.lifetime / 4).min(Duration::from_secs(60))
    }

    /// Background renewal starts this long before expiry: min(300 s, 50 % of its lifetime).
    pub fn refresh_window(&self) -> Duration {
        (self.lifetime / 2).min(Duration::from_secs(300))
    }

    pub fn freshness(&self, now: Instant) -> Freshness {
        let left = self.expires_at().saturating_duration_since(now);
        if left <= self.hard_margin() {
            Freshness::Expired
        } else if left <= self.refresh_window() {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }

    /// Whole seconds of life left (for callers that print an expiry).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at().saturating_duration_since(now)
    }

    /// Until when, on the coarse clock, the token is [`Freshness::Fresh`]; 0 if it is not now.
    /// Lets the cache-hit path skip the precise clock. The slack covers the coarse clock's tick
    /// (1–4 ms), so "fresh" on the coarse clock is always fresh on the precise one.
    pub fn fresh_until_coarse(&self, now: Instant) -> u64 {
        let stale_at = self.expires_at() - self.refresh_window();
        let left = stale_at.saturating_duration_since(now);
        match left.checked_sub(COARSE_SLACK) {
            Some(d) if !d.is_zero() => coarse_now_ns().saturating_add(d.as_nanos() as u64),
            _ => 0,
        }
    }
}

const COARSE_SLACK: Duration = Duration::from_millis(20);

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the same timeline as `Instant`, read in a few ns
/// without a syscall, at the resolution of the kernel tick.
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(lifetime: u64) -> Token {
        Token {
            access: Secret::new("a"),
            refresh: None,
            issued_at: Instant::now(),
            lifetime: Duration::from_secs(lifetime),
        }
    }

    #[test]
    fn margins_for_long_tokens_are_capped() {
        let t = token(3600);
        assert_eq!(t.hard_margin(), Duration::from_secs(60));
        assert_eq!(t.refresh_window(), Duration::from_secs(300));
        let at = |secs| t.freshness(t.issued_at + Duration::from_secs(secs));
        assert_eq!(at(0), Freshness::Fresh);
        assert_eq!(at(3299), Freshness::Fresh);
        assert_eq!(at(3301), Freshness::Stale);
        assert_eq!(at(3539), Freshness::Stale);
        assert_eq!(at(3541), Freshness::Expired);
        assert_eq!(at(99999), Freshness::Expired);
    }

    #[test]
    fn coarse_freshness_ends_before_precise_freshness() {
        let t = token(4);
        let now = Instant::now();
        let until = t.fresh_until_coarse(now);
        let left_ns = until - coarse_now_ns();
        // Stale after 2 s; the coarse stamp ends at least the slack earlier.
        assert!(
            left_ns <= 2_000_000_000 - 20_000_000 + 5_000_000,
            "{left_ns}"
        );
        assert!(left_ns > 1_900_000_000, "{left_ns}");
        assert_eq!(t.fresh_until_coarse(now + Duration::from_secs(3)), 0);
    }

    #[test]
    fn margins_for_short_tokens_are_proportional() {
        let t = token(4);
        assert_eq!(t.hard_margin(), Duration::from_secs(1));
        assert_eq!(t.refresh_window(), Duration::from_secs(2));
        let at = |ms| t.freshness(t.issued_at + Duration::from_millis(ms));
        assert_eq!(at(1900), Freshness::Fresh);
        assert_eq!(at(2100), Freshness::Stale);
        assert_eq!(at(3100), Freshness::Expired);
    }
}
