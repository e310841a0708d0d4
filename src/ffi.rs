//! The C ABI. Every function is a thin shell: check the arguments, cross the panic boundary
//! once (in [`boundary`]), call plain Rust. The one exception is the token calls' cache hit
//! ([`snapshot_hit`]), which runs before the boundary because it cannot panic. Outputs are
//! written only on success (and the needed length on FINDITY_ERR_BUFFER_TOO_SMALL). The header
//! is generated from this file.

use crate::cache::{CallerKey, Key, RawKey, Request};
use crate::error::{set_last_error, with_last_error, Error, Status};
use crate::state::state;
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success.
pub const FINDITY_OK: u32 = 0;
/// A NULL pointer, invalid UTF-8, an empty id, a bad base URL or option. Nothing was sent.
pub const FINDITY_ERR_INVALID_ARGUMENT: u32 = 1;
/// The output buffer is too small; `*out_len` holds the length needed (without the NUL).
pub const FINDITY_ERR_BUFFER_TOO_SMALL: u32 = 2;
/// No usable HTTP answer: connect failure, TLS failure, timeout, connection cut.
pub const FINDITY_ERR_NETWORK: u32 = 3;
/// The server refused: bad client id or secret, unknown user, refused grant (HTTP 400/401/403).
pub const FINDITY_ERR_AUTH: u32 = 4;
/// The server failed or answered something unusable (5xx, 429 past the timeout, bad JSON, redirect).
pub const FINDITY_ERR_SERVER: u32 = 5;
/// A bug in libfindity (a caught panic). Please report it.
pub const FINDITY_ERR_INTERNAL: u32 = 6;
/// findity_cached_token only: no token can be handed out without a request or a wait.
pub const FINDITY_ERR_NOT_CACHED: u32 = 7;

/// Library version; `findity_version()` returns the same as "MAJOR.MINOR.PATCH".
/// MAJOR changes whenever a function, status code or behaviour documented here changes incompatibly.
pub const FINDITY_VERSION_MAJOR: u32 = 0;
pub const FINDITY_VERSION_MINOR: u32 = 1;
pub const FINDITY_VERSION_PATCH: u32 = 0;

/// Log levels passed to a log callback; also the values of the "log_level" option by name
/// ("error", "warn", "info", "debug", "off").
pub const FINDITY_LOG_ERROR: u32 = 1;
pub const FINDITY_LOG_WARN: u32 = 2;
pub const FINDITY_LOG_INFO: u32 = 3;
pub const FINDITY_LOG_DEBUG: u32 = 4;

/// A log callback: `level` is FINDITY_LOG_*, `message` a UTF-8 line without newline, valid only
/// during the call, `userdata` what was passed to findity_set_log_callback. Called on whichever
/// thread logs, background refresh threads included; it must not block for long and must not
/// unwind (throw) into the library.
pub type FindityLogCallback =
    Option<unsafe extern "C" fn(level: u32, message: *const c_char, userdata: *mut c_void)>;

/// Counters since the process (or, after fork(), the child) started using the library.
/// Each counter is exact; the set is not one atomic snapshot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FindityStats {
    /// Token calls answered from the cache without waiting for a request.
    pub cache_hits: u64,
    /// Token calls that made, or waited for, a token request.
    pub cache_misses: u64,
    /// Requests sent, by grant.
    pub client_credentials_requests: u64,
    pub refresh_token_requests: u64,
    pub authorization_grant_requests: u64,
    pub authorization_code_requests: u64,
    /// Renewals started in the background ahead of expiry.
    pub background_refreshes: u64,
    /// Refresh tokens refused (or of unknown fate) followed by the primary grant.
    pub fallbacks: u64,
    /// Requests repeated after a retryable failure (connect error, 408, 429, 5xx).
    pub retries: u64,
    /// Failed calls by status: failures[FINDITY_ERR_NETWORK] and so on. [0] is unused, and so is
    /// [FINDITY_ERR_BUFFER_TOO_SMALL]: asking for the size is not a failure, nor is asking whether
    /// a token is cached (FINDITY_ERR_NOT_CACHED, which has no slot).
    pub failures: [u64; 7],
    /// 429 (or 503 with Retry-After) answers that paused every token request to a base URL.
    pub throttle_pauses: u64,
    /// Token requests that waited for such a pause, or for pacing, before they were sent.
    pub throttle_waits: u64,
    /// Cache entries dropped after `idle_ms` without use.
    pub idle_evictions: u64,
    /// Shared cache (option "shared_cache"): tokens taken from the store that another process
    /// (or an earlier run) obtained, with no request.
    pub store_hits: u64,
    /// Records written to the store.
    pub store_writes: u64,
    /// Renewals that waited for another process holding the key's lock.
    pub store_lock_waits: u64,
    /// Store failures (unreachable, timed out, unreadable or undecryptable record); the call
    /// went on process-locally and did not fail because of it.
    pub store_errors: u64,
}

const MAX_ID_LEN: usize = 1024;
const MAX_SECRET_LEN: usize = 4096;

/// Get an organization access token (OAuth client credentials) for `client_id`.
///
/// `base_url`: "production", "stage", or "https://host[:port][/prefix]" ("http://" only for
/// loopback hosts such as the emulator). The token is cached per (base_url, client_id) for the
/// whole process, renewed in the background before it expires, and shared by all threads; at most
/// one request per key is in flight at a time.
///
/// Output: on FINDITY_OK the token and a NUL are written to `buf` and `*out_len` is set to the
/// token's length (without the NUL). If `buf_len` is smaller than length + 1 (`buf` may be NULL
/// with `buf_len` 0 to ask for the size) the result is FINDITY_ERR_BUFFER_TOO_SMALL with
/// `*out_len` set to the length needed; the token stays cached, so calling again with a larger
/// buffer sends no request. `out_len` may be NULL. Nothing is written on other errors.
///
/// Blocks for at most `timeout_ms` (see findity_set_option) when no valid token is cached; a
/// cached token is returned without waiting. Thread-safe; not async-signal-safe (never call it,
/// or any findity function, from a signal handler). All pointers are borrowed for the call
/// only. On failure the thread-local last error is set (findity_last_error).
///
/// # Safety
/// Non-NULL string arguments must point to NUL-terminated strings; `buf` must be writable for
/// `buf_len` bytes; `out_len`, if not NULL, must be writable.
#[no_mangle]
pub unsafe extern "C" fn findity_get_token(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> u32 {
    token_call(
        base_url,
        client_id,
        client_secret,
        None,
        buf,
        buf_len,
        out_len,
    )
}

/// Get an access token for one user (employee) of the organization: an authorization grant for
/// `user_id` (a Findity person id or ExternalSourceID) made with the organization token, then
/// the code exchange. Cached per (base_url, client_id, user_id); the organization token used is
/// the one findity_get_token caches. Arguments, output, blocking and thread-safety as
/// findity_get_token.
///
/// # Safety
/// As findity_get_token; `user_id` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn findity_user_token(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    user_id: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> u32 {
    token_call(
        base_url,
        client_id,
        client_secret,
        Some(user_id),
        buf,
        buf_len,
        out_len,
    )
}

/// The cached token for (base_url, client_id, user_id; user_id NULL: the organization token) if
/// one can be handed out right now, under the same rules as findity_get_token (its safety margin,
/// background renewal ahead of expiry); otherwise FINDITY_ERR_NOT_CACHED. Never sends a request
/// and never waits for one: for event loops and async hosts, which call it first and run
/// findity_get_token / findity_user_token on a worker only when it says FINDITY_ERR_NOT_CACHED.
/// A caller whose secret differs from the one the token was obtained with gets
/// FINDITY_ERR_NOT_CACHED too. Output buffer rules as findity_get_token. Thread-safe.
///
/// # Safety
/// As findity_get_token; `user_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn findity_cached_token(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    user_id: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> u32 {
    if snapshot_hit(
        base_url,
        client_id,
        client_secret,
        user_id,
        buf,
        buf_len,
        out_len,
    ) {
        return FINDITY_OK;
    }
    let user_id = (!user_id.is_null()).then_some(user_id);
    boundary(|| {
        let out = OutBuf::new(buf, buf_len, out_len)?;
        let raw = raw_key(base_url, client_id, client_secret, user_id)?;
        let st = state();
        let req = request(&raw)?;
        match st.cache.cached(st, &req, |t| out.write(t))? {
            Some(written) => written,
            None => Err(Error::new(
                Status::NotCached,
                "no token for that key can be handed out without a request",
            )),
        }
    })
}

/// Forget the cached access token for (base_url, client_id, user_id), or the organization token
/// when `user_id` is NULL. Call it when the API answers 401 with a token from this library; the
/// next call gets a new one (with the refresh token when one is held). FINDITY_OK also when
/// nothing was cached. Thread-safe; sends no request.
///
/// # Safety
/// Non-NULL arguments must point to NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn findity_invalidate(
    base_url: *const c_char,
    client_id: *const c_char,
    user_id: *const c_char,
) -> u32 {
    boundary(|| {
        state()
            .cache
            .invalidate(&key(base_url, client_id, user_id)?);
        Ok(())
    })
}

/// Forget the cached access token for (base_url, client_id, user_id; user_id NULL: the
/// organization token) only if it is still `token`: the one the API answered 401 to. A newer
/// token, renewed meanwhile (say, by another thread that got the same 401), is kept, so N
/// threads reporting the same rejected token cause one renewal. With a shared cache it reaches
/// the store too, also from a process that never served the key: the next token call for it
/// neither adopts `token` from the store nor leaves it there (it renews and replaces it), so
/// processes and hosts that get the same 401 renew once. FINDITY_OK either way, also when
/// nothing was cached. Prefer it to findity_invalidate. Thread-safe; sends no request.
///
/// # Safety
/// Non-NULL arguments must point to NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn findity_invalidate_token(
    base_url: *const c_char,
    client_id: *const c_char,
    user_id: *const c_char,
    token: *const c_char,
) -> u32 {
    boundary(|| {
        let token = c_bytes(token, "token")?;
        state()
            .cache
            .invalidate_token(&key(base_url, client_id, user_id)?, token);
        Ok(())
    })
}

/// Seconds until the cached access token for (base_url, client_id, user_id) expires (user_id
/// NULL: the organization token), e.g. to print it next to the token or to schedule work. The
/// library renews tokens by itself: callers never need this to stay valid. Sends no request.
/// `*seconds` is 0 when no token is cached for that key (FINDITY_OK all the same). Thread-safe.
///
/// # Safety
/// Non-NULL string arguments must point to NUL-terminated strings; `seconds` must be writable.
#[no_mangle]
pub unsafe extern "C" fn findity_token_expires_in(
    base_url: *const c_char,
    client_id: *const c_char,
    user_id: *const c_char,
    seconds: *mut u64,
) -> u32 {
    boundary(|| {
        if seconds.is_null() {
            return Err(Error::invalid_argument("seconds is NULL"));
        }
        let key = key(base_url, client_id, user_id)?;
        *seconds = state().cache.expires_in(&key).unwrap_or_default().as_secs();
        Ok(())
    })
}

/// Forget every cached token, organization and user, in this process. Requests in flight
/// finish but their tokens are not kept. Thread-safe.
#[no_mangle]
pub extern "C" fn findity_clear_cache() {
    boundary(|| {
        state().cache.clear();
        Ok(())
    });
}

/// Set a process-wide option; an empty `value` restores its default. Options:
///  - "timeout_ms" (30000): the most a call may block, retries and waiting included.
///  - "connect_timeout_ms" (10000): TCP + TLS connection set-up. A host that drops packets costs
///    this and one retry.
///  - "refused_ms" (3000): how long refused connections (nothing listens at the address) are
///    retried, from the first refusal; 0: no retry. The error names host and port.
///  - "ca_file": a PEM file whose certificates are trusted in addition to the built-in roots
///    (for TLS-inspecting proxies). Read when set. Certificate checks can't be turned off.
///  - "proxy": "http://host:port" for all requests except loopback; by default HTTPS_PROXY,
///    ALL_PROXY and NO_PROXY from the environment are used.
///  - "user_agent": the User-Agent header (default "libfindity/VERSION").
///  - "renewal_threads" (4): background renewal workers, 1 to 64; renewals beyond them queue in
///    order of expiry (a caller that needs a token meanwhile renews it itself).
///  - "idle_ms" (1800000): a cache entry unused for this long is dropped, whatever it holds, so
///    a process that sees many users over time stays bounded.
///  - "shared_cache" ("" = off; default: $FINDITY_SHARED_CACHE, read at first use): share
///    tokens with other processes and hosts, one token request per key per renewal across all
///    of them. "file:/path/to/dir" (created 0700; refused if another user owns it or group or
///    others may write to it) or "redis://[user:password@]host:port[/db]" ("rediss://" for
///    TLS; Redis Cluster works: a key's lock and record share one hash slot). Records are
///    encrypted with a key derived from the client secret. A store that is down or slow never
///    fails a call: it is logged once and the process works on its own. The store's delays
///    stay inside timeout_ms.
///
/// An unknown name or bad value is FINDITY_ERR_INVALID_ARGUMENT and changes nothing.
/// Thread-safe; applies to requests started afterwards.
///
/// # Safety
/// Non-NULL arguments must point to NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn findity_set_option(name: *const c_char, value: *const c_char) -> u32 {
    boundary(|| {
        let name = c_str(name, "name")?;
        let value = c_str(value, "value")?;
        state().set_option(name, value)
    })
}

/// Send log lines to `callback` instead of stderr (NULL: back to stderr, where lines go only
/// when FINDITY_LOG=error|warn|info|debug is set). Installing a callback enables info-level
/// lines unless FINDITY_LOG or the "log_level" option chose a level. Lines name the grant, the
/// endpoint and the key, and show tokens only as a short fingerprint ("#1a2b3c4d"); never a
/// secret, token or code. A thread that is logging while the callback is replaced may still call
/// the old one once: keep `userdata` valid. The callback may call the library (no lock is held
/// while logging), but a token call for the key whose request is being logged waits for that
/// request, up to timeout_ms, if it runs on the thread making it. Thread-safe; always FINDITY_OK.
///
/// # Safety
/// `callback`, if not NULL, must be safe to call from any thread with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn findity_set_log_callback(
    callback: FindityLogCallback,
    userdata: *mut c_void,
) -> u32 {
    boundary(|| {
        crate::log::set_callback(callback, userdata);
        Ok(())
    })
}

/// Fill `*out` with the library's counters (see FindityStats). Pass `sizeof(FindityStats)` as
/// `out_size`: a caller built against an older, shorter FindityStats gets the fields it knows
/// (fields are only ever appended). Thread-safe; sends nothing.
///
/// # Safety
/// `out` must be NULL (FINDITY_ERR_INVALID_ARGUMENT) or point to `out_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn findity_stats(out: *mut FindityStats, out_size: usize) -> u32 {
    boundary(|| {
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        if out_size < std::mem::size_of::<u64>() || out_size % std::mem::size_of::<u64>() != 0 {
            return Err(Error::invalid_argument(
                "out_size must be sizeof(FindityStats) (a multiple of 8)",
            ));
        }
        let s = &state().stats;
        let get = crate::stats::get;
        let mut failures = [0u64; 7];
        for (f, c) in failures.iter_mut().zip(&s.failures) {
            *f = get(c);
        }
        let stats = FindityStats {
            cache_hits: s.hits(),
            cache_misses: get(&s.misses),
            client_credentials_requests: get(&s.client_credentials),
            refresh_token_requests: get(&s.refresh_token),
            authorization_grant_requests: get(&s.authorization_grant),
            authorization_code_requests: get(&s.authorization_code),
            background_refreshes: get(&s.background_refreshes),
            fallbacks: get(&s.fallbacks),
            retries: get(&s.retries),
            failures,
            throttle_pauses: get(&s.throttled),
            throttle_waits: get(&s.throttle_waits),
            idle_evictions: get(&s.evicted),
            store_hits: get(&s.store_hits),
            store_writes: get(&s.store_writes),
            store_lock_waits: get(&s.store_lock_waits),
            store_errors: get(&s.store_errors),
        };
        let n = out_size.min(std::mem::size_of::<FindityStats>());
        // SAFETY: `out` has out_size writable bytes; n <= both sizes.
        std::ptr::copy_nonoverlapping(
            (&stats as *const FindityStats).cast::<u8>(),
            out.cast::<u8>(),
            n,
        );
        Ok(())
    })
}

/// Copy this thread's last error message (of the most recent failing call on this thread;
/// successful calls leave it) into `buf`, with the same buffer rules as findity_get_token.
/// Empty when no call has failed. The message says what failed, the endpoint, the HTTP status
/// and the server's error code and description; it never holds a secret, token or code.
/// Does not change the last error.
///
/// # Safety
/// `buf` must be writable for `buf_len` bytes; `out_len`, if not NULL, must be writable.
#[no_mangle]
pub unsafe extern "C" fn findity_last_error(
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> u32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let out = OutBuf::new(buf, buf_len, out_len)?;
        with_last_error(|msg, _| out.write(msg))
    }));
    match r {
        Ok(Ok(())) => FINDITY_OK,
        Ok(Err(e)) => e.status as u32,
        Err(_) => FINDITY_ERR_INTERNAL,
    }
}

/// HTTP status of the answer behind this thread's last error; 0 when there was no HTTP answer
/// (or no error). Thread-local like findity_last_error.
#[no_mangle]
pub extern "C" fn findity_last_http_status() -> u16 {
    catch_unwind(|| with_last_error(|_, status| status)).unwrap_or(0)
}

/// The library version, "MAJOR.MINOR.PATCH": a static string, never freed by the caller.
#[no_mangle]
pub extern "C" fn findity_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Run `f`, turning errors into status codes plus the thread's last error, and panics into
/// FINDITY_ERR_INTERNAL: no unwinding ever crosses into C.
fn boundary(f: impl FnOnce() -> Result<(), Error>) -> u32 {
    let status = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return FINDITY_OK,
        Ok(Err(e)) => e,
        Err(_) => {
            Error::internal("internal error in libfindity (a caught panic); please report it")
        }
    };
    // The bookkeeping is inside the boundary too: nothing may unwind out of an extern "C" fn.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        set_last_error(&status);
        // Asking for the size, or whether a token is cached, is not failing.
        if !matches!(status.status, Status::BufferTooSmall | Status::NotCached) {
            state().stats.failure(status.status as u32);
        }
    }));
    status.status as u32
}

/// The body of both token functions (`user_id` None for the organization token): this
/// thread's snapshot, else the full path.
#[inline(always)]
unsafe fn token_call(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    user_id: Option<*const c_char>,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> u32 {
    // A NULL user_id is an error for findity_user_token, never the organization token: the
    // full path says so.
    let snapshot_user = match user_id {
        None => Some(std::ptr::null()),
        Some(u) => (!u.is_null()).then_some(u),
    };
    if let Some(user) = snapshot_user {
        if snapshot_hit(
            base_url,
            client_id,
            client_secret,
            user,
            buf,
            buf_len,
            out_len,
        ) {
            return FINDITY_OK;
        }
    }
    full_token_call(
        base_url,
        client_id,
        client_secret,
        user_id,
        buf,
        buf_len,
        out_len,
    )
}

/// The full path of the token functions, outside the snapshot's frame.
#[inline(never)]
unsafe fn full_token_call(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    user_id: Option<*const c_char>,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> u32 {
    boundary(|| {
        let out = OutBuf::new(buf, buf_len, out_len)?;
        token(&raw_key(base_url, client_id, client_secret, user_id)?, out)
    })
}

/// The cache hit of the token calls: this thread's snapshot, tried first and in a small frame
/// of its own that carries no Result<_, Error> (inside the full path's frame, moving one cost
/// a store-forwarding stall and spills worth half the hit; perf annotate, bench/bench_cache.c).
/// It runs outside the panic boundary because nothing in it can panic (see
/// crate::cache::snapshot::hit), and before the process state is looked up (a snapshot knows
/// the fork generation it belongs to).
/// `user_id` NULL: the organization token. false: take the full path, which also reports every
/// error (a NULL, a buffer too small).
#[inline(always)]
unsafe fn snapshot_hit(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    user_id: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> bool {
    if base_url.is_null() || client_id.is_null() || client_secret.is_null() || buf.is_null() {
        return false;
    }
    let key = CallerKey {
        base_url,
        client_id,
        client_secret,
        user_id,
    };
    let out = OutBuf {
        buf,
        len: buf_len,
        out_len,
    };
    // SAFETY: NULLs checked above; the caller promised NUL-terminated strings.
    // A buffer too small is the full path's to report: nothing written here, not even
    // out_len (outputs are written on success or FINDITY_ERR_BUFFER_TOO_SMALL only).
    crate::cache::recent_hit(&key, |t| t.len() < buf_len && out.put(t).is_ok())
}

/// The caller's key as bytes (NULL checks only; a cache hit needs no more). Always inlined: as a
/// call returning a Result it cost the cache hit 10 ns of its 30 (bench/bench_cache.c).
#[inline(always)]
unsafe fn raw_key<'a>(
    base_url: *const c_char,
    client_id: *const c_char,
    client_secret: *const c_char,
    user_id: Option<*const c_char>,
) -> Result<RawKey<'a>, Error> {
    Ok(RawKey {
        base_url: c_bytes(base_url, "base_url")?,
        client_id: c_bytes(client_id, "client_id")?,
        client_secret: c_bytes(client_secret, "client_secret")?,
        user_id: user_id.map(|u| c_bytes(u, "user_id")).transpose()?,
    })
}

fn token(raw: &RawKey, out: OutBuf) -> Result<(), Error> {
    let st = state();
    let req = request(raw)?;
    st.cache
        .with_token(st, &req, |t| out.write(t))
        .and_then(|r| r)
        .map_err(|e| e.redact(&[req.client_secret]))
}

/// The caller's bytes checked: UTF-8, ids non-empty and plain, secret of sane length.
fn request<'a>(raw: &RawKey<'a>) -> Result<Request<'a>, Error> {
    Ok(Request {
        base_url: utf8(raw.base_url, "base_url")?,
        client_id: id(raw.client_id, "client_id")?,
        client_secret: secret(raw.client_secret)?,
        user_id: raw.user_id.map(|u| id(u, "user_id")).transpose()?,
    })
}

/// A cache key from (base_url, client_id, user_id or NULL for the organization), checked like
/// the token calls check them.
unsafe fn key(
    base_url: *const c_char,
    client_id: *const c_char,
    user_id: *const c_char,
) -> Result<Key, Error> {
    let base_url = c_str(base_url, "base_url")?;
    let client_id = id(c_bytes(client_id, "client_id")?, "client_id")?;
    let user_id = if user_id.is_null() {
        None
    } else {
        Some(id(c_bytes(user_id, "user_id")?, "user_id")?)
    };
    Key::parse(base_url, client_id, user_id)
}

/// A borrowed C string's bytes (no UTF-8 check yet: a cache hit doesn't need one).
unsafe fn c_bytes<'a>(p: *const c_char, name: &str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    Ok(CStr::from_ptr(p).to_bytes())
}

fn utf8<'a>(b: &'a [u8], name: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(b)
        .map_err(|_| Error::invalid_argument(format!("{name} is not valid UTF-8")))
}

/// A borrowed C string as UTF-8.
unsafe fn c_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Error> {
    utf8(c_bytes(p, name)?, name)
}

fn id<'a>(b: &'a [u8], name: &str) -> Result<&'a str, Error> {
    let s = utf8(b, name)?;
    if s.is_empty() {
        return Err(Error::invalid_argument(format!("{name} is empty")));
    }
    if s.len() > MAX_ID_LEN || s.chars().any(char::is_control) {
        return Err(Error::invalid_argument(format!(
            "{name} must be at most {MAX_ID_LEN} bytes without control characters"
        )));
    }
    Ok(s)
}

fn secret(b: &[u8]) -> Result<&str, Error> {
    let s = utf8(b, "client_secret")?;
    if s.is_empty() || s.len() > MAX_SECRET_LEN {
        return Err(Error::invalid_argument(format!(
            "client_secret must be 1 to {MAX_SECRET_LEN} bytes"
        )));
    }
    Ok(s)
}

/// The caller's output buffer, checked before any work is done.
struct OutBuf {
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
}

impl OutBuf {
    fn new(buf: *mut c_char, len: usize, out_len: *mut usize) -> Result<OutBuf, Error> {
        if buf.is_null() && len > 0 {
            return Err(Error::invalid_argument("buf is NULL but buf_len is not 0"));
        }
        Ok(OutBuf { buf, len, out_len })
    }

    fn write(&self, s: &str) -> Result<(), Error> {
        self.put(s).map_err(too_small)
    }

    /// Copy `s` and its NUL out, or Err(bytes needed) when the buffer is too small.
    #[inline(always)]
    fn put(&self, s: &str) -> Result<(), usize> {
        let needed = s.len();
        if !self.out_len.is_null() {
            // SAFETY: checked non-NULL; the caller promised it is writable.
            unsafe { *self.out_len = needed };
        }
        if self.len < needed + 1 {
            return Err(needed);
        }
        // SAFETY: buf is non-NULL (len > 0) and writable for len > needed bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.cast::<u8>(), needed);
            *self.buf.add(needed) = 0;
        }
        Ok(())
    }
}

#[cold]
fn too_small(needed: usize) -> Error {
    Error::new(
        Status::BufferTooSmall,
        format!("buffer too small: {needed} bytes plus the NUL are needed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_the_package() {
        let v = format!("{FINDITY_VERSION_MAJOR}.{FINDITY_VERSION_MINOR}.{FINDITY_VERSION_PATCH}");
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        let c = unsafe { CStr::from_ptr(findity_version()) };
        assert_eq!(c.to_str().unwrap(), v);
    }

    #[test]
    fn status_numbers_are_fixed() {
        assert_eq!(Status::InvalidArgument as u32, FINDITY_ERR_INVALID_ARGUMENT);
        assert_eq!(Status::BufferTooSmall as u32, FINDITY_ERR_BUFFER_TOO_SMALL);
        assert_eq!(Status::Network as u32, FINDITY_ERR_NETWORK);
        assert_eq!(Status::Auth as u32, FINDITY_ERR_AUTH);
        assert_eq!(Status::Server as u32, FINDITY_ERR_SERVER);
        assert_eq!(Status::Internal as u32, FINDITY_ERR_INTERNAL);
        assert_eq!(Status::NotCached as u32, FINDITY_ERR_NOT_CACHED);
    }
}
