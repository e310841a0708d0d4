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
        for s in secrets {
            // Very short values would blank out ordinary words; real secrets are long.
            if s.len() >= 4 && self.message.contains(s) {
                self.message = self.message.replace(s, "[redacted]");
            }
        }
        if let Some(code) = &self.oauth_error {
            if secrets.iter().any(|s| s.len() >= 4 && code.contains(s)) {
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
pub fn set_last_error(e: &Error) {
    LAST_ERROR.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.message.clear();
            l.message.push_str(&e.message);
            l.http_status = e.http_status;
        }
    });
}

pub fn with_last_error<R>(f: impl FnOnce(&str, u16) -> R) -> R {
    LAST_ERROR.with(|l| {
        let l = l.borrow();
        f(&l.message, l.http_status)
    })
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
