//! Small xorshift64* generator for tokens and codes.
//!
//! Seeded from std's `RandomState` (OS-seeded SipHash keys) so no `rand`
//! dependency is needed. Not a CSPRNG: these are fake credentials for a test
//! server, they only have to be unpredictable enough not to collide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const BASE64: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(crate) const HEX: &[u8] = b"0123456789abcdef";

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn from_entropy() -> Rng {
        let mut h = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        let seed = h.finish();
        // xorshift must never be seeded with 0.
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough index below `n` (modulo bias is irrelevant for n <= 64).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }

    /// An opaque access token: 128 alphanumeric characters, like Findity's.
    pub(crate) fn access_token(&mut self) -> String {
        self.string(ALNUM, 128)
    }

    /// A refresh token that looks like base64 and always contains `+`, `/`
    /// and `=`, so a client that forgets to percent-encode it is caught.
    pub(crate) fn refresh_token(&mut self) -> String {
        let mut bytes: Vec<u8> = self.string(BASE64, 86).into_bytes();
        let plus = self.below(43);
        let slash = 43 + self.below(43);
        bytes[plus] = b'+';
        bytes[slash] = b'/';
        bytes.extend_from_slice(b"==");
        String::from_utf8(bytes).expect("ascii")
    }

    /// An authorization code: 32 lowercase hex characters.
    pub(crate) fn code(&mut self) -> String {
        self.string(HEX, 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut r = Rng::from_entropy();
        let a = r.access_token();
        assert_eq!(a.len(), 128);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        let t = r.refresh_token();
        assert!(t.contains('+') && t.contains('/') && t.ends_with("=="));
        let c = r.code();
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(r.access_token(), a);
    }
}
