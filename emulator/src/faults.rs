//! Fault injection: what can go wrong, which requests it hits, and the
//! answer (or non-answer) it produces.
//!
//! The same strings are parsed for the control API and the Rust API
//! (`Fault::parse`), so both go through one code path.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use crate::http::Response;

/// Which endpoint a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /api/oauth/token`
    Token,
    /// `POST /api/oauth/authorization-grant`
    Grant,
    /// Resource API: any other path under `/api/`.
    Api,
    /// All of the above.
    Any,
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "token" => Ok(Endpoint::Token),
            "grant" | "authorization-grant" | "authorization_grant" => Ok(Endpoint::Grant),
            "api" => Ok(Endpoint::Api),
            "any" => Ok(Endpoint::Any),
            _ => Err(format!("unknown endpoint {s:?} (token|grant|api|any)")),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Token => "token",
            Endpoint::Grant => "grant",
            Endpoint::Api => "api",
            Endpoint::Any => "any",
        })
    }
}

/// Grant types of the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials,
    RefreshToken,
    AuthorizationCode,
}

impl FromStr for Grant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client_credentials" => Ok(Grant::ClientCredentials),
            "refresh_token" => Ok(Grant::RefreshToken),
            "authorization_code" => Ok(Grant::AuthorizationCode),
            _ => Err(format!(
                "unknown grant {s:?} (client_credentials|refresh_token|authorization_code)"
            )),
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken => "refresh_token",
            Grant::AuthorizationCode => "authorization_code",
        })
    }
}

/// What the emulator does instead of (or on top of) its normal answer.
///
/// Most kinds act *before* the request is processed, so nothing is used up.
/// The `consume:*` kinds act *after*: the grant is processed exactly as
/// without a fault (a refresh token or code is marked used, new tokens or a
/// new code are issued and stored, counters move), then its answer is lost.
/// If the grant itself fails (e.g. the refresh token was already used) the
/// lost answer is still what the client gets; only what the grant logic
/// used up or counted is used up or counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `status:CODE`: that status with an OAuth error JSON body.
    Status(u16),
    /// `429`: Too Many Requests (with `Retry-After` if `retry_after` is set).
    TooManyRequests,
    /// `hang`: read the request, never answer, hold the connection.
    Hang,
    /// `reset`: write part of a response head, then TCP RST.
    Reset,
    /// `close`: read the request, close without answering.
    Close,
    /// `malformed`: 200 with a truncated JSON body.
    Malformed,
    /// `no_access_token`: 200 JSON without `access_token`.
    NoAccessToken,
    /// `expires_in:RAW`: normal success, `expires_in` replaced by raw JSON text.
    ExpiresIn(String),
    /// `huge`: 200 with a 10 MiB body.
    Huge,
    /// `redirect`: 302 to `/_emulator/redirect-target`.
    Redirect,
    /// `html`: 502 with an HTML page.
    Html,
    /// `text`: 500 with a plain-text body.
    Text,
    /// `invalid_grant`: 400 invalid_grant.
    InvalidGrant,
    /// `delay:MS`: wait, then answer normally.
    Delay(u64),
    /// `consume:reset`: process the request, then answer like `reset`.
    ConsumeReset,
    /// `consume:close`: process the request, then close without answering.
    ConsumeClose,
    /// `consume:hang`: process the request, then never answer.
    ConsumeHang,
    /// `consume:status:CODE` (400..=599): process the request, then answer
    /// that status with a `server_error` JSON body.
    ConsumeStatus(u16),
}

impl FaultKind {
    /// Whether the request is processed before the fault's answer replaces it.
    pub fn consumes(&self) -> bool {
        matches!(
            self,
            FaultKind::ConsumeReset
                | FaultKind::ConsumeClose
                | FaultKind::ConsumeHang
                | FaultKind::ConsumeStatus(_)
        )
    }
}

fn parse_code(code: &str, allowed: std::ops::RangeInclusive<u16>) -> Result<u16, String> {
    let c: u16 = code
        .trim()
        .parse()
        .map_err(|_| format!("bad status code {code:?}"))?;
    // 1xx/204/304 cannot carry the body the fault promises.
    if !allowed.contains(&c) || c == 204 || c == 304 {
        return Err(format!(
            "status code {c} not allowed ({}..={}, not 204/304)",
            allowed.start(),
            allowed.end()
        ));
    }
    Ok(c)
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let need = |what: &str| format!("fault kind {name:?} needs an argument: {name}:{what}");
        let kind = match (name, arg) {
            ("status", Some(code)) => {
                let code = parse_code(code, 200..=599)?;
                if code == 429 {
                    FaultKind::TooManyRequests
                } else {
                    FaultKind::Status(code)
                }
            }
            ("status", None) => return Err(need("CODE")),
            ("429" | "too_many_requests", None) => FaultKind::TooManyRequests,
            ("hang", None) => FaultKind::Hang,
            ("reset", None) => FaultKind::Reset,
            ("close", None) => FaultKind::Close,
            ("malformed", None) => FaultKind::Malformed,
            ("no_access_token", None) => FaultKind::NoAccessToken,
            ("expires_in", Some(raw)) if !raw.trim().is_empty() => {
                FaultKind::ExpiresIn(raw.trim().to_string())
            }
            ("expires_in", _) => return Err(need("RAW_JSON")),
            ("huge", None) => FaultKind::Huge,
            ("redirect", None) => FaultKind::Redirect,
            ("html", None) => FaultKind::Html,
            ("text", None) => FaultKind::Text,
            ("invalid_grant", None) => FaultKind::InvalidGrant,
            ("delay", Some(ms)) => FaultKind::Delay(
                ms.trim()
                    .parse()
                    .map_err(|_| format!("bad delay {ms:?} (milliseconds)"))?,
            ),
            ("delay", None) => return Err(need("MS")),
            // A lost answer is an error or no answer at all.
            ("consume", Some(lost)) => match lost.trim().split_once(':') {
                Some(("status", code)) => FaultKind::ConsumeStatus(parse_code(code, 400..=599)?),
                None if lost.trim() == "reset" => FaultKind::ConsumeReset,
                None if lost.trim() == "close" => FaultKind::ConsumeClose,
                None if lost.trim() == "hang" => FaultKind::ConsumeHang,
                _ => {
                    return Err(format!(
                        "unknown fault kind {s:?} (consume:reset|close|hang|status:CODE)"
                    ))
                }
            },
            ("consume", None) => return Err(need("reset|close|hang|status:CODE")),
            _ => return Err(format!("unknown fault kind {s:?}")),
        };
        Ok(kind)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Status(c) => write!(f, "status:{c}"),
            FaultKind::TooManyRequests => f.write_str("429"),
            FaultKind::Hang => f.write_str("hang"),
            FaultKind::Reset => f.write_str("reset"),
            FaultKind::Close => f.write_str("close"),
            FaultKind::Malformed => f.write_str("malformed"),
            FaultKind::NoAccessToken => f.write_str("no_access_token"),
            FaultKind::ExpiresIn(raw) => write!(f, "expires_in:{raw}"),
            FaultKind::Huge => f.write_str("huge"),
            FaultKind::Redirect => f.write_str("redirect"),
            FaultKind::Html => f.write_str("html"),
            FaultKind::Text => f.write_str("text"),
            FaultKind::InvalidGrant => f.write_str("invalid_grant"),
            FaultKind::Delay(ms) => write!(f, "delay:{ms}"),
            FaultKind::ConsumeReset => f.write_str("consume:reset"),
            FaultKind::ConsumeClose => f.write_str("consume:close"),
            FaultKind::ConsumeHang => f.write_str("consume:hang"),
            FaultKind::ConsumeStatus(c) => write!(f, "consume:status:{c}"),
        }
    }
}

/// One queued fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub endpoint: Endpoint,
    /// Only token requests with this grant_type match (token endpoint only).
    pub grant: Option<Grant>,
    /// Number of matching requests it applies to; 0 = until cleared.
    pub count: u32,
    /// Applies to every `every`th matching request that reaches it (the Nth, 2Nth, ...); the
    /// requests in between pass it by, to a later fault in the queue or the normal answer.
    /// 1 (the default): every matching request. Faults are injected per request, never per
    /// unit of time, so a client sees the same share of faults however fast it asks.
    pub every: u32,
    pub kind: FaultKind,
    /// `Retry-After` seconds for `429`, `status:CODE` and `consume:status:CODE` answers.
    pub retry_after: Option<u64>,
}

impl Fault {
    /// A fault for the next matching request.
    pub fn new(endpoint: Endpoint, kind: FaultKind) -> Fault {
        Fault {
            endpoint,
            grant: None,
            count: 1,
            every: 1,
            kind,
            retry_after: None,
        }
    }

    /// Parses the control API's strings, e.g. `Fault::parse("token", "status:503", 2)`.
    pub fn parse(endpoint: &str, kind: &str, count: u32) -> Result<Fault, String> {
        Ok(Fault::new(endpoint.parse()?, kind.parse()?).count(count))
    }

    /// Builds a fault from control API parameters
    /// (`endpoint`, `grant`, `count`, `every`, `kind`, `retry_after`).
    pub fn from_params<'a, I>(params: I) -> Result<Fault, String>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (mut endpoint, mut grant, mut count, mut every, mut kind, mut retry_after) =
            (Endpoint::Token, None, 1u32, 1u32, None, None);
        for (name, value) in params {
            match name {
                "endpoint" => endpoint = value.parse()?,
                "grant" | "grant_type" => grant = Some(value.parse()?),
                "count" => count = value.parse().map_err(|_| format!("bad count {value:?}"))?,
                "every" => {
                    every = value
                        .parse()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| format!("bad every {value:?} (1 or more)"))?
                }
                "kind" => kind = Some(value.parse::<FaultKind>()?),
                "retry_after" => {
                    retry_after = Some(
                        value
                            .parse()
                            .map_err(|_| format!("bad retry_after {value:?} (seconds)"))?,
                    )
                }
                _ => return Err(format!("unknown parameter {name:?}")),
            }
        }
        let kind = kind.ok_or("missing parameter kind")?;
        if grant.is_some() && !matches!(endpoint, Endpoint::Token | Endpoint::Any) {
            return Err("grant filter only applies to the token endpoint".into());
        }
        Ok(Fault {
            endpoint,
            grant,
            count,
            every,
            kind,
            retry_after,
        })
    }

    /// Applies to the next `n` matching requests (0 = until cleared).
    pub fn count(mut self, n: u32) -> Fault {
        self.count = n;
        self
    }

    /// Applies to every `n`th matching request only (`n` >= 1; 0 is taken as 1): with
    /// `count(0)`, a steady share of faults however many requests come, and however fast.
    pub fn every(mut self, n: u32) -> Fault {
        self.every = n.max(1);
        self
    }

    /// Only token requests with this grant type match.
    pub fn grant(mut self, grant: Grant) -> Fault {
        self.grant = Some(grant);
        self
    }

    /// Adds `Retry-After: secs` to `429` / `status:CODE` answers.
    pub fn retry_after(mut self, secs: u64) -> Fault {
        self.retry_after = Some(secs);
        self
    }

    fn matches(&self, endpoint: Endpoint, grant: Option<Grant>) -> bool {
        (self.endpoint == Endpoint::Any || self.endpoint == endpoint)
            && match self.grant {
                None => true,
                Some(g) => endpoint == Endpoint::Token && grant == Some(g),
            }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.endpoint.to_string(),
            "grant": self.grant.map(|g| g.to_string()),
            "count": self.count,
            "every": self.every,
            "kind": self.kind.to_string(),
            "retry_after": self.retry_after,
        })
    }
}

/// FIFO of faults; the first matching one whose turn it is (see [`Fault::every`]) is used.
/// Each fault is queued with the number of matching requests that have reached it.
#[derive(Default)]
pub(crate) struct FaultQueue {
    items: VecDeque<(Fault, u64)>,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, f: Fault) {
        self.items.push_back((f, 0));
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.items.iter().map(|(f, _)| f.clone()).collect()
    }

    /// Takes one use of the first fault matching this request whose turn it is: a fault with
    /// `every` N counts the matching requests that reach it and applies to each Nth.
    pub(crate) fn take(&mut self, endpoint: Endpoint, grant: Option<Grant>) -> Option<Fault> {
        let i = self.items.iter_mut().position(|(f, seen)| {
            if !f.matches(endpoint, grant) {
                return false;
            }
            *seen += 1;
            *seen % u64::from(f.every.max(1)) == 0
        })?;
        let f = &mut self.items[i].0;
        if f.count == 0 {
            return Some(f.clone());
        }
        f.count -= 1;
        if f.count == 0 {
            self.items.remove(i).map(|(f, _)| f)
        } else {
            Some(f.clone())
        }
    }
}

/// What the connection handler does with a request.
pub(crate) enum Action {
    Respond(Response),
    Hang,
    Reset,
    Close,
}

/// Size of the `huge` body.
pub(crate) const HUGE_BODY: usize = 10 * 1024 * 1024;

fn with_retry_after(f: &Fault, r: Response) -> Response {
    match f.retry_after {
        Some(s) => r.header("Retry-After", s.to_string()),
        None => r,
    }
}

/// The answer that replaces a processed request's answer (`consume:*`),
/// or `None` for every other kind.
pub(crate) fn lost_answer(f: &Fault) -> Option<Action> {
    Some(match f.kind {
        FaultKind::ConsumeReset => Action::Reset,
        FaultKind::ConsumeClose => Action::Close,
        FaultKind::ConsumeHang => Action::Hang,
        FaultKind::ConsumeStatus(code) => {
            let body =
                serde_json::json!({"error": "server_error", "error_description": "injected fault"});
            Action::Respond(with_retry_after(f, Response::json_value(code, &body)))
        }
        _ => return None,
    })
}

/// The answer a fault produces at `endpoint` before any processing, or
/// `None` for faults that modify the normal answer (`expires_in:RAW`,
/// `delay:MS`) or replace it afterwards (`consume:*`).
pub(crate) fn fault_action(f: &Fault, endpoint: Endpoint) -> Option<Action> {
    let retry = |r: Response| with_retry_after(f, r);
    let action = match &f.kind {
        FaultKind::Status(code) => {
            let error = match (code, endpoint) {
                (401, Endpoint::Api) => "invalid_token",
                (401, _) => "invalid_client",
                (400, _) => "invalid_request",
                _ => "server_error",
            };
            let body = serde_json::json!({"error": error, "error_description": "injected fault"});
            let mut r = Response::json_value(*code, &body);
            if *code == 401 && endpoint == Endpoint::Api {
                r = r.header("WWW-Authenticate", r#"Bearer error="invalid_token""#);
            }
            Action::Respond(retry(r))
        }
        FaultKind::TooManyRequests => Action::Respond(retry(Response::json(
            429,
            r#"{"error":"too_many_requests","error_description":"injected fault"}"#,
        ))),
        FaultKind::Hang => Action::Hang,
        FaultKind::Reset => Action::Reset,
        FaultKind::Close => Action::Close,
        FaultKind::Malformed => Action::Respond(Response::json(
            200,
            match endpoint {
                Endpoint::Grant => r#"{"code": "abc"#,
                Endpoint::Api => r#"{"subject": "abc"#,
                _ => r#"{"access_token": "abc"#,
            },
        )),
        FaultKind::NoAccessToken => Action::Respond(Response::json(
            200,
            r#"{"token_type":"Bearer","expires_in":3600}"#,
        )),
        FaultKind::Huge => {
            // Valid JSON if read to the end, so only a size cap protects a client.
            let head = br#"{"access_token":""#;
            let tail = br#"","token_type":"Bearer","expires_in":3600}"#;
            let mut body = Vec::with_capacity(HUGE_BODY);
            body.extend_from_slice(head);
            body.resize(HUGE_BODY - tail.len(), b'A');
            body.extend_from_slice(tail);
            Action::Respond(Response::json(200, body))
        }
        FaultKind::Redirect => Action::Respond(
            Response::json(302, "").header("Location", "/_emulator/redirect-target"),
        ),
        FaultKind::Html => Action::Respond(Response::new(
            502,
            "text/html; charset=utf-8",
            "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
             <body><h1>502 Bad Gateway</h1><p>injected fault</p></body></html>\n",
        )),
        FaultKind::Text => Action::Respond(Response::new(
            500,
            "text/plain; charset=utf-8",
            "Internal Server Error: injected fault\n",
        )),
        FaultKind::InvalidGrant => Action::Respond(Response::json(
            400,
            r#"{"error":"invalid_grant","error_description":"injected"}"#,
        )),
        FaultKind::ExpiresIn(_)
        | FaultKind::Delay(_)
        | FaultKind::ConsumeReset
        | FaultKind::ConsumeClose
        | FaultKind::ConsumeHang
        | FaultKind::ConsumeStatus(_) => return None,
    };
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_kinds() {
        for s in [
            "status:503",
            "429",
            "hang",
            "reset",
            "close",
            "malformed",
            "no_access_token",
            "expires_in:-5",
            "expires_in:\"3600\"",
            "huge",
            "redirect",
            "html",
            "text",
            "invalid_grant",
            "delay:100",
            "consume:reset",
            "consume:close",
            "consume:hang",
            "consume:status:502",
        ] {
            let k: FaultKind = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        assert_eq!(
            "status:429".parse::<FaultKind>(),
            Ok(FaultKind::TooManyRequests)
        );
        assert!("status:99".parse::<FaultKind>().is_err());
        assert!("status".parse::<FaultKind>().is_err());
        assert!("bogus".parse::<FaultKind>().is_err());
        assert!("hang:1".parse::<FaultKind>().is_err());
        assert!("consume".parse::<FaultKind>().is_err());
        assert!("consume:malformed".parse::<FaultKind>().is_err());
        assert!("consume:status:200".parse::<FaultKind>().is_err());
        assert!("consume:status".parse::<FaultKind>().is_err());
        assert!("consume:hang".parse::<FaultKind>().unwrap().consumes());
        assert!(!"hang".parse::<FaultKind>().unwrap().consumes());
    }

    #[test]
    fn fifo_and_counts() {
        let mut q = FaultQueue::default();
        q.push(
            Fault::parse("token", "status:500", 2)
                .unwrap()
                .grant(Grant::RefreshToken),
        );
        q.push(Fault::parse("any", "hang", 1).unwrap());
        q.push(Fault::parse("api", "text", 0).unwrap());
        let t = q
            .take(Endpoint::Token, Some(Grant::ClientCredentials))
            .unwrap();
        assert_eq!(t.kind, FaultKind::Hang);
        assert_eq!(
            q.take(Endpoint::Token, Some(Grant::RefreshToken))
                .unwrap()
                .kind,
            FaultKind::Status(500)
        );
        assert_eq!(
            q.take(Endpoint::Token, Some(Grant::RefreshToken))
                .unwrap()
                .kind,
            FaultKind::Status(500)
        );
        assert!(q.take(Endpoint::Token, Some(Grant::RefreshToken)).is_none());
        for _ in 0..3 {
            assert_eq!(q.take(Endpoint::Api, None).unwrap().kind, FaultKind::Text);
        }
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn every_nth_matching_request() {
        let mut q = FaultQueue::default();
        // Every 3rd refresh request, forever; behind it every 2nd token request, twice.
        q.push(
            Fault::parse("token", "reset", 0)
                .unwrap()
                .grant(Grant::RefreshToken)
                .every(3),
        );
        q.push(Fault::parse("token", "status:503", 2).unwrap().every(2));
        let refresh = Some(Grant::RefreshToken);
        let cc = Some(Grant::ClientCredentials);
        let mut got = Vec::new();
        for i in 0..12 {
            let g = if i % 2 == 0 { refresh } else { cc };
            got.push(q.take(Endpoint::Token, g).map(|f| f.kind.to_string()));
        }
        // Refresh requests are the 1st, 3rd, ...: the reset hits the 3rd and 6th refresh
        // request; the 503 the 2nd and 4th token request reaching it (refresh requests the
        // reset passed by count too), then it is used up.
        let want = [
            None,
            Some("status:503"),
            None,
            Some("status:503"),
            Some("reset"),
            None,
            None,
            None,
            None,
            None,
            Some("reset"),
            None,
        ];
        assert_eq!(got, want.map(|k| k.map(String::from)));
        assert_eq!(q.len(), 1);
        assert!(Fault::from_params([("kind", "429"), ("every", "0")]).is_err());
        assert_eq!(
            Fault::from_params([("kind", "429"), ("every", "4")])
                .unwrap()
                .every,
            4
        );
        assert_eq!(Fault::new(Endpoint::Api, FaultKind::Hang).every(0).every, 1);
    }

    #[test]
    fn params() {
        let f = Fault::from_params([
            ("kind", "429"),
            ("retry_after", "7"),
            ("grant", "refresh_token"),
        ])
        .unwrap();
        assert_eq!(f.retry_after, Some(7));
        assert_eq!(f.endpoint, Endpoint::Token);
        assert!(Fault::from_params([("kind", "429"), ("bogus", "1")]).is_err());
        assert!(Fault::from_params([("endpoint", "api")]).is_err());
    }
}
