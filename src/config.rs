//! Process-wide options, set by name through `findity_set_option`.

use crate::error::Error;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The whole operation, retries and waiting for another caller's request included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM file whose certificates are added to the trust roots (TLS-inspecting proxies).
    pub ca_file: Option<String>,
    /// Loaded when the option is set, so a bad file fails `findity_set_option`, not a later call.
    pub ca_pem: Option<Vec<u8>>,
    /// Explicit proxy URL; `None` uses HTTPS_PROXY / ALL_PROXY / NO_PROXY from the environment.
    pub proxy: Option<String>,
    pub user_agent: String,
    /// Background renewal workers (the most renewals running at once).
    pub renewal_threads: usize,
    /// A cache entry unused this long is dropped, whatever it holds.
    pub idle: Duration,
    /// How long refused connections (nothing listens at the address) are retried, counted
    /// from the first refusal of a call: long enough for a server that is restarting, short
    /// enough that a wrong port fails at once rather than after timeout_ms. 0: no retry.
    pub refused: Duration,
}

pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_RENEWAL_THREADS: usize = 4;
const MAX_RENEWAL_THREADS: usize = 64;
/// 30 minutes: a connector walking every employee keeps each one's tokens across a pass.
pub const DEFAULT_IDLE_MS: u64 = 1_800_000;
/// Retries of a refused connection within 3 s (about 5 attempts with backoff): a call to a
/// port nothing listens on fails within 5 s whatever timeout_ms is.
pub const DEFAULT_REFUSED_MS: u64 = 3_000;
const MAX_MS: u64 = 3_600_000;
const MAX_IDLE_MS: u64 = 7 * 24 * 3_600_000;

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            ca_file: None,
            ca_pem: None,
            proxy: None,
            user_agent: default_user_agent(),
            renewal_threads: DEFAULT_RENEWAL_THREADS,
            idle: Duration::from_millis(DEFAULT_IDLE_MS),
            refused: Duration::from_millis(DEFAULT_REFUSED_MS),
        }
    }
}

pub fn default_user_agent() -> String {
    format!("libfindity/{}", env!("CARGO_PKG_VERSION"))
}

/// What an option change affects: only some need a new HTTP client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Timing,
    HttpClient,
    /// The log level is process-wide state of its own (see crate::log).
    LogLevel(crate::log::Level),
}

impl Options {
    /// Apply one option. An empty value restores the default.
    pub fn set(&mut self, name: &str, value: &str) -> Result<Effect, Error> {
        let value = value.trim();
        match name {
            "timeout_ms" => {
                self.timeout = parse_ms(name, value, DEFAULT_TIMEOUT_MS)?;
                Ok(Effect::Timing)
            }
            "connect_timeout_ms" => {
                self.connect_timeout = parse_ms(name, value, DEFAULT_CONNECT_TIMEOUT_MS)?;
                Ok(Effect::HttpClient)
            }
            "ca_file" => {
                if value.is_empty() {
                    self.ca_file = None;
                    self.ca_pem = None;
                } else {
                    let pem = std::fs::read(value).map_err(|e| {
                        Error::invalid_argument(format!("ca_file: cannot read {value}: {e}"))
                    })?;
                    crate::http::check_ca_pem(&pem).map_err(|why| {
                        Error::invalid_argument(format!("ca_file: {value}: {why}"))
                    })?;
                    self.ca_file = Some(value.to_string());
                    self.ca_pem = Some(pem);
                }
                Ok(Effect::HttpClient)
            }
            "proxy" => {
                if value.is_empty() {
                    self.proxy = None;
                } else {
                    crate::http::check_proxy(value).map_err(|why| {
                        Error::invalid_argument(format!("proxy: {why}"))
                    })?;
                    self.proxy = Some(value.to_string());
                }
                Ok(Effect::HttpClient)
            }
            "user_agent" => {
                if value.is_empty() {
                    self.user_agent = default_user_agent();
                } else if value.len() > 256 || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(Error::invalid_argument(
                        "user_agent must be printable ASCII of at most 256 characters",
                    ));
                } else {
                    self.user_agent = value.to_string();
                }
                Ok(Effect::HttpClient)
            }
            "renewal_threads" => {
                self.renewal_threads = if value.is_empty() {
                    DEFAULT_RENEWAL_THREADS
                } else {
                    match value.parse::<usize>() {
                        Ok(n) if (1..=MAX_RENEWAL_THREADS).contains(&n) => n,
                        _ => {
                            return Err(Error::invalid_argument(format!(
                                "renewal_threads must be a whole number from 1 to {MAX_RENEWAL_THREADS}"
                            )))
                        }
                    }
                };
                Ok(Effect::Timing)
            }
            "idle_ms" => {
                self.idle = if value.is_empty() {
                    Duration::from_millis(DEFAULT_IDLE_MS)
                } else {
                    match value.parse::<u64>() {
                        Ok(ms) if (100..=MAX_IDLE_MS).contains(&ms) => Duration::from_millis(ms),
                        _ => {
                            return Err(Error::invalid_argument(format!(
                                "idle_ms must be a whole number of milliseconds from 100 to {MAX_IDLE_MS}"
                            )))
                        }
                    }
                };
                Ok(Effect::Timing)
            }
            "refused_ms" => {
                self.refused = if value.is_empty() {
                    Duration::from_millis(DEFAULT_REFUSED_MS)
                } else {
                    match value.parse::<u64>() {
                        Ok(ms) if ms <= MAX_MS => Duration::from_millis(ms),
                        _ => {
                            return Err(Error::invalid_argument(format!(
                                "refused_ms must be a whole number of milliseconds from 0 to {MAX_MS}"
                            )))
                        }
                    }
                };
                Ok(Effect::Timing)
            }
            "log_level" => {
                if value.is_empty() {
                    return Ok(Effect::LogLevel(crate::log::env_level()));
                }
                crate::log::Level::parse(value).map(Effect::LogLevel).ok_or_else(|| {
                    Error::invalid_argument("log_level must be off, error, warn, info or debug")
                })
            }
            _ => Err(Error::invalid_argument(format!(
                "unknown option \"{}\"; known: timeout_ms, connect_timeout_ms, ca_file, proxy, user_agent, log_level, renewal_threads, idle_ms, refused_ms, shared_cache",
                crate::error::sanitize_server_text(name, 64)
            ))),
        }
    }
}

fn parse_ms(name: &str, value: &str, default: u64) -> Result<Duration, Error> {
    if value.is_empty() {
        return Ok(Duration::from_millis(default));
    }
    match value.parse::<u64>() {
        Ok(ms) if (1..=MAX_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(Error::invalid_argument(format!(
            "{name} must be a whole number of milliseconds from 1 to {MAX_MS}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_and_reset() {
        let mut o = Options::default();
        o.set("timeout_ms", "1500").unwrap();
        assert_eq!(o.timeout, Duration::from_millis(1500));
        o.set("timeout_ms", "").unwrap();
        assert_eq!(o.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        for bad in ["0", "-1", "abc", "1.5", "99999999999"] {
            assert!(o.set("timeout_ms", bad).is_err(), "{bad}");
            assert!(o.set("connect_timeout_ms", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renewal_threads_and_idle() {
        let mut o = Options::default();
        o.set("renewal_threads", "2").unwrap();
        assert_eq!(o.renewal_threads, 2);
        o.set("renewal_threads", "").unwrap();
        assert_eq!(o.renewal_threads, DEFAULT_RENEWAL_THREADS);
        for bad in ["0", "65", "x", "-1"] {
            assert!(o.set("renewal_threads", bad).is_err(), "{bad}");
        }
        o.set("refused_ms", "0").unwrap();
        assert_eq!(o.refused, Duration::ZERO);
        o.set("refused_ms", "").unwrap();
        assert_eq!(o.refused, Duration::from_millis(DEFAULT_REFUSED_MS));
        for bad in ["-1", "x", "1.5", "99999999999"] {
            assert!(o.set("refused_ms", bad).is_err(), "{bad}");
        }
        o.set("idle_ms", "250").unwrap();
        assert_eq!(o.idle, Duration::from_millis(250));
        assert!(o.set("idle_ms", "0").is_err());
        assert!(o.set("idle_ms", "99").is_err());
    }

    #[test]
    fn unknown_option_and_bad_values() {
        let mut o = Options::default();
        assert!(o
            .set("nope", "1")
            .unwrap_err()
            .message
            .contains("unknown option"));
        assert!(o.set("user_agent", "a\nb").is_err());
        assert!(o.set("ca_file", "/nonexistent/ca.pem").is_err());
        assert!(o.set("proxy", "not a url").is_err());
        o.set("proxy", "http://127.0.0.1:3128").unwrap();
        assert_eq!(o.proxy.as_deref(), Some("http://127.0.0.1:3128"));
    }
}
