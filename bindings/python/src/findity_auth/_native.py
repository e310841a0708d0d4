"""Loading libfindity and its C signatures: the only module of this package that uses ctypes.

The library is looked for in this order, the first that loads wins:

1. ``$FINDITY_LIB``: a path to the library file (or to a directory holding it);
2. the copy packaged inside this package (``findity_auth/libfindity.so``);
3. the system loader (``LD_LIBRARY_PATH``, rpath, ``ldconfig``): ``CDLL("libfindity.so")``.

If none loads, importing :mod:`findity_auth` raises one :class:`ImportError` that names the
three places and why each failed.

Every function is declared once below with ``restype`` and, except the three token functions
(see "The token calls" below), ``argtypes``. The library is loaded with :class:`ctypes.CDLL`,
which releases the GIL for the duration of each call, so threads that wait for a token do not
block each other (single flight is the library's job). The library's last error is
thread-local: :func:`raise_last_error` reads it on the calling thread right after the failed
call, before anything else can call into the library on that thread.
"""

import _thread
import ctypes
import threading
import ctypes.util
import os
import sys
import warnings
from ctypes import POINTER, c_char, c_char_p, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p
from typing import Any, Callable, List, NoReturn, Optional, Tuple

from ._errors import InternalError, Status, error_for_status

__all__ = [
    "LIB_PATH",
    "INITIAL_BUFFER_SIZE",
    "call_for_token",
    "call_for_cached_token",
    "check",
    "raise_last_error",
    "version",
    "STATS_COUNTERS",
    "FindityStats",
    "read_stats",
    "token_expires_in",
    "set_log_target",
]

ENV_VAR = "FINDITY_LIB"
"""Environment variable naming the library file to load first."""

ABI_MAJOR = 0
"""The ``FINDITY_VERSION_MAJOR`` whose signatures are declared below."""

LIB_NAME = {"darwin": "libfindity.dylib", "win32": "findity.dll"}.get(sys.platform, "libfindity.so")
"""File name of the library on this platform."""

PACKAGED_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIB_NAME)
"""Where a copy packaged with this package lives."""

INITIAL_BUFFER_SIZE = 2048
"""First buffer size for tokens (per thread, then reused) and messages; grown on
FINDITY_ERR_BUFFER_TOO_SMALL."""

_MAX_ATTEMPTS = 8


def _open(name: str) -> ctypes.CDLL:
    """dlopen ``name`` and check that it is a libfindity whose ABI this package speaks."""
    lib = ctypes.CDLL(name)
    try:
        fn = lib.findity_version
    except AttributeError:
        raise OSError("loaded, but it is not libfindity (no findity_version symbol)") from None
    fn.restype = c_char_p
    fn.argtypes = []
    found = (fn() or b"").decode("utf-8", "replace")
    if found.split(".")[0] != str(ABI_MAJOR):
        raise OSError(
            "loaded libfindity %s, but this package needs version %d.x" % (found, ABI_MAJOR)
        )
    return lib


def _load() -> Tuple[ctypes.CDLL, str]:
    """Find and load the library; ImportError naming every place tried when none works."""
    tried: List[str] = []

    env = os.environ.get(ENV_VAR, "")
    if env:
        path = os.path.join(env, LIB_NAME) if os.path.isdir(env) else env
        try:
            return _open(path), path
        except OSError as e:
            tried.append("1. $%s=%s: %s" % (ENV_VAR, env, e))
    else:
        tried.append("1. $%s (a path to %s): not set" % (ENV_VAR, LIB_NAME))

    def fallback(lib: ctypes.CDLL, path: str) -> Tuple[ctypes.CDLL, str]:
        if env:  # set, but it did not load: say so rather than silently use another copy
            warnings.warn(
                "findity_auth: $%s=%s could not be loaded; using %s instead" % (ENV_VAR, env, path),
                RuntimeWarning,
                stacklevel=2,
            )
        return lib, path

    if os.path.exists(PACKAGED_PATH):
        try:
            return fallback(_open(PACKAGED_PATH), PACKAGED_PATH)
        except OSError as e:
            tried.append("2. the copy packaged in findity_auth, %s: %s" % (PACKAGED_PATH, e))
    else:
        tried.append("2. the copy packaged in findity_auth, %s: no such file" % PACKAGED_PATH)

    names = [LIB_NAME]
    reasons: List[str] = []
    try:
        return fallback(_open(LIB_NAME), LIB_NAME)
    except OSError as e:
        reasons.append(str(e))
    found = ctypes.util.find_library("findity")  # slower (may run ldconfig): only now
    if found and found != LIB_NAME:
        names.append(found)
        try:
            return fallback(_open(found), found)
        except OSError as e:
            reasons.append(str(e))
    tried.append("3. the system loader, %s: %s" % (" / ".join(names), "; ".join(reasons)))

    raise ImportError(
        "findity_auth could not load the native library %s. Tried, in order:\n  %s\n"
        "Fix: set %s to the path of %s (e.g. target/debug/%s after `cargo build -p findity`), "
        "reinstall the package with the library copied into src/findity_auth/, "
        "or install %s where the system loader finds it."
        % (LIB_NAME, "\n  ".join(tried), ENV_VAR, LIB_NAME, LIB_NAME, LIB_NAME),
        name=LIB_NAME,
    )


lib, LIB_PATH = _load()
"""The loaded library and the path (or name) it was loaded from."""

_CharBuf = POINTER(c_char)
_SizeOut = POINTER(c_size_t)


def _declare(name: str, restype: Any, argtypes: List[Any]) -> Any:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def _declare_untyped(name: str, restype: Any) -> Any:
    """A function without ``argtypes`` (see "The token calls" below): arguments must be passed as
    exactly the ctypes-compatible objects its comment lists, nothing else."""
    fn = getattr(lib, name)
    fn.restype = restype
    return fn


# The whole C ABI of findity.h, declared once (the C prototype above each).
# Strings are NUL-terminated UTF-8 bytes (c_char_p; None is NULL).
#
# The token calls. The three token functions are the hot path (a cache hit costs the library
# ~30 ns; everything else is ctypes and this package), and ctypes' per-argument ``argtypes``
# conversion (a from_param call per argument) costs more than the rest of the call: 6 declared
# arguments take ~650 ns, the same call undeclared ~280 ns. So they are declared without
# ``argtypes`` and called only by call_for_token, which passes each argument as the one object
# ctypes converts right without being told: ``bytes`` (char *; CPython keeps them
# NUL-terminated), a ``c_char`` array (char *), a ``c_size_t`` instance (size_t; never a plain
# int, which ctypes would pass as a 32-bit int) and a ``POINTER(c_size_t)`` instance (size_t *).

# uint32_t findity_get_token(const char *base_url, const char *client_id,
#                            const char *client_secret, char *buf, size_t buf_len, size_t *out_len)
# Call as findity_get_token(bytes, bytes, bytes, c_char array, c_size_t, POINTER(c_size_t)).
findity_get_token = _declare_untyped("findity_get_token", c_uint32)
# uint32_t findity_user_token(const char *base_url, const char *client_id,
#                             const char *client_secret, const char *user_id,
#                             char *buf, size_t buf_len, size_t *out_len)
# Call as findity_user_token(bytes, bytes, bytes, bytes, c_char array, c_size_t, POINTER(c_size_t)).
findity_user_token = _declare_untyped("findity_user_token", c_uint32)
# uint32_t findity_cached_token(const char *base_url, const char *client_id,
#                               const char *client_secret, const char *user_id /* NULL: org */,
#                               char *buf, size_t buf_len, size_t *out_len)
# Call as findity_cached_token(bytes, bytes, bytes, bytes or None, c_char array, c_size_t,
# POINTER(c_size_t)); None is passed as NULL. Never sends a request, never waits.
findity_cached_token = _declare_untyped("findity_cached_token", c_uint32)
# uint32_t findity_invalidate(const char *base_url, const char *client_id, const char *user_id)
findity_invalidate = _declare("findity_invalidate", c_uint32, [c_char_p, c_char_p, c_char_p])
# uint32_t findity_invalidate_token(const char *base_url, const char *client_id,
#                                   const char *user_id /* NULL: org */, const char *token)
# Drops the cached token only if it is still `token` (the one the API answered 401 to).
findity_invalidate_token = _declare(
    "findity_invalidate_token", c_uint32, [c_char_p, c_char_p, c_char_p, c_char_p]
)
# void findity_clear_cache(void)
findity_clear_cache = _declare("findity_clear_cache", None, [])
# uint32_t findity_set_option(const char *name, const char *value)
findity_set_option = _declare("findity_set_option", c_uint32, [c_char_p, c_char_p])
# uint32_t findity_last_error(char *buf, size_t buf_len, size_t *out_len)
findity_last_error = _declare("findity_last_error", c_uint32, [_CharBuf, c_size_t, _SizeOut])
# uint16_t findity_last_http_status(void)
findity_last_http_status = _declare("findity_last_http_status", c_uint16, [])
# const char *findity_version(void)
findity_version = _declare("findity_version", c_char_p, [])
# uint32_t findity_token_expires_in(const char *base_url, const char *client_id,
#                                   const char *user_id, uint64_t *seconds)
findity_token_expires_in = _declare(
    "findity_token_expires_in", c_uint32, [c_char_p, c_char_p, c_char_p, POINTER(c_uint64)]
)

STATS_COUNTERS = (
    "cache_hits",
    "cache_misses",
    "client_credentials_requests",
    "refresh_token_requests",
    "authorization_grant_requests",
    "authorization_code_requests",
    "background_refreshes",
    "fallbacks",
    "retries",
)
"""The uint64_t counters of struct FindityStats, in declaration order (before ``failures``)."""

STATS_COUNTERS_AFTER = (
    "throttle_pauses",
    "throttle_waits",
    "idle_evictions",
    "store_hits",
    "store_writes",
    "store_lock_waits",
    "store_errors",
)
"""The uint64_t counters of struct FindityStats after ``failures`` (fields are only appended)."""


class FindityStats(ctypes.Structure):
    """``struct FindityStats``: nine uint64_t counters, ``uint64_t failures[7]``, then more
    counters."""

    _fields_ = (
        [(name, c_uint64) for name in STATS_COUNTERS]
        + [("failures", c_uint64 * 7)]
        + [(name, c_uint64) for name in STATS_COUNTERS_AFTER]
    )


# uint32_t findity_stats(struct FindityStats *out, size_t out_size); out_size is
# sizeof(FindityStats) as declared here: a newer library with a longer struct fills only these.
findity_stats = _declare("findity_stats", c_uint32, [POINTER(FindityStats), c_size_t])

# typedef void (*FindityLogCallback)(uint32_t level, const char *message, void *userdata)
FindityLogCallback = ctypes.CFUNCTYPE(None, c_uint32, c_char_p, c_void_p)
# uint32_t findity_set_log_callback(FindityLogCallback callback, void *userdata)
findity_set_log_callback = _declare(
    "findity_set_log_callback", c_uint32, [FindityLogCallback, c_void_p]
)


def _call_with_buffer(call: Callable[[Any, int, Any], int]) -> Tuple[int, bytes]:
    """Run ``call(buf, buf_len, out_len)``, growing the buffer on BUFFER_TOO_SMALL.

    Returns the status and, on FINDITY_OK, the bytes written (without the NUL). The library
    keeps a token cached when the buffer was too small, so a retry sends no request.
    """
    size = max(0, INITIAL_BUFFER_SIZE)
    for _ in range(_MAX_ATTEMPTS):
        buf = ctypes.create_string_buffer(size) if size else None
        out_len = c_size_t(0)
        status = call(buf, size, ctypes.byref(out_len))
        if status == Status.OK:
            return status, (buf.raw[: out_len.value] if buf is not None else b"")
        if status != Status.BUFFER_TOO_SMALL:
            return status, b""
        needed = out_len.value + 1
        size = needed if needed > size else size * 2  # renewed meanwhile: a longer token?
    return Status.BUFFER_TOO_SMALL, b""


def _last_error() -> Tuple[str, int]:
    """This thread's last error message and HTTP status (neither changes the last error)."""
    status, raw = _call_with_buffer(findity_last_error)
    message = raw.decode("utf-8", "replace") if status == Status.OK else ""
    return message, int(findity_last_http_status())


def raise_last_error(status: int) -> NoReturn:
    """Raise the exception for a failed call. Call on the same thread, right after it."""
    message, http_status = _last_error()
    if status == Status.BUFFER_TOO_SMALL:
        raise InternalError(Status.INTERNAL, http_status, "the token kept growing: %s" % message)
    raise error_for_status(status, http_status, message)


def check(status: int) -> None:
    """Raise for a status other than FINDITY_OK (reads the last error on this thread)."""
    if status != Status.OK:
        raise_last_error(status)


# Per-thread output space for the token calls: a buffer reused call after call instead of a
# fresh 2 KiB one per call, its length as a c_size_t and out_len with a ready-made pointer to it
# (ctypes.byref would allocate per call). Per thread because the call runs without the GIL;
# taken out of the thread's pool for the duration of a call, so that a token call made from
# inside another on the same thread (from a log handler, a signal handler, a __del__) gets a
# space of its own instead of overwriting the outer call's buffer or out_len.
_Space = Tuple[Any, c_size_t, c_size_t, Any]  # (c_char array, its length, out_len, &out_len)


def _new_space(size: int) -> _Space:
    size = max(0, size)
    out_len = c_size_t(0)
    return (ctypes.create_string_buffer(size), c_size_t(size), out_len, ctypes.pointer(out_len))


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.pool: List[_Space] = []


_per_thread = _PerThread()


def call_for_token(
    base_url: bytes, client_id: bytes, client_secret: bytes, user_id: Optional[bytes] = None
) -> str:
    """findity_get_token, or findity_user_token when ``user_id`` is given; the token as str.

    A cached token costs one library call: the output goes into this thread's reused buffer and
    only the ``out_len`` bytes written are copied out and decoded. Raises for a failed call.
    Explicit arguments rather than ``*args``: this is the hot path, and every bit of it counts.
    """
    pool = _per_thread.pool
    space = pool.pop() if pool else _new_space(INITIAL_BUFFER_SIZE)
    buf, buf_len, out_len, out_len_ptr = space
    if user_id is None:
        status = findity_get_token(base_url, client_id, client_secret, buf, buf_len, out_len_ptr)
    else:
        status = findity_user_token(
            base_url, client_id, client_secret, user_id, buf, buf_len, out_len_ptr
        )
    if status == 0:  # Status.OK, as a plain int: no enum lookup on the hot path
        token: str = buf[: out_len.value].decode()
        pool.append(space)
        return token
    if user_id is None:
        status, grown = _grow_and_retry(
            findity_get_token, (base_url, client_id, client_secret), space, status
        )
    else:
        status, grown = _grow_and_retry(
            findity_user_token, (base_url, client_id, client_secret, user_id), space, status
        )
    if grown is None:
        raise_last_error(status)
    return grown


def call_for_cached_token(
    base_url: bytes, client_id: bytes, client_secret: bytes, user_id: Optional[bytes] = None
) -> Optional[str]:
    """findity_cached_token (``user_id`` None: the organization token); None for NOT_CACHED.

    The same per-thread buffer as call_for_token; never sends a request and never waits.
    Raises for any other failed call.
    """
    pool = _per_thread.pool
    space = pool.pop() if pool else _new_space(INITIAL_BUFFER_SIZE)
    buf, buf_len, out_len, out_len_ptr = space
    status = findity_cached_token(
        base_url, client_id, client_secret, user_id, buf, buf_len, out_len_ptr
    )
    if status == 0:  # Status.OK
        token: str = buf[: out_len.value].decode()
        pool.append(space)
        return token
    if status == 7:  # Status.NOT_CACHED: the common answer on a cold cache, also lean
        pool.append(space)
        return None
    status, grown = _grow_and_retry(
        findity_cached_token, (base_url, client_id, client_secret, user_id), space, status
    )
    if grown is None and status != Status.NOT_CACHED:
        raise_last_error(status)
    return grown


def _grow_and_retry(
    fn: Any, args: Tuple[Optional[bytes], ...], space: _Space, status: int
) -> Tuple[int, Optional[str]]:
    """After a first status other than OK from ``fn(*args, buf, buf_len, out_len)``: call again
    with a larger buffer on BUFFER_TOO_SMALL (the library keeps the token cached, so the retry
    sends no request). The final status and, on OK, the token. On failure the caller raises at
    once, on this thread (nothing here calls into the library after the failed call)."""
    for _ in range(_MAX_ATTEMPTS):
        if status != Status.BUFFER_TOO_SMALL:
            break
        size, needed = space[1].value, space[2].value + 1
        space = _new_space(needed if needed > size else size * 2)  # renewed meanwhile: longer?
        buf, buf_len, _, out_len_ptr = space
        status = fn(*args, buf, buf_len, out_len_ptr)
    _per_thread.pool.append(space)  # a grown buffer stays this thread's
    if status == Status.OK:
        token: str = space[0][: space[2].value].decode()
        return status, token
    return status, None


def version() -> str:
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return (findity_version() or b"").decode("utf-8", "replace")


def read_stats() -> FindityStats:
    """The library's counters (findity_stats)."""
    out = FindityStats()
    check(findity_stats(ctypes.byref(out), ctypes.sizeof(FindityStats)))
    return out


def token_expires_in(base_url: bytes, client_id: bytes, user_id: Optional[bytes]) -> int:
    """Seconds left on a cached token (findity_token_expires_in); 0 when none is cached."""
    seconds = c_uint64(0)
    check(findity_token_expires_in(base_url, client_id, user_id, ctypes.byref(seconds)))
    return seconds.value


# The log bridge. The library may call the callback on any thread (its background refresh
# threads included) at any time, even after a token call returned, and may call the previous
# callback once more after it was replaced. So there is exactly one CFUNCTYPE object for the
# life of the process, referenced from this module (never garbage-collected), and installing
# or removing a Python handler only swaps ``_log_target``. ctypes takes the GIL for the call
# (also on threads Python did not create).

_log_target: Optional[Callable[[int, str], None]] = None


def _on_log(level: int, message: Optional[bytes], userdata: Any) -> None:
    # Nothing may propagate into the library: ctypes would only print it, but be explicit.
    try:
        target = _log_target
        if target is not None:
            target(int(level), (message or b"").decode("utf-8", "replace"))
    except KeyboardInterrupt:
        # Ctrl-C landed while the callback ran on the main thread (inside a token call): re-arm
        # it so it is raised once that call returns, instead of being lost in C.
        _thread.interrupt_main()
    except BaseException:  # noqa: B036 - a log line is never worth crashing the library's thread
        pass


_log_callback = FindityLogCallback(_on_log)
"""The only C function pointer ever given to findity_set_log_callback: kept for the process."""


def set_log_target(target: Optional[Callable[[int, str], None]]) -> None:
    """Route the library's log lines to ``target(level, line)``; ``None``: back to stderr."""
    global _log_target
    if target is not None:
        _log_target = target
        check(findity_set_log_callback(_log_callback, None))
    else:
        check(findity_set_log_callback(FindityLogCallback(), None))  # NULL
        _log_target = None
