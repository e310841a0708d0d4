//! A refresh token as a value the compiler tracks. Findity's refresh tokens are single-use:
//! sent twice, the second use fails and may revoke the first's result; held by two owners,
//! both will send it. So a [`RefreshToken`] is neither `Clone` nor `Copy`, and whoever holds
//! one does exactly one of three things with it:
//! - **send it**: [`crate::grants::refresh`] takes it by value and hands it back only if the
//!   server never processed it (it never left this process, or the answer was 429);
//! - **hand it back unsent**, beside a failed result, to the owner it came from;
//! - **store it**: in a cache slot, or sealed into a shared-store record.
//!
//! Dropping one means it is burnt (sent with no usable answer) or its only copy now lives in
//! the store; it is wiped either way.

use crate::secret::Secret;

#[must_use = "a refresh token must be sent, handed back unsent, or stored"]
pub struct RefreshToken(Secret);

impl RefreshToken {
    pub fn new(value: Secret) -> RefreshToken {
        RefreshToken(value)
    }

    /// The token's text: for the one request that sends it, and for sealing it into a record.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// For tests only: compare without exposing.
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.ct_eq(other)
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}
