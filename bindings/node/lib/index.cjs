'use strict';
// findity-auth: OAuth access tokens for the Findity Expense API, from libfindity.
//
// Caching, renewal, refresh tokens and single flight are done by the native library, for every
// thread of the process; this package is a thin wrapper of its C ABI (findity.h), loaded by
// lib/native.cjs. Synchronous functions call the library on the event loop's thread: none of
// them sends a request or waits for one. getToken/getUserToken first ask for a cached token on
// that thread (findity_cached_token: an already-resolved promise) and otherwise run the blocking
// call in a worker thread of this package's own (lib/worker.cjs), which also reads the call's
// thread-local last error; never on libuv's pool (koffi's async calls), where the error could
// not be read afterwards and a slow token request would hold one of the threads fetch needs.

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const native = require('./native.cjs');

const { fns, file: LIB_PATH } = native.load();
const { call, lastError } = native.makeCaller(fns);

const MAX_WORKERS = 8; // token calls blocked at once (each waits at most timeout_ms); more queue
const WORKER_IDLE_MS = 30000; // an idle worker ends after this long

class FindityError extends Error {
  /**
   * @param {string} status 'INVALID_ARGUMENT' | 'NETWORK' | 'AUTH' | 'SERVER' | 'INTERNAL'
   * @param {number} httpStatus HTTP status of the answer behind the failure, 0 when none
   * @param {string} message the library's message; never a secret, token or code
   */
  constructor(status, httpStatus, message) {
    super(message || `libfindity failed with status ${status}`);
    this.name = 'FindityError';
    this.status = status;
    this.httpStatus = httpStatus;
  }
}

function errorFor(result) {
  return new FindityError(native.STATUS[result.status] || String(result.status), result.httpStatus || 0, result.message);
}

function str(value, name) {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, not ${value === null ? 'null' : typeof value}`);
  }
  if (value.includes('\0')) {
    throw new FindityError('INVALID_ARGUMENT', 0, `${name} contains a NUL character`);
  }
  return value;
}

function optStr(value, name) {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, null or undefined, not ${typeof value}`);
  }
  return str(value, name);
}

function check(status) {
  if (status !== native.OK) throw errorFor(lastError(status));
}

// ---- the worker pool

const pending = new Map(); // id -> { resolve, reject, job }
const queue = []; // jobs waiting for a worker
const idle = []; // workers waiting for a job
let workers = 0;
let nextId = 1;

function spawn() {
  const w = new Worker(path.join(__dirname, 'worker.cjs'), { workerData: { file: LIB_PATH } });
  workers++;
  w.job = null;
  w.timer = null;
  w.on('message', (msg) => {
    const job = w.job;
    w.job = null;
    if (job) {
      pending.delete(job.id);
      if (msg.status === native.OK) job.resolve(msg.token);
      else job.reject(errorFor(msg));
    }
    release(w);
  });
  const gone = (why) => {
    if (w.gone) return;
    w.gone = true;
    workers--;
    if (w.timer) clearTimeout(w.timer);
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
    if (w.job) {
      pending.delete(w.job.id);
      w.job.reject(new FindityError('INTERNAL', 0, `findity-auth worker thread ended: ${why}`));
      w.job = null;
    }
    pump();
  };
  w.on('error', (e) => gone(e && e.message));
  w.on('exit', (code) => gone(`exit code ${code}`));
  return w;
}

function release(w) {
  w.unref(); // an idle worker never keeps the process alive
  idle.push(w);
  w.timer = setTimeout(() => {
    const i = idle.indexOf(w);
    if (i >= 0) {
      idle.splice(i, 1);
      w.terminate();
    }
  }, WORKER_IDLE_MS);
  w.timer.unref();
  pump();
}

function pump() {
  while (queue.length > 0) {
    const job = queue[0];
    // A job that waited may be answerable from the cache by now (another call got the token):
    // no worker needed.
    if (job.waited) {
      let r;
      try {
        r = call((b, n, o) => fns.cached_token(job.baseUrl, job.clientId, job.clientSecret, job.userId, b, n, o));
      } catch (e) {
        r = { status: 6, httpStatus: 0, message: String(e && e.message) };
      }
      if (r.status === native.OK) {
        queue.shift();
        job.resolve(r.token);
        continue;
      }
    }
    let w = idle.pop();
    if (!w) {
      if (workers >= MAX_WORKERS) {
        job.waited = true;
        return;
      }
      w = spawn();
    }
    if (w.timer) {
      clearTimeout(w.timer);
      w.timer = null;
    }
    queue.shift();
    w.job = job;
    pending.set(job.id, job);
    w.ref(); // a call in flight keeps the process alive until it settles
    w.postMessage({ id: job.id, baseUrl: job.baseUrl, clientId: job.clientId, clientSecret: job.clientSecret, userId: job.userId });
  }
}

function tokenCall(baseUrl, clientId, clientSecret, userId) {
  let r;
  try {
    baseUrl = str(baseUrl, 'baseUrl');
    clientId = str(clientId, 'clientId');
    clientSecret = str(clientSecret, 'clientSecret');
    if (userId !== null) userId = str(userId, 'userId');
    r = call((b, n, o) => fns.cached_token(baseUrl, clientId, clientSecret, userId, b, n, o));
  } catch (e) {
    return Promise.reject(e);
  }
  if (r.status === native.OK) return Promise.resolve(r.token); // a cache hit: no thread left
  if (r.status !== native.NOT_CACHED) return Promise.reject(errorFor(r)); // a bad argument
  return new Promise((resolve, reject) => {
    queue.push({ id: nextId++, baseUrl, clientId, clientSecret, userId, resolve, reject, waited: false });
    pump();
  });
}

// ---- the API

/** An organization access token (client credentials): cached, or fetched off the event loop. */
function getToken(baseUrl, clientId, clientSecret) {
  return tokenCall(baseUrl, clientId, clientSecret, null);
}

/** An access token for one user (employee): authorization grant + code exchange, cached. */
function getUserToken(baseUrl, clientId, clientSecret, userId) {
  if (typeof userId !== 'string') {
    return Promise.reject(new TypeError(`userId must be a string, not ${userId === null ? 'null' : typeof userId}`));
  }
  return tokenCall(baseUrl, clientId, clientSecret, userId);
}

/** The cached token (userId null/undefined: the organization's) if one can be had now, else null. Never blocks. */
function cachedToken(baseUrl, clientId, clientSecret, userId) {
  const b = str(baseUrl, 'baseUrl');
  const c = str(clientId, 'clientId');
  const s = str(clientSecret, 'clientSecret');
  const u = optStr(userId, 'userId');
  const r = call((buf, n, o) => fns.cached_token(b, c, s, u, buf, n, o));
  if (r.status === native.OK) return r.token;
  if (r.status === native.NOT_CACHED) return null;
  throw errorFor(r);
}

/** Forget the cached token only if it is still `token` (the one the API answered 401 to). */
function invalidateToken(baseUrl, clientId, token, userId) {
  check(fns.invalidate_token(str(baseUrl, 'baseUrl'), str(clientId, 'clientId'), optStr(userId, 'userId'), str(token, 'token')));
}

/** Forget the cached token of userId (null/undefined: the organization's), whatever it is. */
function invalidate(baseUrl, clientId, userId) {
  check(fns.invalidate(str(baseUrl, 'baseUrl'), str(clientId, 'clientId'), optStr(userId, 'userId')));
}

/** Forget every cached token of this process. */
function clearCache() {
  fns.clear_cache();
}

/** Whole seconds until the cached token expires; 0 when none is cached. */
function tokenExpiresIn(baseUrl, clientId, userId) {
  const seconds = [0];
  check(fns.token_expires_in(str(baseUrl, 'baseUrl'), str(clientId, 'clientId'), optStr(userId, 'userId'), seconds));
  return Number(seconds[0]);
}

/** Set a process-wide option; '' (or null/undefined) restores its default. Numbers are accepted. */
function setOption(name, value) {
  if (value === null || value === undefined) value = '';
  else if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  check(fns.set_option(str(name, 'name'), str(value, 'value')));
}

/** The library's counters, camelCase. */
function stats() {
  const out = {};
  check(fns.stats(out, native.koffi.sizeof(native.FindityStats)));
  const result = {};
  for (const k of native.STATS_BEFORE) result[k] = Number(out[k]);
  result.failures = out.failures.map(Number);
  for (const k of native.STATS_AFTER) result[k] = Number(out[k]);
  return result;
}

/** The loaded libfindity's version, "MAJOR.MINOR.PATCH". */
function version() {
  return fns.version();
}

/** Where libfindity was loaded from. */
function libraryPath() {
  return LIB_PATH;
}

// ---- logging: one registered C callback for the life of the process (the library may call a
// replaced callback once more); lines from other threads are queued by koffi to this thread.

const LEVELS = [null, 'error', 'warn', 'info', 'debug'];
let logger = null;
let logCallback = null;

/**
 * Send the library's log lines to fn(level, message) (level 'error' | 'warn' | 'info' |
 * 'debug'), at `level` (default 'info'); null: back to the library's default (stderr, only with
 * $FINDITY_LOG). Lines never contain a secret, token or code.
 */
function setLogger(fn, level = 'info') {
  if (fn !== null && fn !== undefined && typeof fn !== 'function') {
    throw new TypeError('setLogger takes a function or null');
  }
  if (fn) {
    if (!['error', 'warn', 'info', 'debug', 'off'].includes(level)) {
      throw new FindityError('INVALID_ARGUMENT', 0, 'level must be off, error, warn, info or debug');
    }
    if (!logCallback) {
      logCallback = native.koffi.register((lvl, message) => {
        const target = logger;
        if (!target) return;
        try {
          target(LEVELS[lvl] || 'error', message || '');
        } catch { /* nothing may unwind into the library */ }
      }, native.koffi.pointer(native.FindityLogCallback));
    }
    logger = fn;
    check(fns.set_log_callback(logCallback, null));
    check(fns.set_option('log_level', level));
  } else {
    logger = null;
    check(fns.set_log_callback(null, null));
    check(fns.set_option('log_level', ''));
  }
}

// ---- FindityAuth: a token source and a fetch with the Bearer header

class FindityAuth {
  #clientSecret;
  #fetch;

  /**
   * @param {{ baseUrl: string, clientId: string, clientSecret: string, userId?: string | null,
   *           fetch?: typeof fetch }} options
   */
  constructor({ baseUrl, clientId, clientSecret, userId = null, fetch = undefined } = {}) {
    this.baseUrl = str(baseUrl, 'baseUrl');
    this.clientId = str(clientId, 'clientId');
    this.#clientSecret = str(clientSecret, 'clientSecret');
    this.userId = optStr(userId, 'userId');
    if (fetch !== undefined && typeof fetch !== 'function') throw new TypeError('fetch must be a function');
    this.#fetch = fetch;
  }

  /** The current token (cached by the library; fetched when needed). */
  token() {
    return this.userId === null
      ? getToken(this.baseUrl, this.clientId, this.#clientSecret)
      : getUserToken(this.baseUrl, this.clientId, this.#clientSecret, this.userId);
  }

  /**
   * fetch(input, init) with `Authorization: Bearer <token>`; on a 401 the token is invalidated
   * (only if it is still the cached one), a token is got again and the request is sent once
   * more. A second 401 is returned as it is.
   */
  async fetch(input, init) {
    const doFetch = this.#fetch || globalThis.fetch;
    const request = new Request(input, init);
    const send = (token) => {
      const r = request.clone();
      r.headers.set('authorization', `Bearer ${token}`);
      return doFetch(r);
    };
    const token = await this.token();
    const response = await send(token);
    if (response.status !== 401) return response;
    if (response.body) await response.body.cancel().catch(() => {});
    invalidateToken(this.baseUrl, this.clientId, token, this.userId);
    return send(await this.token());
  }

  toJSON() { // never the secret
    return { baseUrl: this.baseUrl, clientId: this.clientId, userId: this.userId };
  }
}

module.exports = {
  getToken,
  getUserToken,
  cachedToken,
  invalidateToken,
  invalidate,
  clearCache,
  tokenExpiresIn,
  setOption,
  stats,
  setLogger,
  version,
  libraryPath,
  FindityError,
  FindityAuth,
};
// `import findityAuth from 'findity-auth'` in TypeScript compiled to CommonJS reads .default.
Object.defineProperty(module.exports, 'default', { value: module.exports, enumerable: false });
