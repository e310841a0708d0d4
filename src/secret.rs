//! Secrets (client secret, tokens, codes): never printed, wiped on drop, compared in constant time.

use std::fmt;
use zeroize::Zeroize;

pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The only way to read the value; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison (time depends on the lengths only), so a caller probing
    /// the cache with guessed secrets learns nothing from timing.
    pub fn ct_eq(&self, other: &str) -> bool {
        ct_eq(self.0.as_bytes(), other.as_bytes())
    }

    pub fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        ct_eq(self.0.as_bytes(), other)
    }
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Eight bytes at a time (this is on the cache-hit path), then the tail; no early exit.
    let (mut diff, mut i) = (0u64, 0);
    while i + 8 <= a.len() {
        let x = u64::from_ne_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        diff |= x ^ y;
        i += 8;
    }
    if i < a.len() && a.len() >= 8 {
        // The tail as the last 8 bytes (overlapping the previous word): no byte loop.
        let k = a.len() - 8;
        let x = u64::from_ne_bytes(a[k..].try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(b[k..].try_into().expect("8 bytes"));
        diff |= x ^ y;
    } else {
        for j in i..a.len() {
            diff |= u64::from(a[j] ^ b[j]);
        }
    }
    // black_box keeps the optimiser from turning the accumulation into an early exit.
    std::hint::black_box(diff) == 0
}

impl Clone for Secret {
    fn clone(&self) -> Secret {
        Secret(self.0.clone())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter2-secret");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-secret");
    }

    #[test]
    fn ct_eq_compares_exactly() {
        let s = Secret::new("abc");
        assert!(s.ct_eq("abc"));
        assert!(!s.ct_eq("abd"));
        assert!(!s.ct_eq("ab"));
        assert!(!s.ct_eq("abcd"));
        let long = Secret::new("0123456789abcdef-xyz");
        assert!(long.ct_eq("0123456789abcdef-xyz"));
        assert!(!long.ct_eq("0123456789abcdeF-xyz"));
        assert!(!long.ct_eq("0123456789abcdef-xyZ"));
        // Every length, a difference in every position (words, overlapping tail, short tails).
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(ct_eq(&a, &a.clone()), "{len}");
            for pos in 0..len {
                let mut b = a.clone();
                b[pos] ^= 0x20;
                assert!(!ct_eq(&a, &b), "len {len}, byte {pos}");
            }
        }
    }
}
