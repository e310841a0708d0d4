"""The public functions: one per function of the C ABI, ``str`` in and out.

No token logic lives here: caching per (base_url, client_id[, user_id]), renewal before expiry,
refresh tokens and single flight (one request per key at a time, shared by all threads) are
libfindity's. These functions convert arguments to UTF-8, call the library (without the GIL)
and raise a :class:`~findity_auth.FindityError` subclass on failure.
"""

import dataclasses
from typing import Optional, Tuple, Union

from . import _native
from ._errors import InvalidArgumentError, Status

__all__ = [
    "get_token",
    "user_token",
    "cached_token",
    "invalidate",
    "invalidate_token",
    "token_expires_in",
    "clear_cache",
    "set_option",
    "stats",
    "Stats",
    "version",
]


def _utf8(value: object, name: str) -> bytes:
    """``value`` as UTF-8 bytes for the C ABI. Never puts the value into a message."""
    # The fast path, taken by every token call: an exact str without NUL that encodes. An
    # embedded NUL must be refused, not passed on: C would read the text only up to it (a
    # secret cut short). Everything else goes to _utf8_checked, which raises the precise error.
    if type(value) is str and "\x00" not in value:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            pass  # handled outside the handler: the UnicodeEncodeError holds the value
    return _utf8_checked(value, name)


def _utf8_checked(value: object, name: str) -> bytes:
    """_utf8 for what its fast path does not take: str subclasses, or raise."""
    if not isinstance(value, str):
        raise TypeError("%s must be str, not %s" % (name, type(value).__name__))
    if "\x00" in value:
        raise InvalidArgumentError(Status.INVALID_ARGUMENT, 0, "%s contains a NUL character" % name)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        pass  # raised outside the handler: the UnicodeEncodeError holds the value (a secret?)
    raise InvalidArgumentError(
        Status.INVALID_ARGUMENT, 0, "%s is not encodable as UTF-8 (lone surrogate)" % name
    )


def get_token(base_url: str, client_id: str, client_secret: str) -> str:
    """Get an organization access token (OAuth client credentials) for ``client_id``.

    Args:
        base_url: ``"production"``, ``"stage"``, or ``"https://host[:port][/prefix]"``
            (``http://`` only for loopback hosts such as the emulator).
        client_id: The OAuth client id.
        client_secret: The OAuth client secret. Never appears in any message.

    Returns:
        The access token, for an ``Authorization: Bearer <token>`` header.

    The token is cached per (base_url, client_id) for the whole process, renewed before it
    expires and shared by all threads; at most one request per key is in flight. A cached token
    is returned without waiting; otherwise this blocks for at most the ``timeout_ms`` option.

    Raises:
        AuthError: The server refused the client id or secret (``http_status`` 400/401/403).
        NetworkError: No usable HTTP answer (connect failure, TLS failure, timeout).
        ServerError: A 5xx, 429 past the timeout, or an unusable answer.
        InvalidArgumentError: An empty id or a bad base URL; nothing was sent.
        TypeError: An argument is not a ``str``.
    """
    return _native.call_for_token(
        _utf8(base_url, "base_url"),
        _utf8(client_id, "client_id"),
        _utf8(client_secret, "client_secret"),
    )


def user_token(base_url: str, client_id: str, client_secret: str, user_id: str) -> str:
    """Get an access token for one user (employee) of the organization.

    An authorization grant for ``user_id`` (a Findity person id or ExternalSourceID) made with
    the organization token, then the code exchange. Cached per (base_url, client_id, user_id);
    the organization token used is the one :func:`get_token` caches. Arguments, blocking and
    errors as :func:`get_token`; an unknown user is an :class:`AuthError` (HTTP 400).

    Returns:
        The user's access token.
    """
    return _native.call_for_token(
        _utf8(base_url, "base_url"),
        _utf8(client_id, "client_id"),
        _utf8(client_secret, "client_secret"),
        _utf8(user_id, "user_id"),
    )


def cached_token(
    base_url: str, client_id: str, client_secret: str, user_id: Optional[str] = None
) -> Optional[str]:
    """The cached token of ``user_id`` (``None``: the organization's) if one can be had now.

    Never sends a request and never blocks: the token call for an ``asyncio`` event loop (or any
    thread that must not wait). It answers as :func:`get_token` / :func:`user_token` would
    without a request: a token in its renewal window is returned (and renewal starts in the
    background), but ``None`` when none is cached, the cached one is too close to expiry, or it
    was got with another ``client_secret``. Then fetch it off the loop::

        token = findity_auth.cached_token(url, client_id, secret)
        if token is None:
            token = await loop.run_in_executor(None, findity_auth.get_token, url, client_id, secret)

    Raises:
        InvalidArgumentError: An empty id or a bad base URL.
        TypeError: An argument is not a ``str`` (``user_id``: or ``None``).
    """
    return _native.call_for_cached_token(
        _utf8(base_url, "base_url"),
        _utf8(client_id, "client_id"),
        _utf8(client_secret, "client_secret"),
        None if user_id is None else _utf8(user_id, "user_id"),
    )


def invalidate(base_url: str, client_id: str, user_id: Optional[str] = None) -> None:
    """Forget the cached token of ``user_id``, or the organization token when it is ``None``.

    Call it when the API answers 401 with a token from this package; the next call gets a new
    one (with the refresh token when one is held). Sends no request; not an error when nothing
    was cached. :class:`FindityAuth` does this for you.
    """
    _native.check(
        _native.findity_invalidate(
            _utf8(base_url, "base_url"),
            _utf8(client_id, "client_id"),
            None if user_id is None else _utf8(user_id, "user_id"),
        )
    )


def invalidate_token(
    base_url: str, client_id: str, token: str, user_id: Optional[str] = None
) -> None:
    """Forget the cached token of ``user_id`` (``None``: the organization's) only if it is still
    ``token``, the one the API answered 401 to.

    A newer token, renewed meanwhile (by another thread or coroutine that got the same 401), is
    kept, so N requests rejected with the same token cause one renewal. Prefer it to
    :func:`invalidate` on a 401. Sends no request and never blocks on one; not an error when
    nothing was cached. :class:`FindityAuth` and :class:`FindityHttpxAuth` do this for you.
    """
    _native.check(
        _native.findity_invalidate_token(
            _utf8(base_url, "base_url"),
            _utf8(client_id, "client_id"),
            None if user_id is None else _utf8(user_id, "user_id"),
            _utf8(token, "token"),
        )
    )


def token_expires_in(base_url: str, client_id: str, user_id: Optional[str] = None) -> int:
    """Whole seconds until the cached token of ``user_id`` (``None``: the organization's) expires.

    ``0`` when no token is cached for that key (none fetched yet, invalidated, cleared) or the
    cached one has less than a second left: either way the next token call gets a new one.
    For display or scheduling only: the library renews tokens by itself. Sends no request.

    Raises:
        InvalidArgumentError: A bad argument (an empty id, a bad base URL).
        TypeError: An argument is not a ``str`` (``user_id``: or ``None``).
    """
    return _native.token_expires_in(
        _utf8(base_url, "base_url"),
        _utf8(client_id, "client_id"),
        None if user_id is None else _utf8(user_id, "user_id"),
    )


def clear_cache() -> None:
    """Forget every cached token, organization and user, in this process.

    Requests in flight finish but their tokens are not kept.
    """
    _native.findity_clear_cache()


def set_option(name: str, value: Union[str, int, None]) -> None:
    """Set a process-wide option; ``""`` or ``None`` restores its default.

    Options: ``"timeout_ms"`` (30000, the most a call may block), ``"connect_timeout_ms"``
    (10000), ``"ca_file"`` (a PEM file of extra trusted certificates), ``"proxy"``
    (``"http://host:port"``; by default HTTPS_PROXY/ALL_PROXY/NO_PROXY are used) and
    ``"user_agent"`` and ``"log_level"`` (``"off"``, ``"error"``, ``"warn"``, ``"info"``,
    ``"debug"``; default from ``$FINDITY_LOG``, see :func:`enable_logging`). Integers are accepted for the ``*_ms`` options. Applies to requests
    started afterwards.

    Raises:
        InvalidArgumentError: An unknown name or a bad value; nothing changed.
    """
    if value is None:
        value = ""
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    _native.check(_native.findity_set_option(_utf8(name, "name"), _utf8(value, "value")))


@dataclasses.dataclass(frozen=True)
class Stats:
    """libfindity's counters since this process (or, after ``fork()``, the child) started.

    Each counter is exact; the set is not one atomic snapshot. Subtract two of them to see what
    a piece of code did, e.g. ``after.cache_misses - before.cache_misses``.
    """

    cache_hits: int
    """Token calls answered from the cache without waiting for a request."""
    cache_misses: int
    """Token calls that made, or waited for, a token request."""
    client_credentials_requests: int
    """client_credentials requests sent (organization tokens)."""
    refresh_token_requests: int
    """refresh_token requests sent."""
    authorization_grant_requests: int
    """Authorization-grant requests sent (user tokens)."""
    authorization_code_requests: int
    """Code exchanges sent (user tokens)."""
    background_refreshes: int
    """Renewals started in the background ahead of expiry."""
    fallbacks: int
    """Refresh tokens refused (or of unknown fate) followed by the primary grant."""
    retries: int
    """Requests repeated after a retryable failure (connect error, 408, 429, 5xx)."""
    failures: Tuple[int, ...]
    """Failed calls by status, one entry per :class:`Status`: ``failures[Status.AUTH]``.
    ``failures[Status.OK]``, ``failures[Status.BUFFER_TOO_SMALL]`` and
    ``failures[Status.NOT_CACHED]`` are always 0 (asking for a size, or whether a token is
    cached, is not a failure)."""
    throttle_pauses: int
    """429 (or 503 with Retry-After) answers that paused every token request to a base URL."""
    throttle_waits: int
    """Token requests that waited for such a pause, or for pacing, before they were sent."""
    idle_evictions: int
    """Cache entries dropped after ``idle_ms`` without use."""
    store_hits: int
    """Shared cache (option ``shared_cache``): tokens taken from the store, with no request."""
    store_writes: int
    """Records written to the shared store."""
    store_lock_waits: int
    """Renewals that waited for another process holding the key's lock."""
    store_errors: int
    """Shared-store failures; the call went on process-locally and did not fail because of it."""


def stats() -> Stats:
    """A snapshot of libfindity's counters (cache hits and misses, requests by grant, ...)."""
    raw = _native.read_stats()
    names = _native.STATS_COUNTERS + _native.STATS_COUNTERS_AFTER
    counters = {name: int(getattr(raw, name)) for name in names}
    failures = [int(n) for n in raw.failures]
    failures += [0] * (len(Status) - len(failures))  # NOT_CACHED has no slot in the C struct
    return Stats(failures=tuple(failures), **counters)


def version() -> str:
    """The version of the loaded libfindity, ``"MAJOR.MINOR.PATCH"``."""
    return _native.version()
