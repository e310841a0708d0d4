//! The properties the fuzz targets check, shared with tests/fuzz_regressions.rs so that every
//! input that once failed is replayed by `cargo test` forever.
#![allow(dead_code)]

use findity::base_url::BaseUrl;
use findity::ffi::*;
use findity::grants::{parse_code, parse_token};
use findity::token::MAX_LIFETIME;
use std::ffi::{c_char, CString};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Any bytes as a token-endpoint answer: parsing never panics, and whatever it accepts is a
/// token a connector can safely put in a header, with a bounded, positive lifetime.
pub fn token_response(data: &[u8]) {
    if let Ok(t) = parse_token(data, Instant::now()) {
        let a = t.access.expose();
        assert!(!a.is_empty() && a.bytes().all(|b| (0x21..0x7f).contains(&b)));
        assert!(t.lifetime > Duration::ZERO && t.lifetime <= MAX_LIFETIME);
        if let Some(r) = &t.refresh {
            assert!(r.expose().bytes().all(|b| (0x21..0x7f).contains(&b)));
        }
    }
    if let Ok(code) = parse_code(data) {
        assert!(!code.is_empty());
    }
}

/// Any string as a base URL: never panics; an accepted URL is in normal form (parsing it again
/// gives itself), has no trailing slash, and uses http:// only for loopback.
pub fn base_url(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(b) = BaseUrl::parse(s) {
        let n = b.as_str();
        assert!(!n.ends_with('/'));
        assert!(n.starts_with("https://") || n.starts_with("http://"));
        assert!(!n.contains('?') && !n.contains('#'));
        assert_eq!(BaseUrl::parse(n).expect("normal form parses").as_str(), n);
    }
}

static INIT: Once = Once::new();

/// Split `data` into up to `n` C strings at 0xff bytes; byte 0 in a part ends that string early.
fn parts(data: &[u8], n: usize) -> Vec<CString> {
    let mut v: Vec<CString> = data
        .splitn(n, |b| *b == 0xff)
        .map(|p| CString::new(p.split(|b| *b == 0).next().unwrap_or(&[])).unwrap())
        .collect();
    while v.len() < n {
        v.push(CString::new("").unwrap());
    }
    v
}

fn ptr(s: &CString, null: bool) -> *const c_char {
    if null {
        std::ptr::null()
    } else {
        s.as_ptr()
    }
}

unsafe extern "C" fn sink(_level: u32, _msg: *const std::ffi::c_char, _: *mut std::ffi::c_void) {}

/// The C argument layer: arbitrary bytes as C strings (NULL, empty, invalid UTF-8, embedded
/// NULs, control characters) and arbitrary buffer sizes, through every exported function. Never
/// a panic or crash; outputs stay inside the buffer; the status is one of the documented codes.
/// Base URLs that happen to be valid point at a closed loopback port, with timeout_ms 1.
pub fn ffi_args(data: &[u8]) {
    INIT.call_once(|| unsafe {
        let (n, v) = (
            CString::new("timeout_ms").unwrap(),
            CString::new("1").unwrap(),
        );
        findity_set_option(n.as_ptr(), v.as_ptr());
    });
    if data.len() < 3 {
        return;
    }
    let (flags, size, rest) = (data[0], data[1] as usize, &data[2..]);
    let p = parts(rest, 6);
    let base = if flags & 0x40 != 0 {
        // Sometimes a base URL that parses, so the paths past validation are reached too.
        CString::new(format!("http://127.0.0.1:9/{}", p[0].to_string_lossy())).unwrap_or_default()
    } else {
        p[0].clone()
    };
    let canary = 0xA5u8;
    let mut buf = vec![canary; size + 16];
    let mut out_len = usize::MAX;
    let codes = FINDITY_OK..=FINDITY_ERR_INTERNAL;
    unsafe {
        let rc = if flags & 1 != 0 {
            findity_user_token(
                ptr(&base, flags & 2 != 0),
                ptr(&p[1], flags & 4 != 0),
                ptr(&p[2], flags & 8 != 0),
                ptr(&p[3], flags & 16 != 0),
                if flags & 32 != 0 {
                    std::ptr::null_mut()
                } else {
                    buf.as_mut_ptr().cast()
                },
                size,
                &mut out_len,
            )
        } else {
            findity_get_token(
                ptr(&base, flags & 2 != 0),
                ptr(&p[1], flags & 4 != 0),
                ptr(&p[2], flags & 8 != 0),
                if flags & 32 != 0 {
                    std::ptr::null_mut()
                } else {
                    buf.as_mut_ptr().cast()
                },
                size,
                &mut out_len,
            )
        };
        assert!(codes.contains(&rc), "status {rc}");
        assert!(
            buf[size..].iter().all(|b| *b == canary),
            "wrote past buf_len"
        );
        assert!(codes.contains(&findity_invalidate(
            ptr(&base, flags & 2 != 0),
            ptr(&p[1], false),
            ptr(&p[3], flags & 16 != 0)
        )));
        // Options: names and values from the input (unknown ones must be refused cleanly).
        // timeout_ms is kept at 1 so no iteration waits.
        // shared_cache is left alone too: a fuzzed path would create directories.
        if !p[4].as_bytes().starts_with(b"timeout")
            && !p[4].as_bytes().starts_with(b"ca_file")
            && !p[4].as_bytes().starts_with(b"shared")
        {
            let rc = findity_set_option(ptr(&p[4], false), ptr(&p[5], flags & 4 != 0));
            assert!(codes.contains(&rc));
            if rc == FINDITY_OK {
                // Back to the default (for options that change the HTTP client).
                let empty = CString::new("").unwrap();
                findity_set_option(p[4].as_ptr(), empty.as_ptr());
            }
        }
        let mut ebuf = vec![canary; size + 16];
        let rc = findity_last_error(ebuf.as_mut_ptr().cast(), size, &mut out_len);
        assert!(
            rc == FINDITY_OK || rc == FINDITY_ERR_BUFFER_TOO_SMALL,
            "last_error status {rc}"
        );
        assert!(
            ebuf[size..].iter().all(|b| *b == canary),
            "last_error wrote past buf_len"
        );
        let _ = findity_last_http_status();
        // The cache-only lookups and the conditional invalidation, with the same hostile keys.
        let mut cbuf = vec![canary; size + 16];
        let rc = findity_cached_token(
            ptr(&base, flags & 2 != 0),
            ptr(&p[1], flags & 4 != 0),
            ptr(&p[2], flags & 8 != 0),
            ptr(&p[3], flags & 16 != 0),
            if flags & 32 != 0 {
                std::ptr::null_mut()
            } else {
                cbuf.as_mut_ptr().cast()
            },
            size,
            &mut out_len,
        );
        assert!(
            (FINDITY_OK..=FINDITY_ERR_NOT_CACHED).contains(&rc),
            "cached_token status {rc}"
        );
        assert!(
            cbuf[size..].iter().all(|b| *b == canary),
            "cached_token wrote past buf_len"
        );
        let mut secs = u64::MAX;
        let rc = findity_token_expires_in(
            ptr(&base, flags & 2 != 0),
            ptr(&p[1], flags & 4 != 0),
            ptr(&p[3], flags & 16 != 0),
            if flags & 32 != 0 {
                std::ptr::null_mut()
            } else {
                &mut secs
            },
        );
        assert!(codes.contains(&rc), "expires_in status {rc}");
        assert!(
            codes.contains(&findity_invalidate_token(
                ptr(&base, flags & 2 != 0),
                ptr(&p[1], false),
                ptr(&p[3], flags & 16 != 0),
                ptr(&p[2], flags & 8 != 0),
            )),
            "invalidate_token"
        );
        // Stats into a buffer of an arbitrary size: only whole u64 fields, never past out_size.
        let mut sbuf = vec![canary; size + 16];
        let rc = findity_stats(
            if flags & 32 != 0 {
                std::ptr::null_mut()
            } else {
                sbuf.as_mut_ptr().cast()
            },
            size,
        );
        assert!(codes.contains(&rc), "stats status {rc}");
        assert!(
            sbuf[size..].iter().all(|b| *b == canary),
            "stats wrote past out_size"
        );
        let v = std::ffi::CStr::from_ptr(findity_version());
        assert!(!v.to_bytes().is_empty());
        if flags & 0x80 != 0 {
            // Installing and removing the log callback while calls run elsewhere.
            findity_set_log_callback(Some(sink), std::ptr::null_mut());
            findity_set_log_callback(None, std::ptr::null_mut());
        }
        if flags == 0xff {
            findity_clear_cache();
        }
    }
}
