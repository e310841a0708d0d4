//! Throttling like Findity's (it answers 429 after 15-20 rapid requests):
//! more than `max` token/grant requests of one client within any sliding
//! `window` are refused with 429 and not processed. Only admitted requests
//! are recorded, so a client that waits `Retry-After` gets through.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// `(max_requests, window)`.
pub type Limit = (u32, Duration);

/// Buckets with more idle clients than this are pruned.
const PRUNE_AT: usize = 256;

/// Admitted request times per client (a code exchange counts for the code's client; `""`:
/// requests the server cannot attribute, e.g. an unknown code).
#[derive(Default)]
pub(crate) struct Throttle {
    buckets: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    /// Admits (and records) a request, or says how long until the window
    /// admits one again.
    pub(crate) fn admit(
        &mut self,
        limit: Limit,
        client: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let (max, window) = limit;
        if self.buckets.len() > PRUNE_AT {
            self.buckets
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = self.buckets.entry(client.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= max as usize {
            let oldest = q[q.len() - max as usize];
            return Err((oldest + window).saturating_duration_since(now));
        }
        q.push_back(now);
        Ok(())
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
    }
}

/// Parses `N/MS` (e.g. `20/1000`); `off`, `none` or empty mean no throttle.
pub fn parse(s: &str) -> Result<Option<Limit>, String> {
    let s = s.trim();
    if s.is_empty() || s == "off" || s == "none" {
        return Ok(None);
    }
    let bad = || format!("bad throttle {s:?} (N/MS, e.g. 20/1000, or off)");
    let (n, ms) = s.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let ms: u64 = ms.trim().parse().map_err(|_| bad())?;
    let limit = (n, Duration::from_millis(ms));
    validate(limit)?;
    Ok(Some(limit))
}

/// A limit must admit at least one request in a non-empty window.
pub fn validate(limit: Limit) -> Result<(), String> {
    if limit.0 == 0 || limit.1.is_zero() {
        return Err("throttle needs N >= 1 requests in a window of MS >= 1".into());
    }
    Ok(())
}

/// `N/MS`, as [`parse`] reads it.
pub fn format(limit: Limit) -> String {
    format!("{}/{}", limit.0, limit.1.as_millis())
}

/// `Retry-After` seconds: rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let mut t = Throttle::default();
        let limit = (2, Duration::from_millis(1000));
        let t0 = Instant::now();
        assert!(t.admit(limit, "a", t0).is_ok());
        assert!(t.admit(limit, "a", t0 + Duration::from_millis(400)).is_ok());
        assert_eq!(
            t.admit(limit, "a", t0 + Duration::from_millis(500)),
            Err(Duration::from_millis(500))
        );
        assert!(t.admit(limit, "b", t0 + Duration::from_millis(500)).is_ok());
        // Refused requests were not recorded: the first one's expiry admits again.
        assert!(t
            .admit(limit, "a", t0 + Duration::from_millis(1000))
            .is_ok());
        assert_eq!(
            t.admit(limit, "a", t0 + Duration::from_millis(1100)),
            Err(Duration::from_millis(300))
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(parse("20/1000"), Ok(Some((20, Duration::from_secs(1)))));
        assert_eq!(parse("off"), Ok(None));
        assert_eq!(parse(""), Ok(None));
        for bad in ["20", "0/100", "5/0", "a/b", "-1/100"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format((3, Duration::from_millis(250))), "3/250");
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
