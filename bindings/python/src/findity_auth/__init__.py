"""findity_auth: OAuth access tokens for the Findity Expense API, from libfindity.

>>> import findity_auth
>>> token = findity_auth.get_token("production", "my-client-id", "my-secret")  # doctest: +SKIP
>>> token = findity_auth.cached_token("production", "my-client-id", "my-secret")  # or None; no wait
>>> auth = findity_auth.FindityAuth("production", "my-client-id", "my-secret")
>>> requests.get("https://api.findity.com/api/v1/me", auth=auth)  # doctest: +SKIP
>>> token = await findity_auth.aget_token("production", "my-client-id", "my-secret")  # asyncio
>>> httpx.get(url, auth=findity_auth.FindityHttpxAuth(...))  # httpx.Client and AsyncClient
>>> findity_auth.enable_logging()  # the library's lines -> logging.getLogger("findity")
>>> findity_auth.stats()  # doctest: +SKIP
Stats(cache_hits=1, cache_misses=1, client_credentials_requests=1, ...)

Caching, renewal, refresh tokens and single flight are done by the native library, for all
threads of the process; this package is a thin ctypes wrapper around its C ABI (findity.h).
The library is loaded from ``$FINDITY_LIB``, else the copy packaged with this package, else the
system loader (``libfindity.so``).
"""

from ._api import (
    Stats,
    cached_token,
    clear_cache,
    get_token,
    invalidate,
    invalidate_token,
    set_option,
    stats,
    token_expires_in,
    user_token,
    version,
)
from ._async import aget_token, aget_user_token
from ._errors import (
    AuthError,
    FindityError,
    InternalError,
    InvalidArgumentError,
    NetworkError,
    ServerError,
    Status,
)
from ._logging import disable_logging, enable_logging
from ._requests_auth import FindityAuth


def __getattr__(name: str) -> object:
    # FindityHttpxAuth derives from httpx.Auth: httpx is imported only when it is asked for.
    if name == "FindityHttpxAuth":
        from ._httpx_auth import FindityHttpxAuth

        return FindityHttpxAuth
    raise AttributeError("module 'findity_auth' has no attribute %r" % name)


__version__ = "0.1.0"

__all__ = [
    "get_token",
    "user_token",
    "cached_token",
    "aget_token",
    "aget_user_token",
    "invalidate",
    "invalidate_token",
    "token_expires_in",
    "clear_cache",
    "set_option",
    "stats",
    "Stats",
    "enable_logging",
    "disable_logging",
    "version",
    "FindityAuth",
    "FindityError",
    "InvalidArgumentError",
    "NetworkError",
    "AuthError",
    "ServerError",
    "InternalError",
    "Status",
]
