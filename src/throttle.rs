//! How fast token requests may go to one base URL. Findity answers 429 after 15–20 rapid
//! requests, and every key of a connector talks to the same host, so these rules hold per base
//! URL, for all keys and threads of the process:
//!
//! - A 429, or a 503 with Retry-After, pauses every token request to that base URL until
//!   Retry-After (1 s if absent, capped at 60 s) has passed. A caller whose deadline ends
//!   before the pause does fail at once, without sending anything.
//! - After a pause one request goes first (a probe); the others wait for its answer, so a
//!   server that keeps answering 429 sees one request per Retry-After period.
//! - Pacing learnt from the server (AIMD): unpaced until a 429 arrives while this process was
//!   pushing (at least 5 successful answers in the last max(1 s, Retry-After)). Then the rate
//!   becomes 97 % of that accepted rate, just under what the server just proved it accepts,
//!   and grows by 0.05 request/s for every second without a 429 (slowly: each overshoot costs
//!   a whole Retry-After). The accepted rate is counted when the pause ends, so the answers
//!   still in flight at the 429 count too (counted at the 429 itself, a burst's estimate came
//!   out low). The probe after a pause takes a paced slot, and a paced caller reserves its
//!   slot on arrival (first come, first served). A 429 with less evidence only
//!   pauses: a process asking slowly learns nothing about the server's limit from it (and must
//!   not crawl at its own low demand afterwards). A host idle for 10 minutes forgets it all.

use crate::base_url::BaseUrl;
use crate::error::{Delivery, Error, Status};
use crate::stats::{inc, Stats};
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant, SystemTime};

/// Longest pause believed from one Retry-After.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Pause after a 429 without Retry-After.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// Additive increase of the paced rate, per second without a 429.
const INCREASE_PER_SEC: f64 = 0.05;
/// Share of the observed accepted rate used after a 429.
const DECREASE: f64 = 0.97;
/// Successful answers needed in the observation span before a 429 sets a rate.
const MIN_EVIDENCE: usize = 5;
/// A host idle this long starts unpaced again.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct Throttle {
    hosts: Mutex<HashMap<String, Host>>,
    changed: Condvar,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe {
    None,
    /// A pause ended (or will): the next request is the probe.
    Needed,
    /// The probe is out; everyone else waits for its answer.
    InFlight,
}

struct Host {
    paused_until: Option<Instant>,
    probe: Probe,
    /// When the probe went out: one whose caller never reported back is written off.
    probe_since: Instant,
    /// Requests per second; None: unpaced.
    rate: Option<f64>,
    /// When `rate` was last set or increased.
    rate_at: Instant,
    /// Earliest start of the next paced request.
    next_slot: Instant,
    /// Successful answers in the last MAX_PAUSE, for estimating the accepted rate.
    ok: VecDeque<Instant>,
    /// A new overload at this time, observed over this span: the accepted rate is estimated
    /// once its pause is over.
    estimate: Option<(Instant, Duration)>,
    last_seen: Instant,
}

impl Host {
    fn new(now: Instant) -> Host {
        Host {
            paused_until: None,
            probe: Probe::None,
            probe_since: now,
            rate: None,
            rate_at: now,
            next_slot: now,
            ok: VecDeque::new(),
            estimate: None,
            last_seen: now,
        }
    }

    /// After a new overload's pause: the rate from the answers to what was sent in the span
    /// before it (those that arrived during the pause included).
    fn learn(&mut self, now: Instant) {
        let Some((at, span)) = self
            .estimate
            .filter(|_| self.paused_until.is_none_or(|p| p <= now))
        else {
            return;
        };
        self.estimate = None;
        let accepted = self.ok.iter().filter(|t| **t + span >= at).count();
        if accepted >= MIN_EVIDENCE {
            let rate = accepted as f64 / span.as_secs_f64() * DECREASE;
            self.rate = Some(self.rate.map_or(rate, |r| r.min(rate)).max(0.1));
            self.rate_at = now;
        }
    }

    /// The current rate, after additive increase.
    fn grown_rate(&mut self, now: Instant) -> Option<f64> {
        let rate = self.rate?;
        let secs = now.saturating_duration_since(self.rate_at).as_secs();
        if secs >= 1 {
            self.rate = Some(rate + INCREASE_PER_SEC * secs as f64);
            self.rate_at += Duration::from_secs(secs);
        }
        self.rate
    }
}

/// Permission to send one request; hand it back to `answered`.
pub struct Ticket {
    probe: bool,
}

fn wall_clock(at: Instant) -> String {
    let from_now = at.saturating_duration_since(Instant::now());
    httpdate::fmt_http_date(SystemTime::now() + from_now)
}

impl Throttle {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A child's throttle after fork: the parent's pauses and learnt rates, so a prefork
    /// server's workers do not each send into a pause the server asked for. Taken only if no
    /// thread held the lock at the fork (it would never be let go); a probe the parent had out
    /// is the child's to send again.
    pub fn inherit(parent: &Throttle) -> Throttle {
        let held = match parent.hosts.try_lock() {
            Ok(h) => h,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Throttle::default(),
        };
        // A probe the parent had out answers to the parent only: the child's is needed (else
        // it would wait for the write-off, 2 * MAX_PAUSE), at the cost of one more probe from
        // each child that asks while the parent's is out.
        let hosts = held
            .iter()
            .map(|(base, h)| {
                let probe = match h.probe {
                    Probe::InFlight => Probe::Needed,
                    p => p,
                };
                let host = Host {
                    probe,
                    ok: h.ok.clone(),
                    ..*h
                };
                (base.clone(), host)
            })
            .collect();
        Throttle {
            hosts: Mutex::new(hosts),
            changed: Condvar::new(),
        }
    }

    /// Wait until a request to `base` may be sent, or fail at once (SERVER, nothing sent) if
    /// that is past `deadline`.
    pub fn admit(&self, stats: &Stats, base: &BaseUrl, deadline: Instant) -> Result<Ticket, Error> {
        let mut hosts = self.lock();
        let mut waited = false;
        // A paced caller reserves its slot on arrival and sleeps until then: first come, first
        // served (racing for the next free slot starved some callers past their deadline).
        let mut reserved: Option<Instant> = None;
        loop {
            let now = Instant::now();
            hosts.retain(|_, h| now.saturating_duration_since(h.last_seen) < FORGET_AFTER);
            let h = hosts
                .entry(base.as_str().to_string())
                .or_insert_with(|| Host::new(now));
            h.last_seen = now;
            h.learn(now);
            if h.probe == Probe::InFlight && now.duration_since(h.probe_since) > 2 * MAX_PAUSE {
                h.probe = Probe::Needed;
            }
            // The earliest this caller could go, and whether it goes then.
            let until = if let Some(p) = h.paused_until.filter(|p| *p > now) {
                reserved = None;
                p
            } else if h.probe == Probe::InFlight {
                // Waiting for the probe's answer: no start time to promise.
                reserved = None;
                if now >= deadline {
                    return Err(throttled(base, None));
                }
                deadline
            } else if h.probe == Probe::Needed {
                h.probe = Probe::InFlight;
                h.probe_since = now;
                // The probe takes a paced slot like any request: the next one is not sent
                // right behind it (against a sliding window that was one request too many).
                // Never earlier than a slot already promised to a sleeping caller.
                if let Some(rate) = h.grown_rate(now) {
                    h.next_slot =
                        h.next_slot.max(now) + Duration::from_secs_f64(1.0 / rate.max(0.1));
                }
                if waited {
                    inc(&stats.throttle_waits);
                }
                return Ok(Ticket { probe: true });
            } else {
                match h.grown_rate(now) {
                    Some(rate) => {
                        let slot = match reserved {
                            Some(slot) => slot,
                            None => {
                                let slot = h.next_slot.max(now);
                                if slot > deadline {
                                    return Err(throttled(base, Some(slot)));
                                }
                                h.next_slot = slot + Duration::from_secs_f64(1.0 / rate.max(0.1));
                                reserved = Some(slot);
                                slot
                            }
                        };
                        if slot > now {
                            slot
                        } else {
                            if waited {
                                inc(&stats.throttle_waits);
                            }
                            return Ok(Ticket { probe: false });
                        }
                    }
                    None => {
                        if waited {
                            inc(&stats.throttle_waits);
                        }
                        return Ok(Ticket { probe: false });
                    }
                }
            };
            if until > deadline && h.probe != Probe::InFlight {
                return Err(throttled(base, Some(until)));
            }
            waited = true;
            let wait = until.min(deadline).saturating_duration_since(now);
            hosts = self
                .changed
                .wait_timeout(hosts, wait.max(Duration::from_millis(1)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// What the server answered a request admitted by `admit` (Ok: a token or code).
    pub fn answered(
        &self,
        stats: &Stats,
        base: &BaseUrl,
        ticket: Ticket,
        result: Result<(), &Error>,
    ) {
        let now = Instant::now();
        let mut hosts = self.lock();
        let Some(h) = hosts.get_mut(base.as_str()) else {
            return;
        };
        let overloaded = match result {
            Ok(()) => {
                h.ok.push_back(now);
                while h
                    .ok
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > MAX_PAUSE)
                {
                    h.ok.pop_front();
                }
                None
            }
            Err(e) if e.http_status == 429 || (e.http_status == 503 && e.retry_after.is_some()) => {
                Some(e.retry_after.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE))
            }
            Err(_) => None,
        };
        if ticket.probe && h.probe == Probe::InFlight {
            // Only an answer tells whether the server accepts again; a probe that never got
            // one (connect error, timeout) hands the probe to the next caller.
            let answered = match result {
                Ok(()) => true,
                Err(e) => e.http_status != 0,
            };
            h.probe = if answered { Probe::None } else { Probe::Needed };
        }
        if let Some(pause) = overloaded {
            inc(&stats.throttled);
            let already = h.paused_until.is_some_and(|t| t > now);
            h.paused_until = h.paused_until.max(Some(now + pause)).filter(|t| *t > now);
            h.probe = Probe::Needed;
            if !already && h.estimate.is_none() {
                // A new overload: what the server accepts is estimated when the pause ends
                // (a repeat changes nothing).
                h.estimate = Some((now, pause.max(Duration::from_secs(1))));
            }
        }
        drop(hosts);
        self.changed.notify_all();
    }
}

pub(crate) fn throttled(base: &BaseUrl, until: Option<Instant>) -> Error {
    let when = match until {
        Some(t) => format!("until {}", wall_clock(t)),
        None => "and has not yet accepted a request again".to_string(),
    };
    let mut e = Error::new(
        Status::Server,
        format!(
            "{} is throttling token requests (HTTP 429) {when}; nothing was sent, as that is past timeout_ms",
            base.as_str()
        ),
    );
    e.delivery = Delivery::NotSent;
    e.retryable = false;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe after a pause takes a paced slot: the request behind it waits 1/rate, not
    /// nothing (two at once broke a sliding window of exactly the learnt size, every pause).
    #[test]
    fn the_probe_takes_a_paced_slot() {
        let (th, stats) = (Throttle::default(), Stats::default());
        let base = BaseUrl::parse("http://127.0.0.1:9").unwrap();
        let far = Instant::now() + Duration::from_secs(30);
        for _ in 0..10 {
            let t = th.admit(&stats, &base, far).unwrap();
            th.answered(&stats, &base, t, Ok(()));
        }
        let mut e = Error::new(Status::Server, "throttled");
        e.http_status = 429;
        e.retry_after = Some(Duration::from_millis(50));
        let t = th.admit(&stats, &base, far).unwrap();
        th.answered(&stats, &base, t, Err(&e));
        // 10 accepted in the 1 s span: 9.7 requests/s from now on, one every 103 ms.
        let probe = th.admit(&stats, &base, far).unwrap();
        assert!(probe.probe);
        th.answered(&stats, &base, probe, Ok(()));
        let t0 = Instant::now();
        let next = th.admit(&stats, &base, far).unwrap();
        assert!(!next.probe);
        assert!(
            t0.elapsed() >= Duration::from_millis(80),
            "sent {:?} after the probe",
            t0.elapsed()
        );
    }
}
