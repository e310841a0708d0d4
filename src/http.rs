//! The HTTP client: rustls only, certificate checks always on, no redirects, bounded bodies,
//! every request inside the caller's deadline. Failures are classified by whether the request
//! may have reached the server, because that decides whether a single-use grant is burnt.

use crate::config::Options;
use crate::error::{Delivery, Error, Status};
use crate::secret::Secret;
use reqwest::blocking::Client;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

/// Largest answer read; token answers are a few hundred bytes.
pub const MAX_BODY: u64 = 1 << 20;

/// Loopback never goes through a proxy: the emulator and local test servers live there.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

pub struct Http {
    client: Client,
}

/// An HTTP answer of any status; the grant layer decides what it means.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub retry_after: Option<Duration>,
}

impl Http {
    pub fn new(opts: &Options) -> Result<Http, Error> {
        let mut builder = Client::builder()
            .use_rustls_tls()
            .https_only(false)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(opts.connect_timeout)
            .user_agent(opts.user_agent.as_str())
            .pool_idle_timeout(Duration::from_secs(60))
            // Proxies are set below, so that loopback always stays direct.
            .no_proxy();
        if let Some(pem) = &opts.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::invalid_argument(format!("ca_file: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        for proxy in proxies(opts)? {
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(|e| {
            Error::internal(format!("cannot build the HTTP client: {}", root_cause(&e)))
        })?;
        Ok(Http { client })
    }

    /// POST a form; `form` is already encoded (and owned by a Secret because it holds secrets).
    pub fn post_form(
        &self,
        url: &str,
        form: &Secret,
        bearer: Option<&Secret>,
        deadline: Instant,
    ) -> Result<Answer, Error> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(timed_out(Delivery::NotSent));
        }
        let mut req = self
            .client
            .post(url)
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form.expose().as_bytes().to_vec());
        if let Some(token) = bearer {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| Error::internal("access token is not a valid header value"))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let resp = req.send().map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v));
        if resp.content_length().is_some_and(|n| n > MAX_BODY) {
            return Err(too_large(status));
        }
        let mut body = Vec::new();
        resp.take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                let mut err = if is_timeout_io(&e) {
                    timed_out(Delivery::Unknown)
                } else {
                    Error::new(Status::Network, format!("answer cut off: {e}"))
                };
                err.delivery = Delivery::Unknown;
                err.retryable = true;
                err.http_status = status;
                err
            })?;
        if body.len() as u64 > MAX_BODY {
            return Err(too_large(status));
        }
        Ok(Answer {
            status,
            body,
            content_type,
            retry_after,
        })
    }
}

fn too_large(status: u16) -> Error {
    let mut e = Error::new(
        Status::Server,
        format!("answer (HTTP {status}) is larger than {MAX_BODY} bytes; not read"),
    );
    e.http_status = status;
    e.delivery = Delivery::Answered;
    e
}

fn timed_out(delivery: Delivery) -> Error {
    let mut e = Error::new(
        Status::Network,
        "no answer within timeout_ms (raise it with findity_set_option(\"timeout_ms\", …))",
    );
    e.delivery = delivery;
    e
}

fn is_timeout_io(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut || root_cause(e).contains("timed out")
}

/// Map a reqwest failure to an error that says whether the request may have arrived.
fn classify(e: &reqwest::Error) -> Error {
    let cause = root_cause(e);
    let lower = cause.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        // Permanent: retrying cannot help, the user must fix the trust roots.
        let mut err = Error::new(
            Status::Network,
            format!("TLS certificate check failed ({cause}); behind a TLS-inspecting proxy, add its CA with the ca_file option"),
        );
        err.delivery = Delivery::NotSent;
        return err;
    }
    if e.is_connect() && is_unresolved(e) {
        let host = e
            .url()
            .and_then(|u| u.host_str())
            .unwrap_or("?")
            .to_string();
        let mut err = Error::new(
            Status::Network,
            format!("cannot resolve host \"{host}\": {cause}"),
        );
        err.delivery = Delivery::NotSent;
        err.retryable = true;
        err.unresolved = true;
        return err;
    }
    if e.is_connect() {
        let mut err = Error::new(Status::Network, format!("cannot connect: {cause}"));
        err.delivery = Delivery::NotSent;
        err.retryable = true;
        return err;
    }
    if e.is_timeout() {
        let mut err = timed_out(Delivery::Unknown);
        err.retryable = true;
        return err;
    }
    let mut err = Error::new(Status::Network, format!("connection failed: {cause}"));
    err.delivery = Delivery::Unknown;
    err.retryable = true;
    err
}

/// A failed name lookup: hyper's connector reports "dns error", the system resolver
/// "failed to lookup address".
fn is_unresolved(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        let text = c.to_string().to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The innermost error text; the outer layers repeat the URL and add nothing useful.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    crate::error::sanitize_server_text(&cur.to_string(), 200)
}

const MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// `Retry-After` is delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        // Capped: a day is already far past any timeout, and Instant arithmetic can't overflow.
        return Some(Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn proxies(opts: &Options) -> Result<Vec<reqwest::Proxy>, Error> {
    let env = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
    };
    let bad = |e: reqwest::Error| Error::invalid_argument(format!("proxy: {}", root_cause(&e)));
    if let Some(p) = &opts.proxy {
        let no = reqwest::NoProxy::from_string(LOOPBACK);
        return Ok(vec![reqwest::Proxy::all(p).map_err(bad)?.no_proxy(no)]);
    }
    let no_proxy = match env(&["NO_PROXY", "no_proxy"]) {
        Some(v) => format!("{v},{LOOPBACK}"),
        None => LOOPBACK.to_string(),
    };
    let mut out = Vec::new();
    if let Some(p) = env(&["HTTPS_PROXY", "https_proxy"]) {
        let no = reqwest::NoProxy::from_string(&no_proxy);
        out.push(reqwest::Proxy::https(p).map_err(bad)?.no_proxy(no));
    }
    if let Some(p) = env(&["ALL_PROXY", "all_proxy"]) {
        let no = reqwest::NoProxy::from_string(&no_proxy);
        out.push(reqwest::Proxy::all(p).map_err(bad)?.no_proxy(no));
    }
    Ok(out)
}

/// Checked when the option is set, so the mistake surfaces there.
pub fn check_proxy(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be http://host:port or https://host:port".into());
    }
    Ok(())
}

pub fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err("holds no PEM certificate".into()),
        Err(e) => Err(format!("not a PEM certificate bundle ({})", root_cause(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d >= Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("18446744073709551615"),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn ca_and_proxy_checks() {
        assert!(check_ca_pem(b"garbage").is_err());
        assert!(check_proxy("socks5://127.0.0.1:1080").is_err());
        assert!(check_proxy("http://127.0.0.1:3128").is_ok());
    }
}
