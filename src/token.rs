//! A token and its expiry rules. All expiry logic lives here: the clock tokens live on, the
//! hard margin, the renewal window (with its per-token jitter) and the coarse-clock stamp of
//! the cache-hit path.
//!
//! The clock: tokens expire in real time, also while the machine is suspended, but std's
//! `Instant` (CLOCK_MONOTONIC on Linux) stops then. Token times are therefore `Instant`s in a
//! frame of their own, [`now`]: the monotonic clock plus the time suspended since the process
//! started (CLOCK_BOOTTIME − CLOCK_MONOTONIC). Every `issued_at`, and every `now` compared with
//! one, comes from [`now`]. A suspend noticed there outdates the threads' snapshots.
//!
//! On Windows std's `Instant` is QueryPerformanceCounter, which already counts time asleep or
//! hibernated (QueryUnbiasedInterruptTime is the one that does not): the suspend offset is 0
//! there, and the coarse clock (GetTickCount64) counts it too, so coarse stamps never lag.

use crate::refresh::RefreshToken;
use crate::secret::Secret;
use std::time::{Duration, Instant};

/// Lifetime assumed when the server sends no `expires_in`: short, never "forever".
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest lifetime believed; a larger `expires_in` is capped so tokens still rotate daily.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Not Clone: it may carry a refresh token (see crate::refresh); [`Token::access_only`] copies
/// the rest.
#[derive(Debug)]
pub struct Token {
    pub access: Secret,
    pub refresh: Option<RefreshToken>,
    /// Monotonic time taken before the request was sent: the server's clock starts later.
    pub issued_at: Instant,
    pub lifetime: Duration,
    /// How long before expiry background renewal starts: the base window less a random part
    /// of up to a quarter of the time between it and the hard margin, chosen once per token,
    /// so keys fetched together do not all renew at the same moment.
    window: Duration,
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

/// A handed-out token has at least this much life left: min(60 s, 25 % of its lifetime).
fn hard_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(60))
}

/// Background renewal starts at most this long before expiry: min(300 s, 50 % of its lifetime).
fn base_window(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(300))
}

impl Token {
    pub fn new(
        access: Secret,
        refresh: Option<RefreshToken>,
        issued_at: Instant,
        lifetime: Duration,
    ) -> Token {
        let (base, margin) = (base_window(lifetime), hard_margin(lifetime));
        let spread = base.saturating_sub(margin) / 4;
        let jitter = spread.mul_f64((crate::retry::random_u64() % 1024) as f64 / 1024.0);
        Token {
            access,
            refresh,
            issued_at,
            lifetime,
            window: base - jitter,
        }
    }

    /// A copy of everything but the refresh token (which has one owner only).
    pub fn access_only(&self) -> Token {
        Token {
            access: self.access.clone(),
            refresh: None,
            issued_at: self.issued_at,
            lifetime: self.lifetime,
            window: self.window,
        }
    }

    pub fn expires_at(&self) -> Instant {
        self.issued_at + self.lifetime
    }

    pub fn hard_margin(&self) -> Duration {
        hard_margin(self.lifetime)
    }

    /// Background renewal starts this long before expiry (see `window`).
    pub fn refresh_window(&self) -> Duration {
        self.window
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

    /// Life left (for callers that print an expiry).
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

#[cfg(unix)]
const COARSE_SLACK: Duration = Duration::from_millis(20);
/// Windows' tick (GetTickCount64) is 10–16 ms: two of them.
#[cfg(windows)]
const COARSE_SLACK: Duration = Duration::from_millis(32);

/// Token time (see the module documentation). A slow-path call: two clock reads.
pub fn now() -> Instant {
    let mono = Instant::now();
    mono + suspended_since_start(suspend_offset_ns())
}

/// A token-time instant in the monotonic frame of deadlines (std's `Instant::now()`).
pub fn to_monotonic(t: Instant) -> Instant {
    let (mono, token) = (Instant::now(), now());
    let ahead = token.saturating_duration_since(mono);
    t.checked_sub(ahead).unwrap_or(t)
}

/// CLOCK_BOOTTIME − CLOCK_MONOTONIC: the time this machine spent suspended since boot.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn suspend_offset_ns() -> u64 {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid, writable timespec; clocks the kernel knows.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
    };
    let boot = read(TOKEN_CLOCK);
    let mono = read(libc::CLOCK_MONOTONIC);
    boot.saturating_sub(mono)
}

/// The clock tokens' expiry follows (a test checks the selection).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const TOKEN_CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;

/// Elsewhere std's monotonic clock is the token clock (no suspend offset is read): on Windows
/// it counts suspended time itself (see the module documentation).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn suspend_offset_ns() -> u64 {
    0
}

/// Suspend offset at the first reading, and the last one seen (u64::MAX: none yet).
static FIRST_OFFSET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);
static LAST_OFFSET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// A growth of the offset beyond this is a suspend (readings race by a few µs, never more).
const SUSPEND_NOTICED: u64 = 100_000_000;

/// Time suspended since the process first read the clock, given the current offset; a suspend
/// noticed (the offset grew) outdates every snapshot, whose coarse stamps lag by that much.
fn suspended_since_start(offset: u64) -> Duration {
    use std::sync::atomic::Ordering;
    let first = match FIRST_OFFSET.compare_exchange(
        u64::MAX,
        offset,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            LAST_OFFSET.store(offset, Ordering::Release);
            offset
        }
        Err(first) => first,
    };
    let last = LAST_OFFSET.load(Ordering::Acquire);
    if offset > last.saturating_add(SUSPEND_NOTICED)
        && LAST_OFFSET
            .compare_exchange(last, offset, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        crate::state::outdate_snapshots();
    }
    Duration::from_nanos(offset.saturating_sub(first))
}

/// Linux's coarse monotonic clock reads in a few ns without a syscall, at the kernel tick's
/// resolution. Elsewhere (macOS, the BSDs) the plain monotonic clock: the stamps only ever
/// compare with each other, so any monotonic clock is correct, just slower.
#[cfg(any(target_os = "linux", target_os = "android"))]
const COARSE_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const COARSE_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// The coarse clock in nanoseconds (see COARSE_CLOCK).
#[cfg(unix)]
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(COARSE_CLOCK, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Windows: GetTickCount64, milliseconds since boot at the timer tick's resolution (10–16 ms),
/// read from shared memory without a system call; it counts time asleep, like the token clock.
#[cfg(windows)]
pub fn coarse_now_ns() -> u64 {
    // SAFETY: no arguments, no preconditions.
    let ms = unsafe { windows_sys::Win32::System::SystemInformation::GetTickCount64() };
    ms.saturating_mul(1_000_000)
}

/// How far two coarse readings may be off (one tick), for the tests.
#[cfg(all(test, unix))]
const COARSE_TICK_NS: u64 = 5_000_000;
#[cfg(all(test, windows))]
const COARSE_TICK_NS: u64 = 16_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// A token without jitter: the window is the base window.
    fn token(lifetime: u64) -> Token {
        let lifetime = Duration::from_secs(lifetime);
        Token {
            access: Secret::new("a"),
            refresh: None,
            issued_at: Instant::now(),
            lifetime,
            window: base_window(lifetime),
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
    fn renewal_windows_are_jittered_within_bounds() {
        let mut windows = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let t = Token::new(
                Secret::new("a"),
                None,
                Instant::now(),
                Duration::from_secs(3600),
            );
            let w = t.refresh_window();
            assert!(
                w <= Duration::from_secs(300) && w >= Duration::from_secs(240),
                "{w:?}"
            );
            windows.insert(w.as_millis());
        }
        assert!(
            windows.len() > 50,
            "not spread: {} distinct windows",
            windows.len()
        );
    }

    #[test]
    fn coarse_freshness_ends_before_precise_freshness() {
        let t = token(4);
        let now = Instant::now();
        let until = t.fresh_until_coarse(now);
        let left_ns = until - coarse_now_ns();
        // Stale after 2 s; the coarse stamp ends at least the slack earlier.
        assert!(
            left_ns <= 2_000_000_000 - COARSE_SLACK.as_nanos() as u64 + COARSE_TICK_NS,
            "{left_ns}"
        );
        assert!(left_ns > 1_900_000_000, "{left_ns}");
        assert_eq!(t.fresh_until_coarse(now + Duration::from_secs(3)), 0);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn expiry_counts_suspended_time() {
        // The clock the code selects keeps counting while suspended.
        assert_eq!(TOKEN_CLOCK, libc::CLOCK_BOOTTIME);
        let base = suspend_offset_ns();
        let before = Instant::now() + suspended_since_start(base);
        let t = Token::new(Secret::new("a"), None, before, Duration::from_secs(3600));
        let epoch = crate::state::snapshot_epoch();
        // Two hours suspended: the offset grows by that much between two readings.
        let after = Instant::now() + suspended_since_start(base + 7_200_000_000_000);
        assert_eq!(t.freshness(after), Freshness::Expired);
        assert!(
            crate::state::snapshot_epoch() > epoch,
            "a noticed suspend must outdate the snapshots"
        );
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
