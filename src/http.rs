//! The HTTP client: rustls only, certificate checks always on, no redirects, bounded bodies,
//! every request inside the caller's deadline. Failures are classified by whether the request
//! may have reached the server, because that decides whether a single-use grant is burnt.

use crate::config::Options;
use crate::error::{Delivery, Error, Status};
use crate::secret::Secret;
use reqwest::blocking::Client;
use reqwest::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE,
    RETRY_AFTER,
};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

/// Largest answer read, before and after decoding a Content-Encoding; token answers are a few
/// hundred bytes.
pub const MAX_BODY: u64 = 1 << 20;

/// Loopback never goes through a proxy: the emulator and local test servers live there.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

pub struct Http {
    client: Client,
    /// A proxy is configured: a refused connection may be the proxy's.
    proxied: bool,
}

/// An HTTP answer of any status; the grant layer decides what it means.
pub struct Answer {
    pub status: u16,
    /// Decoded (see `undecodable`); wiped on drop, as it may hold tokens.
    pub body: Zeroizing<Vec<u8>>,
    pub content_type: String,
    pub retry_after: Option<Duration>,
    /// The Content-Encoding header as sent (sanitised), empty when none.
    pub content_encoding: String,
    /// Why the body could not be decoded (an unknown or broken Content-Encoding); `body` is
    /// then as received.
    pub undecodable: Option<String>,
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
        let proxies = proxies(opts)?;
        let proxied = !proxies.is_empty();
        for proxy in proxies {
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(|e| {
            Error::internal(format!("cannot build the HTTP client: {}", root_cause(&e)))
        })?;
        Ok(Http { client, proxied })
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
        // The copy handed to the client is wiped when the client drops it (it holds the client
        // secret, a refresh token or a code).
        let body =
            bytes::Bytes::from_owner(Wiped(Zeroizing::new(form.expose().as_bytes().to_vec())));
        let mut req = self
            .client
            .post(url)
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            // Without it a server may pick any coding (RFC 9110 12.5.3); gzip is still decoded
            // if a gateway compresses regardless.
            .header(ACCEPT_ENCODING, "identity")
            .body(body);
        if let Some(token) = bearer {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| Error::internal("access token is not a valid header value"))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let mut resp = req.send().map_err(|e| self.classify(&e))?;
        let status = resp.status().as_u16();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v));
        let content_encoding =
            crate::error::sanitize_server_text(&header(CONTENT_ENCODING).unwrap_or_default(), 64);
        if resp.content_length().is_some_and(|n| n > MAX_BODY) {
            return Err(too_large(status, ""));
        }
        let hint = resp.content_length().unwrap_or(0) as usize;
        let raw = read_capped(&mut resp, MAX_BODY as usize, hint)
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
            })?
            .ok_or_else(|| too_large(status, ""))?;
        let (body, undecodable) = decode(raw, &content_encoding)
            .map_err(|TooLarge| too_large(status, &content_encoding))?;
        Ok(Answer {
            status,
            body,
            content_type,
            retry_after,
            content_encoding,
            undecodable,
        })
    }

    /// Map a reqwest failure to an error that says whether the request may have arrived.
    fn classify(&self, e: &reqwest::Error) -> Error {
        let mut err = classify(e);
        if e.is_connect() && !err.unresolved && is_refused(e) {
            let at = host_port(e);
            let proxied = self.proxied && !is_loopback(e);
            err.message = if proxied {
                format!("the proxy or {at} refused the connection (connection refused); are the proxy setting and the base URL right?")
            } else {
                format!("nothing listens at {at} (connection refused); is the base URL right and the server running?")
            };
            err.refused = true;
        } else if e.is_connect()
            && !err.unresolved
            && (e.is_timeout() || err.message.contains("timed out"))
        {
            err.message = format!(
                "no connection to {} within connect_timeout_ms (nothing answered; a firewall may be dropping packets)",
                host_port(e)
            );
            err.connect_timed_out = true;
        }
        err
    }
}

/// The request body handed to the HTTP client: wiped when the client drops it.
struct Wiped(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Read at most `cap` bytes (None past that) into a buffer that is wiped on drop, and grown by
/// hand: a Vec's own growth would free the old buffer unwiped.
fn read_capped(
    r: &mut dyn Read,
    cap: usize,
    size_hint: usize,
) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(size_hint.clamp(512, cap.max(512))));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = match r.read(&mut chunk[..]) {
            Ok(0) => return Ok(Some(out)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if out.len() + n > cap {
            return Ok(None);
        }
        if out.capacity() - out.len() < n {
            let want = (out.capacity() * 2).max(out.len() + n).min(cap);
            let mut bigger = Zeroizing::new(Vec::with_capacity(want));
            bigger.extend_from_slice(&out);
            out = bigger;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// A body after decoding, and why it could not be decoded if so (then it is as received).
type Decoded = (Zeroizing<Vec<u8>>, Option<String>);

/// The decoded body is larger than MAX_BODY.
#[derive(Debug)]
struct TooLarge;

/// Undo the Content-Encoding (codings listed in the order they were applied). TooLarge: the
/// decoded body is larger than MAX_BODY (a gzip bomb is stopped there, not decoded whole).
/// An unknown coding or a broken body is not an error here: the body is returned as received
/// with the reason, and the grant layer names the coding in its message.
fn decode(raw: Zeroizing<Vec<u8>>, content_encoding: &str) -> Result<Decoded, TooLarge> {
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    let mut body = raw;
    for coding in codings.iter().rev() {
        let decoded = match coding.as_str() {
            "gzip" | "x-gzip" => read_capped(
                &mut flate2::read::MultiGzDecoder::new(&body[..]),
                MAX_BODY as usize,
                0,
            ),
            // "deflate" is zlib (RFC 9110 8.4.1.2); some servers send raw deflate.
            "deflate" => read_capped(
                &mut flate2::read::ZlibDecoder::new(&body[..]),
                MAX_BODY as usize,
                0,
            )
            .or_else(|_| {
                read_capped(
                    &mut flate2::read::DeflateDecoder::new(&body[..]),
                    MAX_BODY as usize,
                    0,
                )
            }),
            _ => {
                let why = format!(
                    "Content-Encoding \"{content_encoding}\", which libfindity cannot decode (it asks for identity and decodes gzip and deflate)"
                );
                return Ok((body, Some(why)));
            }
        };
        body = match decoded {
            Ok(Some(b)) => b,
            Ok(None) => return Err(TooLarge),
            Err(e) => {
                let why = format!(
                    "Content-Encoding \"{content_encoding}\", but the body is not valid {coding} ({})",
                    crate::error::sanitize_server_text(&e.to_string(), 100)
                );
                return Ok((body, Some(why)));
            }
        };
    }
    Ok((body, None))
}

/// `encoding`: the Content-Encoding when it was the decoded size that was too large.
fn too_large(status: u16, encoding: &str) -> Error {
    let decoded = if encoding.is_empty() {
        String::new()
    } else {
        format!(" once decoded (Content-Encoding \"{encoding}\")")
    };
    let mut e = Error::new(
        Status::Server,
        format!("answer (HTTP {status}) is larger than {MAX_BODY} bytes{decoded}; not read"),
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

/// Nothing listens at the address: ECONNREFUSED somewhere in the chain.
fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        if c.to_string()
            .to_ascii_lowercase()
            .contains("connection refused")
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// "host:port" of the request's URL (the scheme's port when none is given).
fn host_port(e: &reqwest::Error) -> String {
    match e.url() {
        Some(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("?"),
            u.port_or_known_default().unwrap_or(0)
        ),
        None => "the server".into(),
    }
}

/// Loopback never goes through a proxy (see LOOPBACK).
fn is_loopback(e: &reqwest::Error) -> bool {
    match e.url().and_then(|u| u.host()) {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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

    fn compress<W: std::io::Write>(mut w: W, data: &[u8], times: usize) -> W {
        for _ in 0..times {
            w.write_all(data).unwrap();
        }
        w
    }

    fn decoded(raw: Vec<u8>, enc: &str) -> (Vec<u8>, Option<String>) {
        let (b, why) = decode(Zeroizing::new(raw), enc).expect("within the cap");
        (b.to_vec(), why)
    }

    #[test]
    fn gzip_and_deflate_answers_are_decoded() {
        use flate2::{write, Compression};
        let json = br#"{"access_token":"abc","expires_in":60}"#;
        let gz = compress(
            write::GzEncoder::new(vec![], Compression::default()),
            json,
            1,
        )
        .finish()
        .unwrap();
        assert_eq!(decoded(gz.clone(), "gzip"), (json.to_vec(), None));
        assert_eq!(decoded(gz.clone(), "X-Gzip"), (json.to_vec(), None));
        assert_eq!(decoded(gz, "identity, gzip"), (json.to_vec(), None));
        let zlib = compress(
            write::ZlibEncoder::new(vec![], Compression::fast()),
            json,
            1,
        )
        .finish()
        .unwrap();
        assert_eq!(decoded(zlib, "deflate"), (json.to_vec(), None));
        let raw = compress(
            write::DeflateEncoder::new(vec![], Compression::fast()),
            json,
            1,
        )
        .finish()
        .unwrap();
        assert_eq!(decoded(raw, "deflate"), (json.to_vec(), None));
        assert_eq!(decoded(json.to_vec(), ""), (json.to_vec(), None));
        assert_eq!(decoded(json.to_vec(), "identity"), (json.to_vec(), None));
    }

    #[test]
    fn a_gzip_bomb_fails_cleanly_at_the_cap() {
        use flate2::{write, Compression};
        // 16 MiB of zeros in about 16 KiB: far under the cap compressed, far over it decoded.
        let bomb = compress(
            write::GzEncoder::new(vec![], Compression::best()),
            &[0u8; 1 << 16],
            256,
        )
        .finish()
        .unwrap();
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let t0 = Instant::now();
        assert!(decode(Zeroizing::new(bomb), "gzip").is_err());
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let e = too_large(200, "gzip");
        assert!(
            e.message
                .contains("once decoded (Content-Encoding \"gzip\")"),
            "{}",
            e.message
        );
        // Exactly at the cap is fine.
        let full = compress(
            write::GzEncoder::new(vec![], Compression::fast()),
            &[b'a'; 1 << 10],
            1 << 10,
        )
        .finish()
        .unwrap();
        assert_eq!(decoded(full, "gzip").0.len(), MAX_BODY as usize);
    }

    #[test]
    fn unknown_or_broken_encodings_are_named() {
        let (body, why) = decoded(b"\x0b\x02\x80{}\x03".to_vec(), "br");
        assert_eq!(body, b"\x0b\x02\x80{}\x03", "left as received");
        let why = why.unwrap();
        assert!(why.contains("Content-Encoding \"br\""), "{why}");
        assert!(why.contains("cannot decode"), "{why}");
        let (_, why) = decoded(b"{\"access_token\":\"x\"}".to_vec(), "gzip");
        assert!(why.unwrap().contains("not valid gzip"));
    }

    #[test]
    fn capped_reads_stop_past_the_cap() {
        let data = vec![7u8; 100_000];
        let got = read_capped(&mut &data[..], 100_000, 0).unwrap().unwrap();
        assert_eq!(got.len(), 100_000);
        assert!(read_capped(&mut &data[..], 99_999, 0).unwrap().is_none());
    }

    #[test]
    fn ca_and_proxy_checks() {
        assert!(check_ca_pem(b"garbage").is_err());
        assert!(check_proxy("socks5://127.0.0.1:1080").is_err());
        assert!(check_proxy("http://127.0.0.1:3128").is_ok());
    }
}
