//! Error values, status codes and the thread-local last error.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

/// Status codes of the C ABI. The numbers are fixed forever: wrappers hard-code them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    InvalidArgument = 1,
    BufferTooSmall = 2,
    Network = 3,
    Auth = 4,
    Server = 5,
    Internal = 6,
    NotCached = 7,
}

/// Whether a request that failed may have reached the server.
/// Decides if a single-use grant is burnt and if a replay is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Failed before any byte of the request left (bad argument, connect error).
    NotSent,
    /// Sent, but no complete answer: the server may or may not have acted on it.
    Unknown,
    /// The server answered.
    Answered,
}

#[derive(Clone, Debug)]
pub struct Error {
    pub status: Status,
    /// HTTP status of the answer that caused the error; 0 without an HTTP answer.
    pub http_status: u16,
    /// OAuth `error` (or Findity `code`) from the answer, e.g. `invalid_grant`.
    pub oauth_error: Option<String>,
    pub message: String,
    pub delivery: Delivery,
    /// Worth trying again (connect error, 408, 429, 5xx).
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    /// The host name did not resolve: worth one quick retry, not the whole timeout.
    pub unresolved: bool,
    /// The connection was refused (nothing listens at that address): retried only for
    /// refused_ms (a server restarting), not the whole timeout.
    pub refused: bool,
    /// The TCP or TLS set-up took connect_timeout_ms (a host dropping packets): one retry.
    pub connect_timed_out: bool,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            http_status: 0,
            oauth_error: None,
            message: message.into(),
            delivery: Delivery::NotSent,
            retryable: false,
            retry_after: None,
            unresolved: false,
            refused: false,
            connect_timed_out: false,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(Status::InvalidArgument, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Status::Internal, message)
    }

    /// The server refused a grant (as opposed to failing to answer it).
    pub fn is_refusal(&self) -> bool {
        self.status == Status::Auth
    }

    /// Prefix the message with what was being done, e.g. "organization token for client X".
    pub fn context(mut self, what: &str) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// Replace every occurrence of the given secrets in the message.
    /// Defence in depth: a server may echo what it was sent.
    pub fn redact(mut self, secrets: &[&str]) -> Error {
        self.message = redact_text(&self.message, secrets);
        if let Some(code) = &self.oauth_error {
            if redact_text(code, secrets) != *code {
                self.oauth_error = Some("[redacted]".into());
            }
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

struct LastError {
    message: String,
    http_status: u16,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const {
        RefCell::new(LastError { message: String::new(), http_status: 0 })
    };
}

/// Record the error of the failing call on this thread (errno-like: successful calls leave it).
/// (try_with: during thread exit the slot may be gone; a call from a thread-local destructor
/// then just has no last error, rather than a panic.)
pub fn set_last_error(e: &Error) {
    let _ = LAST_ERROR.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.message.clear();
            l.message.push_str(&e.message);
            l.http_status = e.http_status;
        }
    });
}

pub fn with_last_error<R>(f: impl FnOnce(&str, u16) -> R) -> R {
    let mut f = Some(f);
    LAST_ERROR
        .try_with(|l| match l.try_borrow() {
            Ok(l) => f.take().map(|f| f(&l.message, l.http_status)),
            Err(_) => None,
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| (f.take().expect("not called yet"))("", 0))
}

/// `text` with every secret replaced by "[redacted]": as sent (raw and form-urlencoded) and as a
/// JSON encoder may have escaped it. Values under 4 bytes are left alone: they would blank out
/// ordinary words, and no real secret, token or code is that short.
pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        for variant in [s.to_string(), encoded, s.replace('/', "\\/")] {
            if out.contains(&variant) {
                out = out.replace(&variant, "[redacted]");
            }
        }
    }
    out
}

/// Make text from a server safe to show: printable, one line, bounded.
pub fn sanitize_server_text(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut last_space = false;
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_every_occurrence() {
        let e = Error::new(Status::Auth, "bad secret s3cr3t-value, again s3cr3t-value")
            .redact(&["s3cr3t-value", "ab"]);
        assert_eq!(e.message, "bad secret [redacted], again [redacted]");
    }

    #[test]
    fn redact_finds_encoded_forms() {
        let secret = "9MX+/=abc def";
        let text = "raw 9MX+/=abc def, form 9MX%2B%2F%3Dabc+def, json 9MX+\\/=abc def";
        assert_eq!(
            redact_text(text, &[secret]),
            "raw [redacted], form [redacted], json [redacted]"
        );
    }

    #[test]
    fn sanitize_collapses_control_characters_and_truncates() {
        assert_eq!(sanitize_server_text("a\r\n\tb", 10), "a b");
        assert_eq!(sanitize_server_text("abcdef", 3), "abc…");
    }

    #[test]
    fn last_error_is_per_thread() {
        set_last_error(&Error::new(Status::Auth, "here").redact(&[]));
        std::thread::spawn(|| with_last_error(|m, _| assert_eq!(m, "")))
            .join()
            .unwrap();
        with_last_error(|m, _| assert_eq!(m, "here"));
    }
}
