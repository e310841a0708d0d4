'use strict';
// Loading libfindity and its C signatures: the only module of this package that uses koffi.
//
// The library is looked for in this order, the first that loads wins:
//   1. $FINDITY_LIB: a path to the library file (or to a directory holding it);
//   2. the copy bundled in this package: prebuilds/<platform>-<arch>/libfindity.so
//      (findity.dll, libfindity.dylib);
//   3. the system loader (LD_LIBRARY_PATH, rpath, ldconfig): "libfindity.so".
// A $FINDITY_LIB that does not load is reported with process.emitWarning and the next place is
// tried; if none loads, loading this package throws one Error naming the three places.
//
// Every C function of findity.h is declared once, in declare(). The main thread and each worker
// thread (lib/worker.cjs) load the same file and declare the same functions; calls are koffi's
// synchronous calls, so a call and the reading of its thread-local last error happen on one thread.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

const ENV_VAR = 'FINDITY_LIB';
const ABI_MAJOR = 0; // the FINDITY_VERSION_MAJOR whose signatures are declared below
const LIB_FILE = process.platform === 'win32' ? 'findity.dll'
  : process.platform === 'darwin' ? 'libfindity.dylib' : 'libfindity.so';
const PREBUILT = path.join(__dirname, '..', 'prebuilds', `${process.platform}-${process.arch}`, LIB_FILE);

const STATUS = ['OK', 'INVALID_ARGUMENT', 'BUFFER_TOO_SMALL', 'NETWORK', 'AUTH', 'SERVER', 'INTERNAL', 'NOT_CACHED'];
const OK = 0;
const BUFFER_TOO_SMALL = 2;
const NOT_CACHED = 7;
const INITIAL_BUFFER_SIZE = 2048;
const MAX_ATTEMPTS = 8;

// typedef void (*FindityLogCallback)(uint32_t level, const char *message, void *userdata)
const FindityLogCallback = koffi.proto('void FindityLogCallback(uint32_t level, const char *message, void *userdata)');

// struct FindityStats: 9 counters, uint64_t failures[7], 7 more counters (fields only appended).
const STATS_BEFORE = ['cacheHits', 'cacheMisses', 'clientCredentialsRequests', 'refreshTokenRequests',
  'authorizationGrantRequests', 'authorizationCodeRequests', 'backgroundRefreshes', 'fallbacks', 'retries'];
const STATS_AFTER = ['throttlePauses', 'throttleWaits', 'idleEvictions', 'storeHits', 'storeWrites',
  'storeLockWaits', 'storeErrors'];
const FindityStats = koffi.struct('FindityStats', {
  ...Object.fromEntries(STATS_BEFORE.map((k) => [k, 'uint64_t'])),
  failures: koffi.array('uint64_t', 7, 'Array'),
  ...Object.fromEntries(STATS_AFTER.map((k) => [k, 'uint64_t'])),
});

/** The whole C ABI of findity.h, declared once. */
function declare(lib) {
  return {
    get_token: lib.func('uint32_t findity_get_token(const char *base_url, const char *client_id, '
      + 'const char *client_secret, uint8_t *buf, size_t buf_len, _Out_ size_t *out_len)'),
    user_token: lib.func('uint32_t findity_user_token(const char *base_url, const char *client_id, '
      + 'const char *client_secret, const char *user_id, uint8_t *buf, size_t buf_len, _Out_ size_t *out_len)'),
    // user_id NULL: the organization token. Never sends a request, never waits.
    cached_token: lib.func('uint32_t findity_cached_token(const char *base_url, const char *client_id, '
      + 'const char *client_secret, const char *user_id, uint8_t *buf, size_t buf_len, _Out_ size_t *out_len)'),
    invalidate: lib.func('uint32_t findity_invalidate(const char *base_url, const char *client_id, const char *user_id)'),
    invalidate_token: lib.func('uint32_t findity_invalidate_token(const char *base_url, const char *client_id, '
      + 'const char *user_id, const char *token)'),
    token_expires_in: lib.func('uint32_t findity_token_expires_in(const char *base_url, const char *client_id, '
      + 'const char *user_id, _Out_ uint64_t *seconds)'),
    clear_cache: lib.func('void findity_clear_cache(void)'),
    set_option: lib.func('uint32_t findity_set_option(const char *name, const char *value)'),
    set_log_callback: lib.func('uint32_t findity_set_log_callback(FindityLogCallback *callback, void *userdata)'),
    stats: lib.func('uint32_t findity_stats(_Out_ FindityStats *out, size_t out_size)'),
    last_error: lib.func('uint32_t findity_last_error(uint8_t *buf, size_t buf_len, _Out_ size_t *out_len)'),
    last_http_status: lib.func('uint16_t findity_last_http_status(void)'),
    version: lib.func('const char *findity_version(void)'),
  };
}

/** dlopen `file`, check that it is a libfindity whose ABI this package speaks, declare it. */
function open(file) {
  const lib = koffi.load(file);
  let version;
  try {
    version = lib.func('const char *findity_version(void)');
  } catch {
    throw new Error('loaded, but it is not libfindity (no findity_version symbol)');
  }
  const found = version() || '';
  if (found.split('.')[0] !== String(ABI_MAJOR)) {
    throw new Error(`loaded libfindity ${found}, but this package needs version ${ABI_MAJOR}.x`);
  }
  return declare(lib);
}

/** Find and load the library (main thread): { fns, file }. */
function load() {
  const tried = [];
  const env = process.env[ENV_VAR] || '';
  if (env) {
    let file = env;
    try {
      if (fs.statSync(env).isDirectory()) file = path.join(env, LIB_FILE);
    } catch { /* koffi says why */ }
    try {
      return { fns: open(file), file: path.resolve(file) };
    } catch (e) {
      tried.push(`1. $${ENV_VAR}=${env}: ${e.message}`);
    }
  } else {
    tried.push(`1. $${ENV_VAR} (a path to ${LIB_FILE}): not set`);
  }
  const fallback = (fns, file) => {
    if (env) { // set, but it did not load: say so rather than silently use another copy
      process.emitWarning(`findity-auth: $${ENV_VAR}=${env} could not be loaded (${tried[0]}); using ${file} instead`,
        { code: 'FINDITY_LIB_NOT_LOADED' });
    }
    return { fns, file };
  };
  if (fs.existsSync(PREBUILT)) {
    try {
      return fallback(open(PREBUILT), PREBUILT);
    } catch (e) {
      tried.push(`2. the copy bundled in findity-auth, ${PREBUILT}: ${e.message}`);
    }
  } else {
    tried.push(`2. the copy bundled in findity-auth, ${PREBUILT}: no such file`);
  }
  try {
    return fallback(open(LIB_FILE), LIB_FILE);
  } catch (e) {
    tried.push(`3. the system loader, ${LIB_FILE}: ${e.message}`);
  }
  const err = new Error(`findity-auth could not load the native library ${LIB_FILE}. Tried, in order:\n  `
    + `${tried.join('\n  ')}\nFix: set ${ENV_VAR} to the path of ${LIB_FILE}, reinstall findity-auth with the `
    + `library for ${process.platform}-${process.arch} in prebuilds/, or install ${LIB_FILE} where the system loader finds it.`);
  err.code = 'FINDITY_LIB_NOT_FOUND';
  throw err;
}

/**
 * Run a token call fn(buf, bufLen, outLen) with this thread's buffer, growing it on
 * BUFFER_TOO_SMALL (the library keeps the token cached, so the retry sends no request).
 * call returns { status, token }; on failure, { status, httpStatus, message } read on this
 * thread right after the call. lastError(status) reads it for any other failed call.
 */
function makeCaller(fns) {
  let buf = Buffer.alloc(INITIAL_BUFFER_SIZE);
  function lastError(status) {
    const httpStatus = fns.last_http_status();
    let message = '';
    let b = Buffer.alloc(1024);
    const len = [0];
    let st = fns.last_error(b, b.length, len);
    if (st === BUFFER_TOO_SMALL) {
      b = Buffer.alloc(Number(len[0]) + 1);
      st = fns.last_error(b, b.length, len);
    }
    if (st === OK) message = b.toString('utf8', 0, Number(len[0]));
    if (status === BUFFER_TOO_SMALL) return { status: 6, httpStatus, message: `the token kept growing: ${message}` };
    return { status, httpStatus, message };
  }
  function call(fn) {
    // A call made from inside another on this thread (from a log callback) must not share the
    // buffer: take it for the duration of the call.
    let b = buf;
    buf = null;
    const outLen = [0];
    if (b === null) b = Buffer.alloc(INITIAL_BUFFER_SIZE);
    let status = fn(b, b.length, outLen);
    for (let i = 0; status === BUFFER_TOO_SMALL && i < MAX_ATTEMPTS; i++) {
      const needed = Number(outLen[0]) + 1;
      b = Buffer.alloc(needed > b.length ? needed : b.length * 2);
      status = fn(b, b.length, outLen);
    }
    let result;
    if (status === OK) result = { status, token: b.toString('utf8', 0, Number(outLen[0])) };
    else if (status === NOT_CACHED) result = { status };
    else result = lastError(status);
    buf = b;
    return result;
  }
  return { call, lastError };
}

module.exports = {
  koffi, open, load, makeCaller, FindityLogCallback, FindityStats, STATS_BEFORE, STATS_AFTER,
  STATUS, OK, NOT_CACHED, ENV_VAR, LIB_FILE,
};
