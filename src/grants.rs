//! The four Findity OAuth requests and how their answers are read.
//!
//! Each function makes exactly one request; retries and fallbacks are the cache's business.
//! `Error::retryable` is true only where sending the same request again is allowed:
//! single-use grants (refresh token, authorization code) that may have arrived are never replayed.

use crate::base_url::BaseUrl;
use crate::error::{sanitize_server_text, Delivery, Error, Status};
use crate::http::{Answer, Http};
use crate::refresh::RefreshToken;
use crate::secret::Secret;
use crate::token::{Token, DEFAULT_LIFETIME, MAX_LIFETIME};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Longest token or code accepted; Findity's are ~128 characters, JWTs a few KiB.
const MAX_TOKEN_LEN: usize = 16 * 1024;

pub fn client_credentials(
    http: &Http,
    base: &BaseUrl,
    client_id: &str,
    secret: &Secret,
    deadline: Instant,
) -> Result<Token, Error> {
    let form = encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret.expose()),
    ]);
    let url = base.token_url(true);
    token_request(http, &url, &form, true, deadline, &[secret.expose()])
        .map_err(|e| e.context(&format!("client_credentials grant at {url}")))
        .map_err(|e| e.redact(&[secret.expose()]))
}

/// Send `refresh_token` (consumed: see crate::refresh). On failure it comes back with the
/// error only if the server did not process it: it never left this process, or the answer was
/// 429 (throttled, not processed). Anything else burnt it: refused, or sent with no answer.
pub fn refresh(
    http: &Http,
    base: &BaseUrl,
    client_id: &str,
    refresh_token: RefreshToken,
    deadline: Instant,
) -> Result<Token, (Error, Option<RefreshToken>)> {
    let form = encode(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", refresh_token.expose()),
    ]);
    let url = base.token_url(true);
    token_request(
        http,
        &url,
        &form,
        false,
        deadline,
        &[refresh_token.expose()],
    )
    .map_err(|e| e.context(&format!("refresh_token grant at {url}")))
    .map_err(|e| e.redact(&[refresh_token.expose()]))
    .map_err(|e| {
        let unsent = e.delivery == Delivery::NotSent
            || (e.delivery == Delivery::Answered && e.http_status == 429);
        (e, unsent.then_some(refresh_token))
    })
}

/// Ask for a single-use code that lets the organization act as one user.
pub fn authorization_grant(
    http: &Http,
    base: &BaseUrl,
    org_token: &Secret,
    user_id: &str,
    deadline: Instant,
) -> Result<Secret, Error> {
    let form = encode(&[("user_id", user_id)]);
    let url = base.authorization_grant_url();
    let what = format!("authorization grant for user \"{user_id}\" at {url}");
    let result = (|| {
        let answer = http.post_form(&url, &form, Some(org_token), deadline)?;
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(&answer, true, &[org_token.expose()]));
        }
        let code = parse_code(&answer.body).map_err(|why| bad_answer(&answer, why))?;
        Ok(code)
    })();
    result
        .map_err(|e| e.context(&what))
        .map_err(|e| e.redact(&[org_token.expose()]))
}

pub fn exchange_code(
    http: &Http,
    base: &BaseUrl,
    code: &Secret,
    deadline: Instant,
) -> Result<Token, Error> {
    let form = encode(&[
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
    ]);
    let url = base.token_url(false);
    token_request(http, &url, &form, false, deadline, &[code.expose()])
        .map_err(|e| e.context(&format!("authorization_code exchange at {url}")))
        .map_err(|e| e.redact(&[code.expose()]))
}

fn encode(pairs: &[(&str, &str)]) -> Secret {
    // Sized for the worst case (every byte percent-encoded), so the String never grows: growing
    // would free a copy of the secret unwiped.
    let size = pairs.iter().map(|(k, v)| 3 * (k.len() + v.len()) + 2).sum();
    let mut s = url::form_urlencoded::Serializer::new(String::with_capacity(size));
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    Secret::new(s.finish())
}

/// `secrets`: what this request carries, redacted from the server's text before it is trimmed.
fn token_request(
    http: &Http,
    url: &str,
    form: &Secret,
    replayable: bool,
    deadline: Instant,
    secrets: &[&str],
) -> Result<Token, Error> {
    // Before sending: the server's clock for expires_in starts after this.
    let issued_at = crate::token::now();
    let answer = http.post_form(url, form, None, deadline).map_err(|mut e| {
        e.retryable &= replayable || e.delivery == Delivery::NotSent;
        e
    })?;
    if !(200..300).contains(&answer.status) {
        return Err(answer_error(&answer, replayable, secrets));
    }
    parse_token(&answer.body, issued_at).map_err(|why| bad_answer(&answer, why))
}

/// A 2xx answer that cannot be used. Its body is never quoted: it may hold a token.
fn bad_answer(answer: &Answer, why: String) -> Error {
    let why = match (&answer.undecodable, answer.content_encoding.as_str()) {
        (Some(undecodable), _) => format!("a body with {undecodable}"),
        (None, "") => why,
        (None, enc) => format!("{why} (after decoding Content-Encoding \"{enc}\")"),
    };
    let mut e = Error::new(
        Status::Server,
        format!("HTTP {} answer unusable: {why}", answer.status),
    );
    e.http_status = answer.status;
    e.delivery = Delivery::Answered;
    e
}

/// Turn a non-2xx answer into an error that says what the server said and what to do.
fn answer_error(answer: &Answer, replayable: bool, secrets: &[&str]) -> Error {
    let status = answer.status;
    let (code, description) = error_details(answer, secrets);
    let refused = matches!(status, 400 | 401 | 403);
    let mut msg = format!("HTTP {status}");
    if let Some(c) = &code {
        msg.push_str(&format!(" {c}"));
    }
    if let Some(d) = &description {
        msg.push_str(&format!(": {d}"));
    }
    let hint = match (status, code.as_deref().unwrap_or("")) {
        (300..=399, _) => " (redirects are not followed for token requests; check base_url)",
        (_, "invalid_client" | "unauthorized_client") => " (check client_id and client_secret)",
        (_, c) if c.to_ascii_uppercase().contains("USER") => {
            " (check user_id: a Findity person id or ExternalSourceID)"
        }
        (_, "invalid_token") => " (the organization token was refused)",
        (404, _) => " (check base_url)",
        // What was waited for, or why not, is added by the retry loop (crate::source).
        (429, _) => " (rate limited)",
        _ => "",
    };
    msg.push_str(hint);
    let mut e = Error::new(
        if refused {
            Status::Auth
        } else {
            Status::Server
        },
        msg,
    );
    e.http_status = status;
    e.oauth_error = code;
    e.delivery = Delivery::Answered;
    // A 429 was not acted on (the server throttled it), so even a single-use grant may be
    // sent again once the pause is over.
    e.retryable = status == 429 || (replayable && (status == 408 || status >= 500));
    e.retry_after = answer.retry_after;
    e
}

/// RFC 6749 `error`/`error_description`, Findity's `code`/`description`, or text; secrets are
/// redacted before the text is trimmed, so none can straddle the cut.
fn error_details(answer: &Answer, secrets: &[&str]) -> (Option<String>, Option<String>) {
    use crate::error::redact_text;
    if let Some(why) = &answer.undecodable {
        return (None, Some(format!("a body with {why}")));
    }
    let parsed = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .map(Wiped);
    if let Some(Wiped(Value::Object(obj))) = &parsed {
        let field = |names: &[&str]| {
            names.iter().find_map(|n| match obj.get(*n) {
                Some(Value::String(s)) if !s.is_empty() => {
                    Some(sanitize_server_text(&redact_text(s, secrets), 200))
                }
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
        };
        return (
            field(&["error", "code"]),
            field(&["error_description", "description", "message"]),
        );
    }
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&answer.body).into_owned());
    let trimmed = text.trim_start();
    if answer.content_type.contains("html") || trimmed.starts_with('<') {
        return (None, Some("an HTML page instead of an OAuth answer".into()));
    }
    if trimmed.is_empty() {
        return (None, None);
    }
    (
        None,
        Some(sanitize_server_text(&redact_text(trimmed, secrets), 200)),
    )
}

/// Read a token answer. Public for fuzzing.
pub fn parse_token(body: &[u8], issued_at: Instant) -> Result<Token, String> {
    let v = Wiped(serde_json::from_slice(body).map_err(|_| "not JSON".to_string())?);
    let obj = v.0.as_object().ok_or("not a JSON object")?;
    let access =
        checked_token(obj.get("access_token"), "access_token")?.ok_or("no access_token")?;
    if let Some(tt) = obj.get("token_type") {
        match tt {
            Value::String(s) if s.eq_ignore_ascii_case("bearer") => {}
            Value::Null => {}
            _ => return Err("token_type is not Bearer".into()),
        }
    }
    let refresh = checked_token(obj.get("refresh_token"), "refresh_token")?.map(RefreshToken::new);
    let lifetime = parse_expires_in(obj.get("expires_in"))?;
    Ok(Token::new(access, refresh, issued_at, lifetime))
}

pub fn parse_code(body: &[u8]) -> Result<Secret, String> {
    let v = Wiped(serde_json::from_slice(body).map_err(|_| "not JSON".to_string())?);
    let obj = v.0.as_object().ok_or("not a JSON object")?;
    checked_token(obj.get("code"), "code")?.ok_or_else(|| "no code".into())
}

/// A parsed answer whose strings (tokens, codes, keys) are wiped when it is dropped.
struct Wiped(Value);

impl Drop for Wiped {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => {
            for (mut k, mut v) in std::mem::take(map) {
                k.zeroize();
                wipe(&mut v);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Tokens end up in HTTP headers built by callers: only visible ASCII is let through,
/// so a hostile server cannot inject header lines into a connector.
fn checked_token(v: Option<&Value>, name: &str) -> Result<Option<Secret>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > MAX_TOKEN_LEN {
                Err(format!("{name} is longer than {MAX_TOKEN_LEN} bytes"))
            } else if !s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                Err(format!("{name} holds characters not allowed in a header"))
            } else {
                Ok(Some(Secret::new(s.as_str())))
            }
        }
        Some(_) => Err(format!("{name} is not a string")),
    }
}

/// `expires_in` in seconds: a number or numeric string. Missing means 300 s, never "forever";
/// less than 1 s is refused (such a token can't be handed out); huge values are capped.
pub fn parse_expires_in(v: Option<&Value>) -> Result<Duration, String> {
    let secs = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_LIFETIME),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match secs {
        // Below a second is no usable lifetime (and would round to zero).
        Some(s) if s.is_finite() && s >= 1.0 => {
            Ok(Duration::from_secs_f64(s.min(MAX_LIFETIME.as_secs_f64())))
        }
        Some(s) if s.is_finite() => {
            Err(format!("expires_in is {s}, not a lifetime of 1 s or more"))
        }
        _ => Err("expires_in is not a number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Token, String> {
        parse_token(v.to_string().as_bytes(), Instant::now())
    }

    #[test]
    fn reads_findity_answer() {
        let t = parse(json!({"access_token":"RsT5","token_type":"Bearer","expires_in":3600,"refresh_token":"9MX+/="})).unwrap();
        assert_eq!(t.access.expose(), "RsT5");
        assert!(t.refresh.unwrap().ct_eq("9MX+/="));
        assert_eq!(t.lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn missing_refresh_token_and_expires_in_are_normal() {
        let t = parse(json!({"access_token":"a.b.c"})).unwrap();
        assert!(t.refresh.is_none());
        assert_eq!(t.lifetime, DEFAULT_LIFETIME);
    }

    #[test]
    fn expires_in_forms() {
        let p = |v: Value| parse_expires_in(Some(&v));
        assert_eq!(p(json!("60")).unwrap(), Duration::from_secs(60));
        assert_eq!(p(json!(1.5)).unwrap(), Duration::from_millis(1500));
        assert_eq!(p(json!(1e300)).unwrap(), MAX_LIFETIME);
        assert!(p(json!(0)).is_err());
        assert!(p(json!(5e-324)).is_err(), "rounds to zero");
        assert!(p(json!(0.5)).is_err());
        assert!(p(json!(-5)).is_err());
        assert!(p(json!("soon")).is_err());
        assert!(p(json!([1])).is_err());
    }

    #[test]
    fn refuses_unusable_answers() {
        assert!(parse_token(b"{\"access_token\": \"abc", Instant::now()).is_err());
        assert!(parse(json!({"token_type":"Bearer"}))
            .unwrap_err()
            .contains("no access_token"));
        assert!(parse(json!({"access_token":"a\r\nX-Evil: 1"})).is_err());
        assert!(parse(json!({"access_token":1})).is_err());
        assert!(parse(json!({"access_token":"a","token_type":"mac"})).is_err());
        assert!(parse(json!([1, 2])).is_err());
    }

    fn answer(status: u16, ct: &str, body: &str) -> Answer {
        Answer {
            status,
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
            content_type: ct.into(),
            retry_after: None,
            content_encoding: String::new(),
            undecodable: None,
        }
    }

    #[test]
    fn an_undecodable_answer_names_its_content_encoding() {
        let mut a = answer(200, "application/json", "\u{b}\u{2}garbage");
        a.content_encoding = "br".into();
        a.undecodable = Some("Content-Encoding \"br\", which libfindity cannot decode".into());
        let e = bad_answer(&a, "not JSON".into());
        assert!(
            e.message
                .starts_with("HTTP 200 answer unusable: a body with Content-Encoding \"br\""),
            "{}",
            e.message
        );
        let mut a = answer(503, "text/plain", "\u{b}\u{2}garbage");
        a.undecodable = Some("Content-Encoding \"br\", which libfindity cannot decode".into());
        let e = answer_error(&a, true, &[]);
        assert!(
            e.message.contains("Content-Encoding \"br\""),
            "{}",
            e.message
        );
        assert!(e.retryable, "still a 503");
        // Decoded but still no JSON: the coding is named too.
        let mut a = answer(200, "application/json", "<html>");
        a.content_encoding = "gzip".into();
        let e = bad_answer(&a, "not JSON".into());
        assert!(e
            .message
            .contains("not JSON (after decoding Content-Encoding \"gzip\")"));
    }

    #[test]
    fn parsed_answers_are_wiped() {
        let mut v: Value = serde_json::from_str(
            r#"{"access_token":"secret-token","nested":[{"refresh_token":"rt"}]}"#,
        )
        .unwrap();
        wipe(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("secret-token") && !text.contains("rt\""),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_redacted_before_trimming() {
        let secret = "SECRET-0123456789";
        let description = format!("{}{secret} and 9MX%2B{}", "x".repeat(190), "y".repeat(50));
        let body = serde_json::json!({"error": "invalid_client", "error_description": description});
        let e = answer_error(
            &answer(401, "application/json", &body.to_string()),
            true,
            &[secret],
        );
        assert!(
            !e.message.contains("SECRET-0"),
            "a prefix survived the cut: {}",
            e.message
        );
        assert!(e.message.contains("[redacted]"), "{}", e.message);
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let e = answer_error(
            &answer(
                401,
                "application/json",
                r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
            ),
            true,
            &[],
        );
        assert_eq!(e.status, Status::Auth);
        assert_eq!(e.oauth_error.as_deref(), Some("invalid_client"));
        assert!(e
            .message
            .contains("HTTP 401 invalid_client: Client authentication failed"));
        assert!(e.message.contains("check client_id"));
        assert!(!e.retryable);

        let e = answer_error(
            &answer(
                400,
                "application/json",
                r#"{"code":"USER_NOT_FOUND","description":"No user with id x"}"#,
            ),
            true,
            &[],
        );
        assert!(
            e.message.contains("USER_NOT_FOUND: No user with id x"),
            "{}",
            e.message
        );
        assert!(e.message.contains("check user_id"));

        let e = answer_error(
            &answer(502, "text/html", "<html><body>Bad gateway</body></html>"),
            true,
            &[],
        );
        assert_eq!(e.status, Status::Server);
        assert!(e.message.contains("HTML page"));
        assert!(e.retryable);

        let e = answer_error(
            &answer(503, "text/plain", "down\r\nfor maintenance"),
            false,
            &[],
        );
        assert!(e.message.contains("down for maintenance"));
        assert!(!e.retryable, "a single-use grant is never replayed");

        let e = answer_error(&answer(302, "", ""), true, &[]);
        assert!(e.message.contains("redirects are not followed"));
    }
}
