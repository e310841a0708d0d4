//! Where a new token comes from, in order: the refresh token (sent at most once, ever), then
//! the primary grant: client credentials for the organization, or an authorization grant plus
//! code exchange for a user. Retries with backoff stay inside the caller's deadline, and every
//! request goes through the host's throttle (crate::throttle) first.

use crate::cache::Key;
use crate::error::{Delivery, Error};
use crate::fleet;
use crate::grants;
use crate::log::{fingerprint, log};
use crate::refresh::RefreshToken;
use crate::retry::{Backoff, GiveUp};
use crate::secret::Secret;
use crate::state::State;
use crate::stats::inc;
use crate::token::Token;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send one request through the host's throttle: the fleet's, kept in the shared store, when
/// there is one that works (crate::fleet), else this process's (crate::throttle). Wait for a
/// pause or pacing (or fail at once, nothing sent, if that outlasts the deadline), and report
/// the answer back to it.
fn send<T>(
    st: &'static State,
    key: &Key,
    deadline: Instant,
    request: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    if let Some(active) = st.store.active().filter(|a| a.shares_throttle()) {
        if let Some(ticket) = fleet::admit(st, &active, key, deadline)? {
            let result = request();
            fleet::answered(st, &active, key, ticket, result.as_ref().map(|_| ()));
            return result;
        }
    }
    let ticket = st.throttle.admit(&st.stats, &key.base, deadline)?;
    let result = request();
    st.throttle
        .answered(&st.stats, &key.base, ticket, result.as_ref().map(|_| ()));
    result
}

/// Obtain a new token for `key` from Findity: the refresh token first, then the primary grant.
/// Hands the refresh token back if the server never processed it (see crate::refresh).
pub fn request_token(
    st: &'static State,
    key: &Key,
    refresh: Option<RefreshToken>,
    secret: &Secret,
    deadline: Instant,
) -> (Result<Token, Error>, Option<RefreshToken>) {
    let http = match st.http() {
        Ok(h) => h,
        Err(e) => return (Err(e), refresh),
    };
    // The refresh token while it is ours: grants::refresh takes it, and gives it back only if
    // the server did not process it; a throttle that refuses to send leaves it here.
    let mut held = refresh;
    let mut attempts = Attempts::new(st, deadline);
    while held.is_some() {
        log!(Debug, "{key}: refresh_token grant");
        let sent = send(st, key, deadline, || {
            let Some(rt) = held.take() else {
                return Err(Error::internal("no refresh token to send"));
            };
            inc(&st.stats.refresh_token);
            grants::refresh(&http, &key.base, &key.client_id, rt, deadline).map_err(|(e, back)| {
                held = back;
                e
            })
        });
        match sent {
            Ok(t) => {
                obtained(key, &t, "refresh_token");
                return (Ok(t), None);
            }
            // Never left this process: still unused, kept for later.
            Err(e) if e.delivery == Delivery::NotSent => break,
            // Throttled (429), so not processed: send it again after the pause, never fall
            // back at once; if the pause outlasts the deadline, it goes back to its owner.
            Err(e) if held.is_some() => match retry(st, key, &mut attempts, e) {
                Ok(()) => continue,
                Err(e) => return (Err(e), held),
            },
            // Refused, or sent with no answer: burnt either way. Fall back to the primary grant.
            Err(e) => {
                inc(&st.stats.fallbacks);
                let grant = if key.user_id.is_some() {
                    "a new authorization grant"
                } else {
                    "client_credentials"
                };
                log!(
                    Info,
                    "{key}: refresh token not accepted, falling back to {grant}: {e}"
                );
                break;
            }
        }
    }
    let result = match &key.user_id {
        None => organization_token(st, key, secret, deadline),
        Some(user) => user_token(st, key, user, secret, deadline),
    };
    (result, held)
}

fn obtained(key: &Key, t: &Token, grant: &str) {
    log!(
        Info,
        "{key}: new token {} via {grant}, expires in {:.0} s",
        fingerprint(t.access.expose()),
        t.lifetime.as_secs_f64()
    );
}

/// Wait before the next attempt, or give up; says so in the log either way.
/// Retries of one renewal: the backoff, and the last answer a server gave, which says more than
/// a final attempt that merely ran out of time.
struct Attempts {
    backoff: Backoff,
    last_answer: Option<Error>,
}

impl Attempts {
    fn new(st: &State, deadline: Instant) -> Attempts {
        Attempts {
            backoff: Backoff::new(deadline).refused_for(st.options().refused),
            last_answer: None,
        }
    }
}

fn retry(st: &State, key: &Key, attempts: &mut Attempts, err: Error) -> Result<(), Error> {
    match attempts.backoff.wait(&err) {
        Ok(waited) => {
            inc(&st.stats.retries);
            log!(
                Warn,
                "{key}: retried after {} ms: {err}",
                waited.as_millis()
            );
            if err.delivery == Delivery::Answered {
                attempts.last_answer = Some(err);
            }
            Ok(())
        }
        Err(why) => {
            let n = attempts.backoff.attempts();
            match attempts.last_answer.take() {
                // The deadline cut the last attempt short: report what the server last said.
                // (Not when nothing listens any more: that is the news.)
                Some(mut answer) if err.http_status == 0 && n > 1 && !err.refused => {
                    answer.message = format!(
                        "{} (after {n} attempts; the last one ran out of timeout_ms)",
                        answer.message
                    );
                    Err(answer)
                }
                _ => Err(gave_up(err, why, n, attempts.backoff.elapsed())),
            }
        }
    }
}

/// The last error of a renewal, saying why no further attempt was made.
fn gave_up(mut e: Error, why: GiveUp, attempts: u32, elapsed: Duration) -> Error {
    match why {
        GiveUp::Refused => {
            // "(connection refused)" is http::classify's; the count goes inside it.
            let n = if attempts == 1 {
                "1 attempt".to_string()
            } else {
                format!("{attempts} attempts in {:.1} s", elapsed.as_secs_f64())
            };
            e.message = e.message.replacen(
                "(connection refused)",
                &format!("(connection refused, {n})"),
                1,
            );
            e
        }
        GiveUp::RetryAfter { asked, left } => {
            let returned = if attempts == 1 {
                "returned at once".to_string()
            } else {
                format!("returned after {attempts} attempts")
            };
            e.message = format!(
                "{}; the server asked to wait {} (Retry-After), longer than the {:.1} s left of timeout_ms: {returned}",
                e.message,
                seconds(asked),
                left.as_secs_f64()
            );
            e
        }
        _ => after_attempts(e, attempts),
    }
}

fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn organization_token(
    st: &'static State,
    key: &Key,
    secret: &Secret,
    deadline: Instant,
) -> Result<Token, Error> {
    let http = st.http()?;
    let mut attempts = Attempts::new(st, deadline);
    loop {
        let sent = send(st, key, deadline, || {
            inc(&st.stats.client_credentials);
            grants::client_credentials(&http, &key.base, &key.client_id, secret, deadline)
        });
        match sent {
            Ok(t) => {
                obtained(key, &t, "client_credentials");
                return Ok(t);
            }
            Err(e) => retry(st, key, &mut attempts, e)?,
        }
    }
}

/// Authorization grant with the (cached) organization token, then the code exchange.
/// A failed exchange is retried with a new code, never by replaying the old one.
/// A code answered 429 is sent again after the pause only if it was issued less than this ago.
const CODE_RESEND_WITHIN: Duration = Duration::from_secs(30);

fn user_token(
    st: &'static State,
    key: &Key,
    user: &str,
    secret: &Secret,
    deadline: Instant,
) -> Result<Token, Error> {
    let http = st.http()?;
    let org_key = key.organization();
    let mut attempts = Attempts::new(st, deadline);
    let mut org_token_renewed = false;
    loop {
        let (org, org_token) = organization_for_grant(st, &org_key, secret, deadline)
            .map_err(|e| e.context("organization token for the authorization grant"))?;
        let granted = send(st, key, deadline, || {
            inc(&st.stats.authorization_grant);
            grants::authorization_grant(&http, &key.base, &org_token, user, deadline)
        });
        let err = match granted {
            Ok(code) => {
                let issued = Instant::now();
                loop {
                    let exchanged = send(st, key, deadline, || {
                        inc(&st.stats.authorization_code);
                        grants::exchange_code(&http, &key.base, &code, deadline)
                    });
                    match exchanged {
                        Ok(t) => {
                            obtained(key, &t, "authorization grant and code exchange");
                            return Ok(t);
                        }
                        // Throttled (429), so not processed: the code is still unused. Send it
                        // again after the pause while it is young; an old one may have expired
                        // (Findity does not document a code's life), so then a new grant.
                        Err(e) if e.delivery == Delivery::Answered && e.http_status == 429 => {
                            retry(st, key, &mut attempts, e)?;
                            if issued.elapsed() < CODE_RESEND_WITHIN {
                                continue;
                            }
                            break;
                        }
                        Err(mut e) => {
                            // A fresh code makes another round safe whatever happened to this one.
                            e.retryable = e.delivery != Delivery::Answered
                                || e.http_status == 408
                                || e.http_status >= 500;
                            retry(st, key, &mut attempts, e)?;
                            break;
                        }
                    }
                }
                continue;
            }
            Err(e) if e.http_status == 401 && !org_token_renewed => {
                // The organization token was refused (revoked, or the server restarted):
                // forget it and try once more with a new one.
                log!(
                    Warn,
                    "{key}: organization token {} refused by the authorization grant, renewing it",
                    fingerprint(org_token.expose())
                );
                org.invalidate_if(org_token.expose().as_bytes());
                org_token_renewed = true;
                continue;
            }
            Err(e) => e,
        };
        retry(st, key, &mut attempts, err)?;
    }
}

/// The organization entry and its token for an authorization grant. The entry is looked up
/// each time: one held across calls may have been retired (cleared or evicted).
fn organization_for_grant(
    st: &'static State,
    org_key: &Key,
    secret: &Secret,
    deadline: Instant,
) -> Result<(Arc<crate::cache::Entry>, Secret), Error> {
    let mut take = |t: &str| Secret::new(t);
    for _ in 0..8 {
        let org = st.cache.entry(st, org_key, secret.expose());
        match org.get(st, secret.expose(), deadline, take) {
            Ok(token) => return token.map(|t| (org, t)),
            Err(back) => take = back,
        }
    }
    Err(Error::internal(
        "organization entry retired repeatedly during one call",
    ))
}

fn after_attempts(e: Error, attempts: u32) -> Error {
    if attempts > 1 {
        let mut e = e;
        e.message = format!("{} (after {attempts} attempts)", e.message);
        e
    } else {
        e
    }
}
