//! Findity's OAuth endpoints and the resource API, with the token store.
//!
//! Behaviour follows Findity's Authentication page: client credentials and
//! single-use refresh tokens at `/api/oauth/token`, user codes from
//! `/api/oauth/authorization-grant` exchanged with `grant_type=authorization_code`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::faults::{fault_action, lost_answer, Action, Endpoint, Fault, FaultKind, Grant};
use crate::http::{parse_form, Request, Response};
use crate::state::{InFlight, Shared, State};
use crate::{echo, throttle};

/// Authorization codes live this long.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Whom a token acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    Org { client: String },
    User { client: String, user: String },
}

impl Subject {
    pub(crate) fn label(&self) -> String {
        match self {
            Subject::Org { client } => format!("org:{client}"),
            Subject::User { user, .. } => format!("user:{user}"),
        }
    }

    fn client(&self) -> &str {
        match self {
            Subject::Org { client } | Subject::User { client, .. } => client,
        }
    }
}

struct AccessToken {
    subject: Subject,
    /// `None`: never expires (lifetime too large for `Instant`).
    expires_at: Option<Instant>,
    revoked: bool,
}

#[derive(PartialEq, Eq)]
enum RefreshState {
    Active,
    Used,
    Revoked,
}

struct RefreshToken {
    subject: Subject,
    state: RefreshState,
}

struct AuthCode {
    client: String,
    user: String,
    expires_at: Instant,
    used: bool,
}

/// Every credential issued since start or the last reset.
#[derive(Default)]
pub(crate) struct TokenStore {
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    codes: HashMap<String, AuthCode>,
}

/// Why a bearer token was refused.
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
    Revoked,
}

impl TokenStore {
    pub(crate) fn revoke_access(&mut self) {
        self.access.values_mut().for_each(|t| t.revoked = true);
    }

    /// Only unused tokens become revoked, so a later reuse of an already
    /// used token is still counted as reuse.
    pub(crate) fn revoke_refresh(&mut self) {
        for t in self.refresh.values_mut() {
            if t.state == RefreshState::Active {
                t.state = RefreshState::Revoked;
            }
        }
    }

    /// The client a known access token was issued to (expired or not).
    pub(crate) fn client_of(&self, token: Option<&str>) -> Option<String> {
        Some(self.access.get(token?)?.subject.client().to_string())
    }

    pub(crate) fn check_access(&self, token: Option<&str>) -> Result<&Subject, TokenProblem> {
        let t = self
            .access
            .get(token.ok_or(TokenProblem::Missing)?)
            .ok_or(TokenProblem::Unknown)?;
        if t.revoked {
            return Err(TokenProblem::Revoked);
        }
        if t.expires_at.is_some_and(|e| Instant::now() >= e) {
            return Err(TokenProblem::Expired);
        }
        Ok(&t.subject)
    }
}

/// Answer body of a successful grant.
struct Issued {
    access: String,
    refresh: Option<String>,
    expires_in: i64,
}

fn issue(st: &mut State, subject: Subject) -> Issued {
    let lifetime = st.runtime.lifetime_secs;
    let now = Instant::now();
    let expires_at = if lifetime <= 0 {
        Some(now)
    } else {
        now.checked_add(Duration::from_secs(lifetime as u64))
    };
    // Expired access tokens are forgotten (a 401 either way), so long soaks measure the client's
    // memory, not the emulator's. Refresh tokens stay: reuse must still be counted.
    st.store
        .access
        .retain(|_, a| a.expires_at.is_none_or(|e| e > now));
    let access = st.rng.access_token();
    let refresh = st.runtime.refresh_tokens.then(|| st.rng.refresh_token());
    *st.stats.by_subject.entry(subject.label()).or_default() += 1;
    if let Some(rt) = &refresh {
        st.store.refresh.insert(
            rt.clone(),
            RefreshToken {
                subject: subject.clone(),
                state: RefreshState::Active,
            },
        );
    }
    st.store.access.insert(
        access.clone(),
        AccessToken {
            subject,
            expires_at,
            revoked: false,
        },
    );
    Issued {
        access,
        refresh,
        expires_in: lifetime,
    }
}

/// Built by hand so `expires_in:RAW` can splice arbitrary JSON text.
fn token_body(issued: &Issued, omit_expires_in: bool, raw_expires_in: Option<&str>) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut body = format!(
        "{{\"access_token\":{},\"token_type\":\"Bearer\"",
        q(&issued.access)
    );
    match raw_expires_in {
        Some(raw) => body.push_str(&format!(",\"expires_in\":{raw}")),
        None if !omit_expires_in => {
            body.push_str(&format!(",\"expires_in\":{}", issued.expires_in))
        }
        None => {}
    }
    if let Some(rt) = &issued.refresh {
        body.push_str(&format!(",\"refresh_token\":{}", q(rt)));
    }
    body.push('}');
    body
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    Response::json_value(status, &body)
}

fn invalid_request(description: &str) -> Response {
    oauth_error(400, "invalid_request", description)
}

fn invalid_client() -> Response {
    oauth_error(401, "invalid_client", "Client authentication failed")
}

/// Findity's own (non-OAuth) error shape.
fn findity_error(code: &str, description: &str) -> Response {
    let body = serde_json::json!({"code": code, "description": description});
    Response::json_value(400, &body)
}

fn invalid_token(description: &str) -> Response {
    let body = serde_json::json!({"error": "invalid_token", "error_description": description});
    Response::json_value(401, &body).header("WWW-Authenticate", r#"Bearer error="invalid_token""#)
}

fn token_problem(p: TokenProblem) -> Response {
    invalid_token(match p {
        TokenProblem::Missing => "Bearer token required",
        TokenProblem::Unknown => "Access token is invalid",
        TokenProblem::Expired => "Access token has expired",
        TokenProblem::Revoked => "Access token has been revoked",
    })
}

/// Constant-time comparison, so secret checks leak no prefix length.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Decoded form parameters of an OAuth request.
struct Form(Vec<(String, String)>);

impl Form {
    /// Parses the body as `application/x-www-form-urlencoded`, which the
    /// Content-Type must say (Findity's examples always send it).
    fn parse(req: &Request) -> Result<Form, Response> {
        let mime = req
            .header("content-type")
            .map(|ct| ct.split(';').next().unwrap_or("").trim());
        if !mime.is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
            return Err(invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        Form::parse_body(req)
    }

    /// Parses the body whatever the Content-Type says.
    fn parse_body(req: &Request) -> Result<Form, Response> {
        parse_form(&req.body)
            .map(Form)
            .map_err(|e| invalid_request(&e))
    }

    /// One non-empty parameter; repeated parameters are an error (RFC 6749 3.2).
    fn one(&self, name: &str) -> Result<Option<&str>, Response> {
        let mut values = self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(invalid_request(&format!("Parameter {name} repeated"))),
            (Some(v), None) if !v.is_empty() => Ok(Some(v.as_str())),
            _ => Ok(None),
        }
    }
}

/// A handler's result and the grant name for the log line.
pub(crate) type Handled = (Action, Option<&'static str>);

/// Applies a pre-processing fault if one matches; on `Err` the caller
/// answers with it. `Ok` carries the raw `expires_in` override of `expires_in:RAW`.
fn apply_fault(
    shared: &Shared,
    fault: Option<&Fault>,
    endpoint: Endpoint,
) -> Result<Option<String>, Action> {
    let Some(f) = fault else {
        return Ok(None);
    };
    if let Some(action) = fault_action(f, endpoint) {
        return Err(action);
    }
    match &f.kind {
        FaultKind::Delay(ms) => {
            shared.sleep(Duration::from_millis(*ms));
            Ok(None)
        }
        FaultKind::ExpiresIn(raw) => Ok(Some(raw.clone())),
        _ => Ok(None),
    }
}

/// The configured latency, except before a hang (nothing is answered).
fn latency_unless_hang(shared: &Shared, fault: Option<&Fault>) {
    if !fault.is_some_and(|f| matches!(f.kind, FaultKind::Hang | FaultKind::ConsumeHang)) {
        shared.latency();
    }
}

/// The fault's answer, or the processed request's answer unless a
/// `consume:*` fault loses it. `process` gets the `expires_in:RAW` override.
fn answer(
    shared: &Shared,
    fault: Option<Fault>,
    endpoint: Endpoint,
    process: impl FnOnce(Option<&str>) -> Response,
) -> Action {
    let raw_expires_in = match apply_fault(shared, fault.as_ref(), endpoint) {
        Ok(raw) => raw,
        Err(action) => return action,
    };
    let resp = process(raw_expires_in.as_deref());
    fault
        .as_ref()
        .and_then(lost_answer)
        .unwrap_or(Action::Respond(resp))
}

fn grant_name(g: Option<Grant>, raw: Option<&str>) -> Option<&'static str> {
    match (g, raw) {
        (Some(Grant::ClientCredentials), _) => Some("client_credentials"),
        (Some(Grant::RefreshToken), _) => Some("refresh_token"),
        (Some(Grant::AuthorizationCode), _) => Some("authorization_code"),
        (None, Some(_)) => Some("unsupported"),
        (None, None) => None,
    }
}

/// Counts a presentation of an already used refresh token or code. Done on
/// arrival, before any fault, so every presentation counts whatever
/// happens to the request. True if counted (the grant must not count again).
fn count_reuse(st: &mut State, grant: Option<Grant>, form: &Form) -> bool {
    let used = match grant {
        Some(Grant::RefreshToken) => form.one("refresh_token").ok().flatten().is_some_and(|rt| {
            st.store
                .refresh
                .get(rt)
                .is_some_and(|t| t.state == RefreshState::Used)
        }),
        Some(Grant::AuthorizationCode) => form
            .one("code")
            .ok()
            .flatten()
            .is_some_and(|c| st.store.codes.get(c).is_some_and(|c| c.used)),
        _ => false,
    };
    match grant {
        Some(Grant::RefreshToken) if used => st.stats.refresh_reuse += 1,
        Some(Grant::AuthorizationCode) if used => st.stats.code_reuse += 1,
        _ => {}
    }
    used
}

/// Echo mode's copy of the request in error answers, if on.
fn echo_if_on(shared: &Shared, req: &Request, (action, name): Handled) -> Handled {
    if shared.lock().runtime.echo {
        (echo::apply(req, action), name)
    } else {
        (action, name)
    }
}

/// The throttle's 429 if `client` has used up its window (see [`crate::throttle`]).
fn throttled(shared: &Shared, client: &str) -> Option<Response> {
    let mut st = shared.lock();
    let limit = st.runtime.throttle?;
    let wait = st.throttle.admit(limit, client, Instant::now()).err()?;
    st.stats.throttled += 1;
    let secs = throttle::retry_after_secs(wait);
    let resp = oauth_error(
        429,
        "too_many_requests",
        &format!("Too many requests; retry after {secs} s"),
    );
    Some(resp.header("Retry-After", secs.to_string()))
}

/// `POST /api/oauth/token`
pub(crate) fn token(shared: &Shared, req: &Request) -> Handled {
    let handled = token_request(shared, req);
    gzip_if_on(shared, echo_if_on(shared, req, handled))
}

/// Gzip mode ([`crate::Config::gzip`]): the answer compressed whatever the client accepts.
fn gzip_if_on(shared: &Shared, (action, name): Handled) -> Handled {
    match action {
        Action::Respond(mut resp) if shared.config.gzip => {
            resp.body = crate::http::gzip(&resp.body);
            (
                Action::Respond(resp.header("Content-Encoding", "gzip")),
                name,
            )
        }
        other => (other, name),
    }
}

fn token_request(shared: &Shared, req: &Request) -> Handled {
    shared.lock().stats.token_requests += 1;
    if req.method != "POST" {
        return (Action::Respond(Response::method_not_allowed("POST")), None);
    }
    let _flight = InFlight::enter(shared);
    // Counters classify the request by its body even when the Content-Type
    // is wrong (the grant then fails), so they show what a client sent.
    let sent = Form::parse_body(req).ok();
    let raw_grant = sent
        .as_ref()
        .and_then(|f| f.one("grant_type").ok().flatten().map(str::to_string));
    let grant: Option<Grant> = raw_grant.as_deref().and_then(|g| g.parse().ok());
    let name = grant_name(grant, raw_grant.as_deref());
    let reuse_counted = {
        let mut st = shared.lock();
        match grant {
            Some(Grant::ClientCredentials) => st.stats.client_credentials += 1,
            Some(Grant::RefreshToken) => st.stats.refresh_token += 1,
            Some(Grant::AuthorizationCode) => st.stats.authorization_code += 1,
            None => {}
        }
        if let Some(g) = grant {
            let paths = st.stats.token_paths.entry(g.to_string()).or_default();
            *paths.entry(req.path.clone()).or_default() += 1;
        }
        sent.as_ref()
            .is_some_and(|f| count_reuse(&mut st, grant, f))
    };
    // The throttle counts per client. A code exchange names none, but the server knows whose
    // code it is: it counts for the client it was issued to (one bucket per client, the
    // strictest reading of Findity's undocumented limit).
    let client = sent.as_ref().and_then(|f| {
        f.one("client_id")
            .ok()
            .flatten()
            .map(str::to_string)
            .or_else(|| {
                let code = f.one("code").ok().flatten()?;
                shared
                    .lock()
                    .store
                    .codes
                    .get(code)
                    .map(|c| c.client.clone())
            })
    });
    if let Some(resp) = throttled(shared, client.as_deref().unwrap_or("")) {
        shared.latency();
        return (Action::Respond(resp), name);
    }
    let fault = shared.take_fault(Endpoint::Token, grant);
    latency_unless_hang(shared, fault.as_ref());
    let action = answer(shared, fault, Endpoint::Token, |raw_expires_in| {
        let form = Form::parse(req);
        match form.and_then(|f| token_grant(shared, &f, raw_expires_in, reuse_counted)) {
            Ok(r) | Err(r) => r,
        }
    });
    (action, name)
}

/// Processes a token request. `reuse_counted`: [`count_reuse`] already
/// counted this presentation of a used token or code.
fn token_grant(
    shared: &Shared,
    form: &Form,
    raw_expires_in: Option<&str>,
    reuse_counted: bool,
) -> Result<Response, Response> {
    let grant_type = form
        .one("grant_type")?
        .ok_or_else(|| invalid_request("grant_type is required"))?;
    let mut st = shared.lock();
    let issued = match grant_type {
        "client_credentials" => {
            let id = form.one("client_id")?;
            let secret = form.one("client_secret")?;
            match (id, secret) {
                (Some(id), Some(secret)) if client_ok(shared, id, Some(secret)) => issue(
                    &mut st,
                    Subject::Org {
                        client: id.to_string(),
                    },
                ),
                _ => return Err(invalid_client()),
            }
        }
        "refresh_token" => {
            let id = form
                .one("client_id")?
                .ok_or_else(|| invalid_request("client_id is required"))?;
            let rt = form
                .one("refresh_token")?
                .ok_or_else(|| invalid_request("refresh_token is required"))?;
            // The secret is optional here (Findity's docs omit it) but checked if sent.
            if !client_ok(shared, id, form.one("client_secret")?) {
                return Err(invalid_client());
            }
            let bad = || {
                oauth_error(
                    400,
                    "invalid_grant",
                    "Refresh token is invalid, used or revoked",
                )
            };
            let entry = match st.store.refresh.get_mut(rt) {
                Some(e) if e.subject.client() == id => e,
                _ => return Err(bad()),
            };
            match entry.state {
                RefreshState::Used => {
                    // Used by a concurrent request after this one arrived.
                    if !reuse_counted {
                        st.stats.refresh_reuse += 1;
                    }
                    return Err(bad());
                }
                RefreshState::Revoked => return Err(bad()),
                RefreshState::Active => {
                    entry.state = RefreshState::Used;
                    let subject = entry.subject.clone();
                    issue(&mut st, subject)
                }
            }
        }
        "authorization_code" => {
            let code = form
                .one("code")?
                .ok_or_else(|| invalid_request("code is required"))?;
            // Findity's example sends neither; if sent they must be right.
            let id = form.one("client_id")?;
            let secret = form.one("client_secret")?;
            let bad = || {
                oauth_error(
                    400,
                    "invalid_grant",
                    "Authorization code is invalid, expired or used",
                )
            };
            let entry = st.store.codes.get_mut(code).ok_or_else(bad)?;
            if let Some(secret) = secret {
                if !client_ok(shared, id.unwrap_or(&entry.client), Some(secret)) {
                    return Err(invalid_client());
                }
            }
            if id.is_some_and(|id| id != entry.client) {
                return Err(bad());
            }
            if entry.used {
                if !reuse_counted {
                    st.stats.code_reuse += 1;
                }
                return Err(bad());
            }
            if Instant::now() >= entry.expires_at {
                return Err(bad());
            }
            entry.used = true;
            let subject = Subject::User {
                client: entry.client.clone(),
                user: entry.user.clone(),
            };
            issue(&mut st, subject)
        }
        _ => {
            return Err(oauth_error(
                400,
                "unsupported_grant_type",
                "grant_type must be client_credentials, refresh_token or authorization_code",
            ))
        }
    };
    let body = token_body(&issued, st.runtime.omit_expires_in, raw_expires_in);
    Ok(Response::json(200, body))
}

/// Client id known and, if a secret is given, the secret matches.
fn client_ok(shared: &Shared, id: &str, secret: Option<&str>) -> bool {
    let found = shared.config.clients.iter().find(|(cid, _)| cid == id);
    match (found, secret) {
        (Some((_, expected)), Some(s)) => ct_eq(expected.as_bytes(), s.as_bytes()),
        (Some(_), None) => true,
        (None, Some(s)) => {
            // Same work as a real comparison, so unknown ids are not faster.
            let _ = ct_eq(b"no-such-client-secret", s.as_bytes());
            false
        }
        (None, None) => false,
    }
}

/// Whether `user_id` names a user of the emulated organization: if users
/// are configured only those, and never one listed as unknown.
fn user_known(shared: &Shared, user: &str) -> bool {
    let users = &shared.config.users;
    (users.is_empty() || users.iter().any(|u| u == user))
        && !shared
            .lock()
            .runtime
            .unknown_users
            .iter()
            .any(|u| u == user)
}

/// `POST /api/oauth/authorization-grant`
pub(crate) fn authorization_grant(shared: &Shared, req: &Request) -> Handled {
    let handled = grant_request(shared, req);
    gzip_if_on(shared, echo_if_on(shared, req, handled))
}

fn grant_request(shared: &Shared, req: &Request) -> Handled {
    shared.lock().stats.authorization_grant += 1;
    if req.method != "POST" {
        return (Action::Respond(Response::method_not_allowed("POST")), None);
    }
    let _flight = InFlight::enter(shared);
    let client = shared.lock().store.client_of(req.bearer());
    if let Some(resp) = throttled(shared, client.as_deref().unwrap_or("")) {
        shared.latency();
        return (Action::Respond(resp), None);
    }
    let fault = shared.take_fault(Endpoint::Grant, None);
    latency_unless_hang(shared, fault.as_ref());
    let action = answer(shared, fault, Endpoint::Grant, |_| {
        match grant_code(shared, req) {
            Ok(r) | Err(r) => r,
        }
    });
    (action, None)
}

fn grant_code(shared: &Shared, req: &Request) -> Result<Response, Response> {
    let client = {
        let st = shared.lock();
        match st.store.check_access(req.bearer()) {
            Ok(Subject::Org { client }) => client.clone(),
            Ok(Subject::User { .. }) => {
                return Err(invalid_token("An organization access token is required"))
            }
            Err(p) => return Err(token_problem(p)),
        }
    };
    let form = Form::parse(req)?;
    let user = form
        .one("user_id")?
        .ok_or_else(|| findity_error("INVALID_REQUEST", "user_id is required"))?;
    if !user_known(shared, user) {
        return Err(findity_error(
            "USER_NOT_FOUND",
            &format!("No user with id {user}"),
        ));
    }
    let mut st = shared.lock();
    let now = Instant::now();
    // Expired codes are dropped here so the store stays small in long runs;
    // used ones are kept to count reuse.
    st.store.codes.retain(|_, c| c.used || c.expires_at > now);
    let code = st.rng.code();
    st.store.codes.insert(
        code.clone(),
        AuthCode {
            client,
            user: user.to_string(),
            expires_at: now + CODE_LIFETIME,
            used: false,
        },
    );
    Ok(Response::json_value(
        200,
        &serde_json::json!({ "code": code }),
    ))
}

/// Any other path under `/api/`: a stand-in for the Expense/Admin API that
/// only checks the bearer token and says whom it belongs to.
pub(crate) fn resource(shared: &Shared, req: &Request) -> Handled {
    shared.lock().stats.api_requests += 1;
    let fault = shared.take_fault(Endpoint::Api, None);
    let action = answer(shared, fault, Endpoint::Api, |_| {
        match shared.lock().store.check_access(req.bearer()) {
            Ok(subject) => Response::json_value(
                200,
                &serde_json::json!({"subject": subject.label(), "path": req.path}),
            ),
            Err(_) => Response::json(401, r#"{"error":"invalid_token"}"#)
                .header("WWW-Authenticate", r#"Bearer error="invalid_token""#),
        }
    });
    (action, None)
}

/// `/_emulator/redirect-target`: where the `redirect` fault points. Answers
/// like a successful grant (with unregistered tokens) so a client that
/// follows redirects is fooled, and counts the hit so tests can tell.
pub(crate) fn redirect_target(shared: &Shared) -> Response {
    let mut st = shared.lock();
    st.stats.redirect_target_hits += 1;
    let issued = Issued {
        access: st.rng.access_token(),
        refresh: Some(st.rng.refresh_token()),
        expires_in: 3600,
    };
    Response::json(200, token_body(&issued, false, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
        // Lengths differing by a multiple of 256 must not compare equal.
        assert!(!ct_eq(&[0u8; 256], b""));
    }

    #[test]
    fn body_shapes() {
        let i = Issued {
            access: "A".into(),
            refresh: Some("r+/=".into()),
            expires_in: 60,
        };
        assert_eq!(
            token_body(&i, false, None),
            r#"{"access_token":"A","token_type":"Bearer","expires_in":60,"refresh_token":"r+/="}"#
        );
        assert_eq!(
            token_body(&i, true, None),
            r#"{"access_token":"A","token_type":"Bearer","refresh_token":"r+/="}"#
        );
        assert!(token_body(&i, true, Some("\"3600\"")).contains(r#""expires_in":"3600""#));
    }
}
