//! One throttle for the fleet: processes that share a store (crate::store) also share what the
//! throttle knows about a base URL, in one small record per base URL next to the token records.
//! The rules are crate::throttle's, held fleet-wide:
//!
//! - a pause the server asked for (429, or 503 with Retry-After) holds for every process from
//!   the moment one of them sees it;
//! - after a pause one request goes first for the whole fleet (the probe); the others wait for
//!   its answer, so a server that keeps answering 429 sees one request per Retry-After period;
//!   a probe whose sender died is written off at that sender's deadline;
//! - the accepted pace is learnt from the fleet's answers (successes counted per second in the
//!   record) and spent fleet-wide as a GCRA: a shared theoretical arrival time, each request
//!   reserving the next slot.
//!
//! The state machine ([`Shared`]) is plain Rust, applied by the store atomically
//! (`Store::update`: a locked record for files, compare-and-set for Redis). It costs two store
//! round trips per token request (admit, answer), never one per cache hit. A store that fails
//! or does not keep records of this kind falls back to the process's own throttle; nothing
//! here ever fails a call by itself.
//!
//! Times are wall-clock milliseconds (the record crosses processes and hosts: hosts sharing a
//! Redis store should keep their clocks in step, as NTP does).

use crate::base_url::BaseUrl;
use crate::cache::Key;
use crate::error::Error;
use crate::state::State;
use crate::stats::inc;
use crate::store::{Active, StoreError};
use crate::throttle::{DEFAULT_PAUSE, MAX_PAUSE};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Additive increase of the paced rate, per second without a 429 (as crate::throttle).
const INCREASE_PER_SEC: f64 = 0.05;
/// Share of the observed accepted rate used after a 429.
const DECREASE: f64 = 0.97;
/// Successful answers needed in the observation span before a 429 sets a rate.
const MIN_EVIDENCE: u64 = 5;
/// A record untouched this long starts over (and expires in Redis).
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// How far another host's clock may be ahead before its record counts as from the future.
const CLOCK_SLACK_MS: u64 = 60_000;
/// The longest a probe can be out: the longest timeout_ms, and a second.
const MAX_PROBE_MS: u64 = 3_601_000;
/// How often a process waiting for the fleet's probe looks again.
const PROBE_POLL_MS: u64 = 50;
/// Successes are counted in buckets of this many ms, kept for OK_KEEP_MS: enough to estimate
/// the accepted rate over the span before a 429 (capped at that).
const OK_BUCKET_MS: u64 = 100;
const OK_KEEP_MS: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
enum Probe {
    #[default]
    None,
    /// A pause ended (or will): the next request is the probe.
    Needed,
    /// The probe is out until `probe_until`; everyone else waits for its answer.
    Out,
}

/// The fleet's shared record for one base URL.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, Default)]
pub struct Shared {
    v: u32,
    paused_until: u64,
    probe: Probe,
    probe_until: u64,
    /// Microseconds between requests; 0: unpaced.
    interval_us: u64,
    /// When the rate last grew (ms).
    rate_at: u64,
    /// GCRA: the theoretical arrival time of the next request (µs).
    tat_us: u64,
    /// Successful answers per OK_BUCKET_MS of wall-clock time: (bucket, count), oldest first.
    ok: Vec<(u64, u64)>,
    /// A new overload at this time (ms) over this span (ms): the rate is learnt when its pause
    /// is over, so answers still in flight at the 429 count too.
    estimate: Option<(u64, u64)>,
    last_seen: u64,
}

/// What `admit` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Send at `at_ms` (a reserved slot; now or later); `probe`: this request is the probe.
    Go { at_ms: u64, probe: bool },
    /// Ask again at `until_ms` (a pause, or the probe's answer).
    Wait { until_ms: u64 },
    /// The next slot is past the caller's deadline: fail at once, nothing sent.
    TooLate { until_ms: u64 },
}

/// A server's answer, as the fleet counts it.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    /// 429, or 503 with Retry-After: pause this long.
    Overloaded(Duration),
    /// Another answer (refused, failed): the server is there.
    Other,
    /// No answer at all (connect error, timeout).
    None,
}

impl Shared {
    pub fn parse(bytes: Option<&[u8]>) -> Shared {
        bytes
            .and_then(|b| serde_json::from_slice::<Shared>(b).ok())
            .filter(|s| s.v == crate::store::record::FORMAT as u32)
            .unwrap_or_default()
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut s = self.clone();
        s.v = crate::store::record::FORMAT as u32;
        serde_json::to_vec(&s).unwrap_or_default()
    }

    /// Decide for one request at `now` (ms) by a caller that may wait until `deadline` (ms).
    pub fn admit(&mut self, now: u64, deadline: u64) -> Admit {
        let forget = FORGET_AFTER.as_millis() as u64;
        // A record from the future (this clock stepped back, or a host whose clock is ahead
        // wrote it) would hold the fleet as long: start over.
        if now.saturating_sub(self.last_seen) > forget || self.last_seen > now + CLOCK_SLACK_MS {
            *self = Shared::default();
        }
        // Nothing in the record reaches further ahead than the rules allow.
        let max_pause = MAX_PAUSE.as_millis() as u64;
        self.paused_until = self.paused_until.min(now + max_pause);
        self.probe_until = self.probe_until.min(now + MAX_PROBE_MS);
        self.tat_us = self.tat_us.min((now + max_pause) * 1000);
        self.last_seen = now;
        self.learn(now);
        if self.probe == Probe::Out && now > self.probe_until {
            // Its sender died or gave up without an answer: someone else probes.
            self.probe = Probe::Needed;
        }
        if self.paused_until > now {
            return if self.paused_until > deadline {
                Admit::TooLate {
                    until_ms: self.paused_until,
                }
            } else {
                Admit::Wait {
                    until_ms: self.paused_until,
                }
            };
        }
        if self.probe == Probe::Out {
            let until = now + PROBE_POLL_MS;
            return if now >= deadline {
                Admit::TooLate { until_ms: until }
            } else {
                Admit::Wait { until_ms: until }
            };
        }
        let probe = self.probe == Probe::Needed;
        let mut at = now;
        if let Some(interval) = self.grown_interval(now) {
            let slot = self.tat_us.max(now * 1000);
            // Past the caller's deadline: nothing taken, the probe (if due) left to another.
            if slot > deadline * 1000 {
                return Admit::TooLate {
                    until_ms: slot / 1000,
                };
            }
            self.tat_us = slot + interval;
            at = slot / 1000;
        }
        if probe {
            self.probe = Probe::Out;
            // Written off once its sender's deadline has passed (a killed sender never answers).
            self.probe_until = deadline.max(at) + 1000;
        }
        Admit::Go { at_ms: at, probe }
    }

    /// Record the answer to a request admitted with `probe`.
    pub fn answered(&mut self, now: u64, answer: Answer, probe: bool) {
        self.last_seen = now;
        match answer {
            Answer::Ok => {
                let bucket = now / OK_BUCKET_MS;
                match self.ok.last_mut() {
                    Some((b, n)) if *b == bucket => *n += 1,
                    _ => self.ok.push((bucket, 1)),
                }
                self.ok
                    .retain(|(b, _)| (b + 1) * OK_BUCKET_MS + OK_KEEP_MS > now);
                if probe && self.probe == Probe::Out {
                    self.probe = Probe::None;
                }
            }
            Answer::Overloaded(pause) => {
                let pause = pause.min(MAX_PAUSE).as_millis() as u64;
                let new = self.paused_until <= now;
                self.paused_until = self.paused_until.max(now + pause);
                if new {
                    self.estimate = Some((now, pause.clamp(1000, OK_KEEP_MS)));
                }
                self.probe = Probe::Needed;
            }
            Answer::Other if probe && self.probe == Probe::Out => self.probe = Probe::None,
            Answer::None if probe && self.probe == Probe::Out => self.probe = Probe::Needed,
            Answer::Other | Answer::None => {}
        }
    }

    /// After a new overload's pause: the rate from the successes in the span before it.
    fn learn(&mut self, now: u64) {
        let Some((at, span)) = self.estimate.filter(|_| self.paused_until <= now) else {
            return;
        };
        self.estimate = None;
        // Answers to what was sent in the span before the 429, those that arrived during the
        // pause included (as crate::throttle counts them).
        let from = at.saturating_sub(span) / OK_BUCKET_MS;
        let accepted: u64 = self
            .ok
            .iter()
            .filter(|(b, _)| *b >= from)
            .map(|(_, n)| n)
            .sum();
        if accepted >= MIN_EVIDENCE {
            let rate = (accepted as f64 / (span as f64 / 1000.0) * DECREASE).max(0.1);
            let old = self.rate();
            let rate = old.map_or(rate, |r| r.min(rate));
            self.interval_us = (1e6 / rate) as u64;
            self.rate_at = now;
        }
    }

    fn rate(&self) -> Option<f64> {
        (self.interval_us > 0).then(|| 1e6 / self.interval_us as f64)
    }

    /// The interval after additive increase (None: unpaced).
    fn grown_interval(&mut self, now: u64) -> Option<u64> {
        let rate = self.rate()?;
        let secs = now.saturating_sub(self.rate_at) / 1000;
        if secs >= 1 {
            let rate = rate + INCREASE_PER_SEC * secs as f64;
            self.interval_us = (1e6 / rate) as u64;
            self.rate_at += secs * 1000;
        }
        Some(self.interval_us)
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The record's name in the store: a hash of the base URL (no URL in names).
fn name(base: &BaseUrl) -> String {
    let mut s = b"libfindity/fleet-throttle/v2\n".to_vec();
    s.extend_from_slice(base.as_str().as_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, &s);
    let mut out = String::from("fleet-");
    for b in d.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Permission to send one request, from the fleet's record.
pub struct Ticket {
    probe: bool,
}

/// Wait until the fleet lets a request to `key.base` go. Ok(None): no fleet throttle here
/// (no store, or it failed): use the process's own. Err: fail at once, nothing sent.
pub fn admit(
    st: &'static State,
    active: &Active,
    key: &Key,
    deadline: Instant,
) -> Result<Option<Ticket>, Error> {
    let name = name(&key.base);
    let mut waited = false;
    loop {
        let now = wall_ms();
        let left = deadline.saturating_duration_since(Instant::now());
        let deadline_ms = now + left.as_millis() as u64;
        let mut decided = None;
        let result = active.update(&name, deadline, &mut |cur| {
            let mut s = Shared::parse(cur);
            let d = s.admit(now, deadline_ms);
            decided = Some(d);
            Some(s.bytes())
        });
        if let Err(e) = result {
            fleet_failed(st, active, key, &e);
            return Ok(None);
        }
        let Some(decision) = decided else {
            return Ok(None);
        };
        match decision {
            Admit::Go { at_ms, probe } => {
                let wait = Duration::from_millis(at_ms.saturating_sub(wall_ms()));
                std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
                if waited {
                    inc(&st.stats.throttle_waits);
                }
                return Ok(Some(Ticket { probe }));
            }
            Admit::Wait { until_ms } => {
                waited = true;
                let wait = Duration::from_millis(until_ms.saturating_sub(wall_ms()));
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(crate::throttle::throttled(&key.base, None));
                }
                std::thread::sleep(wait.min(left).max(Duration::from_millis(1)));
            }
            Admit::TooLate { until_ms } => {
                let at = Instant::now() + Duration::from_millis(until_ms.saturating_sub(wall_ms()));
                return Err(crate::throttle::throttled(&key.base, Some(at)));
            }
        }
    }
}

/// Tell the fleet what the server answered.
pub fn answered(
    st: &'static State,
    active: &Active,
    key: &Key,
    ticket: Ticket,
    result: Result<(), &Error>,
) {
    let answer = match result {
        Ok(()) => Answer::Ok,
        Err(e) if e.http_status == 429 || (e.http_status == 503 && e.retry_after.is_some()) => {
            Answer::Overloaded(e.retry_after.unwrap_or(DEFAULT_PAUSE))
        }
        Err(e) if e.http_status == 0 => Answer::None,
        Err(_) => Answer::Other,
    };
    if matches!(answer, Answer::Overloaded(_)) {
        inc(&st.stats.throttled);
    }
    let now = wall_ms();
    let deadline = Instant::now() + Duration::from_secs(1);
    let name = name(&key.base);
    let result = active.update(&name, deadline, &mut |cur| {
        let mut s = Shared::parse(cur);
        s.answered(now, answer, ticket.probe);
        Some(s.bytes())
    });
    if let Err(e) = result {
        fleet_failed(st, active, key, &e);
    }
}

fn fleet_failed(st: &State, active: &Active, key: &Key, e: &StoreError) {
    active.failed(st, key, e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_for_everyone_and_one_probe_goes_first() {
        let mut s = Shared::default();
        assert_eq!(
            s.admit(1000, 9000),
            Admit::Go {
                at_ms: 1000,
                probe: false
            }
        );
        s.answered(1100, Answer::Overloaded(Duration::from_secs(2)), false);
        // Every process, from now on: wait for the pause.
        assert_eq!(s.admit(1200, 9000), Admit::Wait { until_ms: 3100 });
        // A caller whose deadline ends before the pause fails at once.
        assert_eq!(s.admit(1200, 2000), Admit::TooLate { until_ms: 3100 });
        // After the pause: one probe, the others wait for its answer.
        assert_eq!(
            s.admit(3100, 9000),
            Admit::Go {
                at_ms: 3100,
                probe: true
            }
        );
        assert!(matches!(s.admit(3150, 9000), Admit::Wait { .. }));
        s.answered(3200, Answer::Ok, true);
        assert_eq!(
            s.admit(3250, 9000),
            Admit::Go {
                at_ms: 3250,
                probe: false
            }
        );
    }

    #[test]
    fn a_probe_whose_sender_died_is_written_off_at_its_deadline() {
        let mut s = Shared::default();
        s.answered(0, Answer::Overloaded(Duration::from_secs(1)), false);
        assert_eq!(
            s.admit(1000, 4000),
            Admit::Go {
                at_ms: 1000,
                probe: true
            }
        );
        // Its sender is killed: nobody answers. Others wait until its deadline + 1 s...
        assert!(matches!(s.admit(4500, 20_000), Admit::Wait { .. }));
        // ...then one of them probes.
        assert_eq!(
            s.admit(5001, 20_000),
            Admit::Go {
                at_ms: 5001,
                probe: true
            }
        );
    }

    #[test]
    fn the_pace_is_learnt_from_the_fleets_answers_and_spent_as_slots() {
        let mut s = Shared::default();
        // 20 successes in the second before a 429 (sent by several processes).
        for i in 0..20 {
            assert!(matches!(s.admit(10_000 + i * 50, 60_000), Admit::Go { .. }));
            s.answered(10_000 + i * 50, Answer::Ok, false);
        }
        s.answered(11_000, Answer::Overloaded(Duration::from_secs(1)), false);
        // After the pause: paced at about 0.97 * 20/s over the span = one per ~50-110 ms.
        let Admit::Go {
            at_ms: a,
            probe: true,
        } = s.admit(12_000, 60_000)
        else {
            panic!("probe")
        };
        s.answered(12_001, Answer::Ok, true);
        let Admit::Go { at_ms: b, .. } = s.admit(12_001, 60_000) else {
            panic!("slot")
        };
        let Admit::Go { at_ms: c, .. } = s.admit(12_001, 60_000) else {
            panic!("slot")
        };
        assert!(b > a && c > b, "{a} {b} {c}");
        let gap = c - b;
        assert!((50..=120).contains(&gap), "gap {gap} ms");
        // A slot past the caller's deadline: fail at once, no slot taken.
        let tat = s.tat_us;
        assert!(matches!(s.admit(12_001, 12_002), Admit::TooLate { .. }));
        assert_eq!(s.tat_us, tat);
    }

    #[test]
    fn a_record_from_the_future_does_not_hold_the_fleet() {
        let mut s = Shared::default();
        // Written by a host whose clock was an hour ahead, during a pause.
        s.answered(
            3_600_000 + 10_000,
            Answer::Overloaded(Duration::from_secs(30)),
            false,
        );
        assert_eq!(
            s.admit(10_000, 20_000),
            Admit::Go {
                at_ms: 10_000,
                probe: false
            }
        );
        // A pause is never believed longer than MAX_PAUSE from now.
        let mut s = Shared {
            last_seen: 10_000,
            paused_until: 10_000 + 3_600_000,
            ..Default::default()
        };
        assert_eq!(s.admit(10_000, 1_000_000), Admit::Wait { until_ms: 70_000 });
    }

    #[test]
    fn a_probe_past_the_callers_deadline_is_left_to_another() {
        let mut s = Shared::default();
        for i in 0..20 {
            s.admit(10_000 + i * 50, 60_000);
            s.answered(10_000 + i * 50, Answer::Ok, false);
        }
        s.answered(11_000, Answer::Overloaded(Duration::from_secs(1)), false);
        s.tat_us = 15_000_000;
        // The probe's slot (15 s) is past this caller's deadline: it fails, the probe stays due.
        assert!(matches!(s.admit(12_000, 13_000), Admit::TooLate { .. }));
        assert!(matches!(
            s.admit(12_000, 60_000),
            Admit::Go { probe: true, .. }
        ));
    }

    #[test]
    fn records_round_trip_and_bad_ones_start_over() {
        let mut s = Shared::default();
        s.answered(5, Answer::Overloaded(Duration::from_secs(3)), false);
        let back = Shared::parse(Some(&s.bytes()));
        assert_eq!(back.paused_until, 3005);
        assert_eq!(Shared::parse(Some(b"{\"v\":99}")), Shared::default());
        assert_eq!(Shared::parse(Some(b"garbage")), Shared::default());
    }
}
