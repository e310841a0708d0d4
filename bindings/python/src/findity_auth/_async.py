"""asyncio: ``await aget_token(...)`` / ``await aget_user_token(...)``.

A token the library can hand out now comes from ``findity_cached_token`` on the event loop's
own thread: no request, no wait, no thread hop (about a microsecond). Otherwise the blocking
token call runs in the loop's default executor, once per key (base URL, client id, secret,
user) and loop at a time: every coroutine that asks meanwhile awaits that same call. A waiter
that is cancelled gets :class:`asyncio.CancelledError` at once; the call itself cannot be
stopped in the library, so it finishes in its thread and caches the token for the next caller.
A failure is raised in every waiter of that call.
"""

import asyncio
import weakref
from typing import Dict, Optional, Tuple

from . import _api

__all__ = ["aget_token", "aget_user_token"]

_Key = Tuple[str, str, str, Optional[str]]

# loop -> {key: the executor future of the one token call in flight for that key}. Weak, so a
# closed and dropped loop takes its entries with it.
_flights: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[_Key, asyncio.Future]]" = (
    weakref.WeakKeyDictionary()
)


def _fetch(base_url: str, client_id: str, client_secret: str, user_id: Optional[str]) -> str:
    # In the executor thread: the library's last error is read on this thread, right after.
    if user_id is None:
        return _api.get_token(base_url, client_id, client_secret)
    return _api.user_token(base_url, client_id, client_secret, user_id)


def _observe(future: "asyncio.Future[str]") -> None:
    # All waiters may have been cancelled: retrieve the outcome so asyncio does not log
    # "exception was never retrieved" for the shared call.
    if not future.cancelled():
        future.exception()


async def _token(
    base_url: str, client_id: str, client_secret: str, user_id: Optional[str]
) -> str:
    # Argument errors (types, NUL, empty ids, bad URL) raise here, on the loop, as in get_token.
    token = _api.cached_token(base_url, client_id, client_secret, user_id)
    if token is not None:
        return token
    loop = asyncio.get_running_loop()
    flights = _flights.get(loop)
    if flights is None:
        flights = _flights[loop] = {}
    key = (base_url, client_id, client_secret, user_id)
    future = flights.get(key)
    if future is None:
        future = loop.run_in_executor(None, _fetch, base_url, client_id, client_secret, user_id)
        flights[key] = future

        def done(f: "asyncio.Future[str]", flights: Dict[_Key, asyncio.Future] = flights) -> None:
            if flights.get(key) is f:
                del flights[key]
            _observe(f)

        future.add_done_callback(done)
    # shield: cancelling one waiter must not cancel the call the others are waiting for.
    return await asyncio.shield(future)


async def aget_token(base_url: str, client_id: str, client_secret: str) -> str:
    """:func:`findity_auth.get_token` for asyncio: the organization token.

    Returned on the loop without a thread hop when the library holds one it can hand out now
    (see :func:`findity_auth.cached_token`); otherwise one executor call per key, shared by
    every coroutine that waits for it. Cancellation is honoured at once. Raises what
    :func:`findity_auth.get_token` raises.
    """
    return await _token(base_url, client_id, client_secret, None)


async def aget_user_token(base_url: str, client_id: str, client_secret: str, user_id: str) -> str:
    """:func:`findity_auth.user_token` for asyncio: the token of ``user_id``, as
    :func:`aget_token`."""
    if not isinstance(user_id, str):
        raise TypeError("user_id must be str, not %s" % type(user_id).__name__)
    return await _token(base_url, client_id, client_secret, user_id)
