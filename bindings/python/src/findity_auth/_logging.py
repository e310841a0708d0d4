"""The bridge from libfindity's log lines to the :mod:`logging` module (logger ``"findity"``).

Pure Python: the C callback itself lives in :mod:`findity_auth._native`, which calls
:func:`_emit` with (level, line) on whichever thread the library logs from.
"""

import atexit
import logging
import threading
from typing import Union

from . import _native
from ._errors import InvalidArgumentError, Status

__all__ = ["enable_logging", "disable_logging", "LOGGER_NAME"]

LOGGER_NAME = "findity"
"""The logger the library's lines go to."""

_logger = logging.getLogger(LOGGER_NAME)

# FINDITY_LOG_* -> logging level.
_TO_LOGGING = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}
_NAMES = ("off", "error", "warn", "info", "debug")
_FROM_LOGGING = ((logging.DEBUG, "debug"), (logging.INFO, "info"), (logging.WARNING, "warn"))

_lock = threading.Lock()  # callback and level change together
_registered_atexit = False


def _level_name(level: Union[str, int]) -> str:
    if isinstance(level, str):
        name = level.strip().lower()
        name = {"warning": "warn", "critical": "error"}.get(name, name)
        if name not in _NAMES:
            raise InvalidArgumentError(
                Status.INVALID_ARGUMENT, 0, "level must be off, error, warn, info or debug"
            )
        return name
    if isinstance(level, int) and not isinstance(level, bool):
        for threshold, name in _FROM_LOGGING:
            if level <= threshold:
                return name
        return "error"
    raise TypeError("level must be str or int, not %s" % type(level).__name__)


def _emit(level: int, line: str) -> None:
    # "%s": a line is data, never a format string.
    _logger.log(_TO_LOGGING.get(level, logging.ERROR), "%s", line)


def enable_logging(level: Union[str, int] = "info") -> None:
    """Send libfindity's log lines to the :mod:`logging` logger ``"findity"``.

    Args:
        level: The most detailed level the library produces: ``"error"``, ``"warn"``,
            ``"info"`` (default: new tokens, invalidations, background renewals, fallbacks),
            ``"debug"`` or ``"off"``; or a :mod:`logging` level such as ``logging.DEBUG``.
            The ``"findity"`` logger's own level and handlers then decide what is emitted.

    Lines are logged from whichever thread the library is on, including its background
    refresh threads, possibly after a token call returned. They name the grant, endpoint and
    key; tokens appear only as a fingerprint (``#1a2b3c4d``), never a secret, token or code.
    Calling it again changes the level. Process-wide, like the rest of the library.
    """
    global _registered_atexit
    name = _level_name(level)
    with _lock:
        _native.set_log_target(_emit)
        _native.check(_native.findity_set_option(b"log_level", name.encode("ascii")))
        if not _registered_atexit:
            # No calls into a finalizing interpreter from the library's threads.
            atexit.register(disable_logging)
            _registered_atexit = True


def disable_logging() -> None:
    """Stop sending lines to :mod:`logging`; the library goes back to its default (stderr,
    only when ``$FINDITY_LOG`` is set)."""
    with _lock:
        _native.set_log_target(None)
        # Still needed: removing the callback undoes only a level the library raised by itself
        # when the callback was installed. enable_logging chose the level explicitly, and that
        # level would stay and send lines to stderr; "" is the $FINDITY_LOG default again.
        _native.check(_native.findity_set_option(b"log_level", b""))
