//! Where a new token comes from, in order: the refresh token (sent at most once, ever), then
//! the primary grant: client credentials for the organization, or an authorization grant plus
//! code exchange for a user. Retries with backoff stay inside the caller's deadline.

use crate::cache::Key;
use crate::error::{Delivery, Error};
use crate::grants;
use crate::retry::Backoff;
use crate::secret::Secret;
use crate::state::State;
use crate::token::Token;
use std::time::Instant;

/// Obtain a new token for `key`. Returns the refresh token back if it was never sent
/// (connect failure), since it is then still unused and valid.
pub fn renew(
    st: &'static State,
    key: &Key,
    refresh: Option<Secret>,
    secret: &Secret,
    deadline: Instant,
) -> (Result<Token, Error>, Option<Secret>) {
    let http = match st.http() {
        Ok(h) => h,
        Err(e) => return (Err(e), refresh),
    };
    let mut unused = None;
    if let Some(rt) = refresh {
        match grants::refresh(&http, &key.base, &key.client_id, &rt, deadline) {
            Ok(t) => return (Ok(t), None),
            // Never left this process: still unused, keep it for later.
            Err(e) if e.delivery == Delivery::NotSent => unused = Some(rt),
            // Refused, or sent with no answer: burnt either way. Fall back to the primary grant.
            Err(_) => {}
        }
    }
    let result = match &key.user_id {
        None => organization_token(st, key, secret, deadline),
        Some(user) => user_token(st, key, user, secret, deadline),
    };
    (result, unused)
}

fn organization_token(
    st: &'static State,
    key: &Key,
    secret: &Secret,
    deadline: Instant,
) -> Result<Token, Error> {
    let http = st.http()?;
    let mut backoff = Backoff::new(deadline);
    loop {
        match grants::client_credentials(&http, &key.base, &key.client_id, secret, deadline) {
            Ok(t) => return Ok(t),
            Err(e) => {
                if !backoff.wait(&e) {
                    return Err(after_attempts(e, backoff.attempts()));
                }
            }
        }
    }
}

/// Authorization grant with the (cached) organization token, then the code exchange.
/// A failed exchange is retried with a new code, never by replaying the old one.
fn user_token(
    st: &'static State,
    key: &Key,
    user: &str,
    secret: &Secret,
    deadline: Instant,
) -> Result<Token, Error> {
    let http = st.http()?;
    let org_key = Key {
        user_id: None,
        ..key.clone()
    };
    let org = st.cache.entry(&org_key, secret.expose());
    let mut backoff = Backoff::new(deadline);
    let mut org_token_renewed = false;
    loop {
        let org_token = org
            .get(st, secret.expose(), deadline, |t| Secret::new(t))
            .map_err(|e| e.context("organization token for the authorization grant"))?;
        let err = match grants::authorization_grant(&http, &key.base, &org_token, user, deadline) {
            Ok(code) => match grants::exchange_code(&http, &key.base, &code, deadline) {
                Ok(t) => return Ok(t),
                Err(mut e) => {
                    // A fresh code makes another round safe whatever happened to this one.
                    e.retryable = e.delivery != Delivery::Answered
                        || e.http_status == 408
                        || e.http_status == 429
                        || e.http_status >= 500;
                    e
                }
            },
            Err(e) if e.http_status == 401 && !org_token_renewed => {
                // The organization token was refused (revoked, or the server restarted):
                // forget it and try once more with a new one.
                org.invalidate_if(&org_token);
                org_token_renewed = true;
                continue;
            }
            Err(e) => e,
        };
        if !backoff.wait(&err) {
            return Err(after_attempts(err, backoff.attempts()));
        }
    }
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
