//! libfindity: OAuth access tokens for the Findity Expense API behind a small C ABI.
//!
//! Where things live:
//! - [`ffi`]: the exported `findity_*` functions; argument checks and the panic boundary only.
//! - [`cache`]: process-wide token caches: key index, entries with single flight, renewal
//!   workers, per-thread snapshots (a file per concept under src/cache/).
//! - [`throttle`]: per-host pause on 429 and pacing of token requests; [`fleet`]: the same,
//!   shared by the processes of a shared store.
//! - [`token`]: a token and its expiry rules (one place).
//! - [`source`]: where a new token comes from: refresh token, then the primary grant, with retries.
//! - [`store`]: the shared cache across processes and hosts (files, Redis), between the cache
//!   and the source.
//! - [`grants`]: the four Findity OAuth requests and their answers.
//! - [`http`]: the HTTP client (timeouts, no redirects, body cap) and error classification.
//! - [`retry`]: backoff with jitter and `Retry-After`.
//! - [`base_url`]: accepted base URLs and their normal form.
//! - [`config`]: process-wide options set through `findity_set_option`.
//! - [`state`]: the process-wide state and its renewal after `fork()`.
//! - [`log`], [`stats`]: log lines (stderr or a host callback) and operator counters.
//! - [`error`], [`secret`]: error values with the thread-local last error; secrets that redact and wipe themselves.
//! - [`refresh`]: a single-use refresh token as a value that must be sent, handed back or stored.

pub mod base_url;
pub mod cache;
pub mod config;
pub mod error;
pub mod ffi;
pub mod fleet;
pub mod grants;
pub mod http;
pub mod log;
pub mod refresh;
pub mod retry;
pub mod secret;
pub mod source;
pub mod state;
pub mod stats;
pub mod store;
pub mod throttle;
pub mod token;

pub use error::{Error, Status};
