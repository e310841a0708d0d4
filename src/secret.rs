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

    #[inline]
    pub fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        ct_eq(self.0.as_bytes(), other)
    }
}

#[inline]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // SAFETY: both hold a.len() bytes when the lengths are equal.
    a.len() == b.len() && opaque(unsafe { xor_diff_raw(a.as_ptr(), b.as_ptr(), a.len()) }) == 0
}

/// The OR of `a[i] ^ b[i]` for i < n: 0 when the bytes are equal. Branches on n only, never
/// on the bytes; a word or two per size class, as memcmp does, since this is on the cache-hit
/// path (bench/bench_cache.c).
///
/// # Safety
/// `a` and `b` are readable for `n` bytes.
#[inline(always)]
pub unsafe fn xor_diff_raw(a: *const u8, b: *const u8, n: usize) -> u64 {
    let w = |p: *const u8, i: usize| p.add(i).cast::<u64>().read_unaligned();
    let h = |p: *const u8, i: usize| u64::from(p.add(i).cast::<u32>().read_unaligned());
    let c = |p: *const u8, i: usize| u64::from(*p.add(i));
    match n {
        0 => 0,
        // Bytes 0, n/2 and n-1 cover every byte of 1 to 3.
        1..=3 => (c(a, 0) ^ c(b, 0)) | (c(a, n / 2) ^ c(b, n / 2)) | (c(a, n - 1) ^ c(b, n - 1)),
        4..=7 => (h(a, 0) ^ h(b, 0)) | (h(a, n - 4) ^ h(b, n - 4)),
        // Two to four words, the last one overlapping: no loop for the usual key sizes.
        8..=16 => (w(a, 0) ^ w(b, 0)) | (w(a, n - 8) ^ w(b, n - 8)),
        17..=32 => {
            let m = (n - 8).min(16); // covers 16..n-8 when n > 24
            (w(a, 0) ^ w(b, 0))
                | (w(a, 8) ^ w(b, 8))
                | (w(a, m) ^ w(b, m))
                | (w(a, n - 8) ^ w(b, n - 8))
        }
        _ => {
            let mut diff = w(a, n - 8) ^ w(b, n - 8);
            let mut i = 0;
            while i + 8 < n {
                diff |= w(a, i) ^ w(b, i);
                i += 8;
            }
            diff
        }
    }
}

/// Hide a value from the optimiser, so an accumulation over secret bytes is not turned into an
/// early exit. An empty asm statement keeps it in a register (black_box goes through memory).
#[inline(always)]
pub fn opaque(mut v: u64) -> u64 {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty asm statement; it only claims to read and write the register.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) v, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        v = std::hint::black_box(v);
    }
    v
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
