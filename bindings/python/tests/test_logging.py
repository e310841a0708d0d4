"""findity_auth.enable_logging(): the library's lines on the logging module, against the emulator."""

import logging
import re
import threading
import time
from typing import Iterator, List

import pytest

import findity_auth
from findity_auth import InvalidArgumentError
from support import CLIENT_ID, SECRET, WRONG_SECRET, Emulator, assert_no_secret


@pytest.fixture(autouse=True)
def logging_off_afterwards() -> Iterator[None]:
    yield
    findity_auth.disable_logging()


def findity_records(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [r for r in list(caplog.records) if r.name == "findity"]


def wait_for(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 5.0) -> logging.LogRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in findity_records(caplog):
            if text in r.getMessage():
                return r
        time.sleep(0.02)
    pytest.fail("no %r line in %r" % (text, [r.getMessage() for r in findity_records(caplog)]))


def test_new_token_is_logged_at_info_without_secrets(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="findity")
    findity_auth.enable_logging()
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    user = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")

    record = wait_for(caplog, "via client_credentials")
    assert record.levelno == logging.INFO
    assert record.name == "findity"
    assert CLIENT_ID in record.getMessage()
    assert re.search(r"#[0-9a-f]{8}", record.getMessage())  # a fingerprint, not the token
    wait_for(caplog, "via authorization grant")
    messages = [r.getMessage() for r in findity_records(caplog)]
    assert all(r.levelno >= logging.INFO for r in findity_records(caplog))  # "info" by default
    assert_no_secret(*messages, tokens=(token, user))


def test_failures_are_logged_without_the_secret(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="findity")
    findity_auth.enable_logging("warn")
    with pytest.raises(findity_auth.AuthError):
        findity_auth.get_token(emulator.url, CLIENT_ID, WRONG_SECRET)
    record = wait_for(caplog, "no token")
    assert record.levelno == logging.ERROR
    emulator.fault("token", "status:503")
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert wait_for(caplog, "retried").levelno == logging.WARNING
    assert all(r.levelno >= logging.WARNING for r in findity_records(caplog))  # no info lines
    assert_no_secret(*(r.getMessage() for r in findity_records(caplog)))


def test_levels_by_name_or_logging_constant(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="findity")
    findity_auth.enable_logging(logging.DEBUG)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    findity_auth.invalidate(emulator.url, CLIENT_ID)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert wait_for(caplog, "refresh_token grant").levelno == logging.DEBUG

    findity_auth.enable_logging("off")
    caplog.clear()
    findity_auth.invalidate(emulator.url, CLIENT_ID)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert findity_records(caplog) == []

    with pytest.raises(InvalidArgumentError):
        findity_auth.enable_logging("loud")
    with pytest.raises(TypeError):
        findity_auth.enable_logging(None)  # type: ignore[arg-type]


def test_background_refresh_thread_reaches_the_logger(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="findity")
    findity_auth.enable_logging()
    # Renewal starts in the background once half the lifetime, less a per-token jitter of up to
    # 0.19 s, is gone, and a token is never handed out in its last quarter: with 3 s, a call
    # between 1.69 and 2.25 s renews in the background (sleep never wakes early).
    emulator.config(lifetime=3)
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    time.sleep(1.9)
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == token  # served meanwhile
    record = wait_for(caplog, "background")
    assert record.thread != threading.get_ident()  # logged from the library's own thread
    wait_for(caplog, "via refresh_token")
    assert findity_auth.stats().background_refreshes >= 1


def test_disable_logging_stops_records_and_does_not_fall_back_to_stderr(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="findity")
    findity_auth.enable_logging("debug")
    findity_auth.disable_logging()
    findity_auth.disable_logging()  # idempotent
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    findity_auth.invalidate(emulator.url, CLIENT_ID)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert findity_records(caplog) == []
    assert "findity" not in capfd.readouterr().err  # $FINDITY_LOG is not set in the tests


def test_a_failing_handler_never_breaks_a_token_call(
    emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    class Exploding(logging.Handler):
        calls = 0

        def emit(self, record: logging.LogRecord) -> None:
            Exploding.calls += 1
            raise RuntimeError("handler bug")

    logger = logging.getLogger("findity")
    handler = Exploding()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        findity_auth.enable_logging()
        assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
        assert Exploding.calls >= 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert "handler bug" not in capfd.readouterr().err
