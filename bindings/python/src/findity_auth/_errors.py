"""Status codes of libfindity and the exception hierarchy they map to.

Pure Python (no ctypes): :mod:`findity_auth._native` reads the library's thread-local last
error right after a failed call and turns it into one of these exceptions with
:func:`error_for_status`.
"""

import enum
from typing import Dict, Type, Union

__all__ = [
    "Status",
    "FindityError",
    "InvalidArgumentError",
    "NetworkError",
    "AuthError",
    "ServerError",
    "InternalError",
    "error_for_status",
]


class Status(enum.IntEnum):
    """The status codes of the C ABI (``FINDITY_OK``, ``FINDITY_ERR_*`` in findity.h)."""

    OK = 0
    """Success."""
    INVALID_ARGUMENT = 1
    """A bad argument (empty id, bad base URL, unknown option, ...). Nothing was sent."""
    BUFFER_TOO_SMALL = 2
    """The output buffer was too small. Handled inside this package; never raised."""
    NETWORK = 3
    """No usable HTTP answer: connect failure, TLS failure, timeout, connection cut."""
    AUTH = 4
    """The server refused: bad client id or secret, unknown user, refused grant."""
    SERVER = 5
    """The server failed or answered something unusable (5xx, 429 past the timeout, bad JSON)."""
    INTERNAL = 6
    """A bug in libfindity (a caught panic). Please report it."""
    NOT_CACHED = 7
    """findity_cached_token only: no token can be handed out without a request or a wait.
    :func:`~findity_auth.cached_token` returns ``None`` for it; never raised."""


class FindityError(Exception):
    """A libfindity call failed.

    Attributes:
        status: The library's status code (a :class:`Status`, compares equal to the int).
        http_status: HTTP status of the answer behind the failure, 0 when there was none.
        message: The library's message: what failed, the endpoint, the HTTP status and the
            server's error code and description. It never contains a secret, token or code.
    """

    status: Union[Status, int]
    http_status: int
    message: str

    def __init__(self, status: int, http_status: int, message: str) -> None:
        try:
            status = Status(status)
        except ValueError:
            pass
        # All three in args so that the exception pickles (multiprocessing) and compares.
        super().__init__(status, http_status, message)
        self.status = status
        self.http_status = http_status
        self.message = message

    def __str__(self) -> str:
        if self.message:
            return self.message
        name = self.status.name if isinstance(self.status, Status) else str(self.status)
        return "libfindity failed with status %s" % name

    def __repr__(self) -> str:
        return "%s(status=%d, http_status=%d, message=%r)" % (
            type(self).__name__,
            int(self.status),
            self.http_status,
            self.message,
        )


class InvalidArgumentError(FindityError, ValueError):
    """A bad argument: an empty id, a bad base URL or option, text with a NUL. Nothing was sent."""


class NetworkError(FindityError):
    """No usable HTTP answer: connect failure, TLS failure, timeout, connection cut."""


class AuthError(FindityError):
    """The server refused (HTTP 400/401/403): bad client id or secret, unknown user, refused
    grant."""


class ServerError(FindityError):
    """The server failed or answered something unusable (5xx, 429 past the timeout, bad JSON)."""


class InternalError(FindityError):
    """A bug in libfindity (a caught panic). Please report it."""


_BY_STATUS: Dict[int, Type[FindityError]] = {
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.NETWORK: NetworkError,
    Status.AUTH: AuthError,
    Status.SERVER: ServerError,
    Status.INTERNAL: InternalError,
}


def error_for_status(status: int, http_status: int, message: str) -> FindityError:
    """The exception for a failed call: the subclass that matches ``status``."""
    return _BY_STATUS.get(status, FindityError)(status, http_status, message)
