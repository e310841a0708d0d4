//! Minimal HTTP/1.1: request parsing, response writing, form decoding.
//!
//! Hand-written on purpose: fault injection needs byte-level control over
//! what is (not) written and when the socket is closed or reset.

use std::io::{self, Read, Write};

/// Largest request head (request line + headers) accepted.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// Path without the query string, not percent-decoded.
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub query: String,
    pub http11: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with this (case-insensitive) name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close.
    pub(crate) fn keep_alive(&self) -> bool {
        let tokens = |v: &str, t: &str| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(t));
        match self.header("connection") {
            Some(v) if tokens(v, "close") => false,
            Some(v) if tokens(v, "keep-alive") => true,
            _ => self.http11,
        }
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub(crate) fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?.trim();
        let (scheme, rest) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = rest.trim();
        (!token.is_empty()).then_some(token)
    }
}

pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this response regardless of keep-alive.
    pub close: bool,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            close: false,
        }
    }

    /// JSON answer; `no-store` like any OAuth token endpoint (RFC 6749 5.1).
    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body).header("Cache-Control", "no-store")
    }

    pub(crate) fn json_value(status: u16, value: &serde_json::Value) -> Response {
        Response::json(status, value.to_string())
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    pub(crate) fn method_not_allowed(allow: &str) -> Response {
        Response::json(
            405,
            r#"{"error":"invalid_request","error_description":"Method not allowed"}"#,
        )
        .header("Allow", allow)
    }

    pub(crate) fn not_found() -> Response {
        Response::json(
            404,
            r#"{"error":"not_found","error_description":"No such endpoint"}"#,
        )
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Serialises a response. `head_only` is for HEAD requests.
pub(crate) fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    head.push_str("Server: findity-emulator\r\n");
    for (n, v) in &resp.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        // One write for small answers (fewer TCP segments); big ones streamed.
        if resp.body.len() <= 64 * 1024 {
            out.extend_from_slice(&resp.body);
            w.write_all(&out)?;
        } else {
            w.write_all(&out)?;
            for chunk in resp.body.chunks(64 * 1024) {
                w.write_all(chunk)?;
            }
        }
    } else {
        w.write_all(&out)?;
    }
    w.flush()
}

pub(crate) enum ReadError {
    /// Peer closed (or the socket failed) before a complete request arrived.
    Closed,
    /// Protocol error: send this answer, then close.
    Bad(Response),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Closed
    }
}

fn bad(status: u16, msg: &str) -> ReadError {
    let body = serde_json::json!({"error": "invalid_request", "error_description": msg});
    ReadError::Bad(Response::json_value(status, &body).closing())
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads one request from `stream`. `buf` carries bytes already read past
/// the previous request (pipelining) and keeps leftovers for the next call.
pub(crate) fn read_request<S: Read + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Request, ReadError> {
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        // RFC 9112 2.2: ignore empty lines before a request line.
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        if let Some(i) = find_head_end(buf) {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad(431, "request head too large"));
        }
        let n = stream.read(&mut tmp)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    if head_end > MAX_HEAD {
        return Err(bad(431, "request head too large"));
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| bad(400, "request head is not UTF-8"))?
        .to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(bad(400, "malformed request line")),
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(bad(505, "only HTTP/1.0 and HTTP/1.1 are supported")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            return Err(bad(400, "obsolete header line folding"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(400, "malformed header line"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(bad(400, "malformed header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
        if headers.len() > 100 {
            return Err(bad(431, "too many headers"));
        }
    }
    // Absolute-form targets (proxies) are reduced to their path.
    let target = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("/")
        }
        None => target,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let mut req = Request {
        method: method.to_string(),
        path,
        query,
        http11,
        headers,
        body: Vec::new(),
    };

    if req.header("transfer-encoding").is_some() {
        return Err(bad(
            411,
            "chunked request bodies are not supported; send Content-Length",
        ));
    }
    let mut length: Option<usize> = None;
    for (n, v) in &req.headers {
        if n.eq_ignore_ascii_case("content-length") {
            let l: usize = v
                .parse()
                .ok()
                .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad(400, "invalid Content-Length"))?;
            if length.is_some_and(|old| old != l) {
                return Err(bad(400, "conflicting Content-Length headers"));
            }
            length = Some(l);
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Err(bad(413, "request body larger than 64 KiB"));
    }
    buf.drain(..head_end + 4);
    if buf.len() < length
        && req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    while buf.len() < length {
        let n = stream.read(&mut tmp)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    req.body = buf.drain(..length).collect();
    Ok(req)
}

/// A gzip member (RFC 1952) of stored deflate blocks (RFC 1951 3.2.4): valid gzip any decoder
/// reads, with no compression library; the emulator's answers are small.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        let len = block.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE, reflected), bit by bit: a few hundred bytes per answer.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value:
/// `+` is a space, `%XX` a byte. A malformed escape is an error, so a client
/// bug shows up as a 400 instead of a silently different token.
pub(crate) fn percent_decode(s: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex_val);
                let lo = s.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err("malformed percent-encoding".into()),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "form data is not UTF-8".into())
}

/// Parses a query string or form body into (name, value) pairs, in order.
pub(crate) fn parse_form(s: &[u8]) -> Result<Vec<(String, String)>, String> {
    s.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((percent_decode(n)?, percent_decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_members() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // `echo -n '{"a":1}' | gzip -n` gives this member with compressed blocks; ours are
        // stored, so only the trailer can be compared.
        let g = gzip(br#"{"a":1}"#);
        assert_eq!(&g[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(&g[g.len() - 4..], &7u32.to_le_bytes());
        assert_eq!(gzip(b"").len(), 10 + 5 + 8);
        let big = gzip(&vec![b'x'; 70_000]);
        assert_eq!(big.len(), 10 + 2 * 5 + 70_000 + 8);
    }

    #[test]
    fn form_decoding() {
        let f = parse_form(b"a=1+2&b=%2B%2f%3D&c&d=").unwrap();
        assert_eq!(
            f,
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "+/=".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into())
            ]
        );
        assert!(parse_form(b"a=%2").is_err());
        assert!(parse_form(b"a=%zz").is_err());
    }

    struct Mock {
        input: Vec<u8>,
        pos: usize,
        out: Vec<u8>,
    }
    impl Read for Mock {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            // One byte at a time to exercise partial reads.
            if self.pos >= self.input.len() || b.is_empty() {
                return Ok(0);
            }
            b[0] = self.input[self.pos];
            self.pos += 1;
            Ok(1)
        }
    }
    impl Write for Mock {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.out.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pipelined_requests() {
        let mut m = Mock {
            input: b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.0\r\n\r\n"
                .to_vec(),
            pos: 0,
            out: vec![],
        };
        let mut buf = Vec::new();
        let r = read_request(&mut m, &mut buf).ok().unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("POST", "/a", "x=1")
        );
        assert_eq!(r.body, b"abc");
        assert!(r.keep_alive());
        let r = read_request(&mut m, &mut buf).ok().unwrap();
        assert_eq!(r.path, "/b");
        assert!(!r.keep_alive());
        assert!(matches!(
            read_request(&mut m, &mut buf),
            Err(ReadError::Closed)
        ));
    }
}
