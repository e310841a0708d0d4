"""Every function and exception of findity_auth, against the emulator."""

import logging
import pickle
import re
import socket
import threading
import time
from typing import List

import pytest

import findity_auth
from findity_auth import (
    AuthError,
    FindityError,
    InternalError,
    InvalidArgumentError,
    NetworkError,
    ServerError,
    Status,
)
from findity_auth import _native
from support import (
    CLIENT_ID,
    OTHER_CLIENT_ID,
    OTHER_SECRET,
    SECRET,
    WRONG_SECRET,
    Emulator,
    assert_no_secret,
    bearer_get,
)


def test_version() -> None:
    v = findity_auth.version()
    assert isinstance(v, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+", v), v
    assert v.split(".")[0] == str(_native.ABI_MAJOR)


def test_get_token_is_cached_and_valid(emulator: Emulator) -> None:
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert isinstance(token, str) and token
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == token
    stats = emulator.stats()
    assert stats["client_credentials"] == 1
    assert stats["token_requests"] == 1
    assert bearer_get(emulator.url + "/api/v1/me", token) == (
        200,
        {"subject": "org:" + CLIENT_ID, "path": "/api/v1/me"},
    )


def test_user_token(emulator: Emulator) -> None:
    org = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    token = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    assert isinstance(token, str) and token and token != org
    assert findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice") == token
    assert findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "bob") != token
    stats = emulator.stats()
    assert stats["client_credentials"] == 1  # the cached organization token made the grants
    assert stats["authorization_grant"] == 2 and stats["authorization_code"] == 2
    status, body = bearer_get(emulator.url + "/api/v1/me", token)
    assert (status, body["subject"]) == (200, "user:alice")


def test_cached_token_cold_sends_nothing(emulator: Emulator) -> None:
    before = findity_auth.stats()
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) is None
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET, "alice") is None
    assert emulator.stat("token_requests") == 0
    assert findity_auth.stats().failures == before.failures  # NOT_CACHED is not a failure
    assert findity_auth.stats().failures[Status.NOT_CACHED] == 0


def test_cached_token_after_get_token(emulator: Emulator) -> None:
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) == token
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET, user_id=None) == token
    alice = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    sent = emulator.stats()
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET, "alice") == alice
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) == token  # still the org's
    findity_auth.invalidate(emulator.url, CLIENT_ID)
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) is None
    assert emulator.stats() == sent  # no request of any kind


def test_cached_token_is_none_for_another_secret(emulator: Emulator) -> None:
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, WRONG_SECRET) is None
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) == token
    assert emulator.stat("token_requests") == 1


def test_cached_token_is_none_for_a_user_without_a_token(emulator: Emulator) -> None:
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    sent = emulator.stats()
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET, "bob") is None
    assert emulator.stats() == sent  # no grant for bob


def test_cached_token_argument_errors_raise(emulator: Emulator) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        findity_auth.cached_token(emulator.url, "", SECRET)
    assert "client_id" in str(info.value)
    with pytest.raises(InvalidArgumentError):
        findity_auth.cached_token("ftp://example.com", CLIENT_ID, SECRET)
    with pytest.raises(InvalidArgumentError):
        findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET, "")
    with pytest.raises(TypeError):
        findity_auth.cached_token(emulator.url, CLIENT_ID, None)  # type: ignore[arg-type]
    assert emulator.stat("token_requests") == 0


def test_cached_token_grows_its_buffer(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    monkeypatch.setattr(_native, "INITIAL_BUFFER_SIZE", 1)
    monkeypatch.setattr(_native, "_per_thread", _native._PerThread())
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) == token
    assert findity_auth.cached_token(emulator.url, CLIENT_ID, SECRET) == token
    assert emulator.stat("token_requests") == 1


def test_str_in_and_out_is_utf8(emulator: Emulator) -> None:
    user = "jöns-åäö-東京"
    token = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, user)
    assert isinstance(token, str)
    status, body = bearer_get(emulator.url + "/api/v1/me", token)
    assert (status, body["subject"]) == (200, "user:" + user)


def test_invalidate_organization_token(emulator: Emulator) -> None:
    first = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert findity_auth.invalidate(emulator.url, CLIENT_ID) is None
    second = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert second != first
    stats = emulator.stats()
    assert (stats["client_credentials"], stats["refresh_token"]) == (1, 1)  # renewed by refresh
    # Nothing cached is not an error, and sends nothing.
    findity_auth.invalidate(emulator.url, "never-used-client")
    findity_auth.invalidate(emulator.url, CLIENT_ID, user_id="never-used-user")
    assert emulator.stat("token_requests") == 2


def test_invalidate_user_token_keeps_organization_token(emulator: Emulator) -> None:
    org = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    first = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    findity_auth.invalidate(emulator.url, CLIENT_ID, "alice")
    second = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    assert second != first
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == org
    stats = emulator.stats()
    assert stats["client_credentials"] == 1
    assert stats["authorization_grant"] + stats["refresh_token"] == 2  # one new user token


def test_clear_cache(emulator: Emulator) -> None:
    org = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    assert findity_auth.clear_cache() is None
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) != org
    findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    stats = emulator.stats()
    assert (stats["client_credentials"], stats["authorization_grant"]) == (2, 2)


def test_set_option_timeout(emulator: Emulator) -> None:
    emulator.fault("token", "hang", count=0)
    findity_auth.set_option("timeout_ms", 400)  # int accepted
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as info:
        findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert time.monotonic() - t0 < 5
    assert info.value.status == Status.NETWORK == 3
    assert info.value.http_status == 0
    assert info.value.message
    findity_auth.set_option("timeout_ms", "")  # restores the default
    findity_auth.set_option("timeout_ms", None)
    findity_auth.set_option("timeout_ms", "30000")


def test_set_option_rejects_bad_names_and_values() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        findity_auth.set_option("no_such_option", "1")
    assert isinstance(info.value, ValueError) and isinstance(info.value, FindityError)
    assert info.value.status == Status.INVALID_ARGUMENT
    assert "no_such_option" in str(info.value)
    with pytest.raises(ValueError):
        findity_auth.set_option("timeout_ms", "soon")
    with pytest.raises(TypeError):
        findity_auth.set_option("timeout_ms", 1.5)  # type: ignore[arg-type]


def test_auth_error_has_status_and_no_secret(emulator: Emulator) -> None:
    with pytest.raises(AuthError) as info:
        findity_auth.get_token(emulator.url, CLIENT_ID, WRONG_SECRET)
    e = info.value
    assert e.status == Status.AUTH and e.http_status in (400, 401)
    assert e.message and str(e) == e.message
    assert "oauth/token" in e.message
    assert_no_secret(e.message, str(e), repr(e), repr(e.args))
    assert e.__cause__ is None and e.__context__ is None


def test_unknown_user_is_auth_error(emulator: Emulator) -> None:
    with pytest.raises(AuthError) as info:
        findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "unknown-user-1")
    assert info.value.http_status == 400
    assert "USER_NOT_FOUND" in info.value.message
    assert_no_secret(str(info.value), repr(info.value))


def test_server_error(emulator: Emulator) -> None:
    findity_auth.set_option("timeout_ms", 1000)
    emulator.fault("token", "status:503", count=0)
    with pytest.raises(ServerError) as info:
        findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert info.value.status == Status.SERVER
    assert info.value.http_status == 503


def test_network_error() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    findity_auth.set_option("timeout_ms", 1000)
    with pytest.raises(NetworkError) as info:
        findity_auth.get_token("http://127.0.0.1:%d" % port, CLIENT_ID, SECRET)
    assert info.value.http_status == 0
    assert "127.0.0.1:%d" % port in info.value.message


def test_invalid_arguments_send_nothing(emulator: Emulator) -> None:
    cases = [
        ("", CLIENT_ID, SECRET, "base_url"),
        ("ftp://example.com", CLIENT_ID, SECRET, "base_url"),
        (emulator.url, "", SECRET, "client_id"),
        (emulator.url, "a\x00b", SECRET, "client_id"),
        (emulator.url, CLIENT_ID, SECRET + "\x00", "client_secret"),
        (emulator.url, CLIENT_ID, "\ud800" + SECRET, "client_secret"),
    ]
    for base_url, client_id, secret, what in cases:
        with pytest.raises(InvalidArgumentError) as info:
            findity_auth.get_token(base_url, client_id, secret)
        assert info.value.status == Status.INVALID_ARGUMENT and info.value.http_status == 0
        assert what in str(info.value), (what, str(info.value))
        assert_no_secret(str(info.value), repr(info.value))
        assert info.value.__context__ is None  # no chained UnicodeEncodeError holding the secret
    with pytest.raises(InvalidArgumentError):
        findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "")
    with pytest.raises(InvalidArgumentError):
        findity_auth.invalidate(emulator.url, "")
    for bad in (None, b"bytes", 42):
        with pytest.raises(TypeError):
            findity_auth.get_token(emulator.url, bad, SECRET)  # type: ignore[arg-type]
    assert emulator.stat("token_requests") == 0


@pytest.mark.parametrize(
    "status, cls",
    [
        (1, InvalidArgumentError),
        (3, NetworkError),
        (4, AuthError),
        (5, ServerError),
        (6, InternalError),
        (2, FindityError),
        (99, FindityError),
    ],
)
def test_exception_hierarchy_and_pickling(status: int, cls: type) -> None:
    from findity_auth._errors import error_for_status

    e = error_for_status(status, 503, "token endpoint answered 503")
    assert type(e) is cls and isinstance(e, FindityError) and isinstance(e, Exception)
    assert isinstance(e, ValueError) == (cls is InvalidArgumentError)
    assert (e.status, e.http_status, e.message) == (status, 503, "token endpoint answered 503")
    assert str(e) == "token endpoint answered 503"
    copy = pickle.loads(pickle.dumps(e))  # multiprocessing sends exceptions by pickle
    assert type(copy) is cls
    assert (copy.status, copy.http_status, copy.message) == (e.status, e.http_status, e.message)
    assert str(error_for_status(status, 0, "")) != ""  # never an empty message


def test_last_error_is_read_on_the_failing_thread(emulator: Emulator) -> None:
    """Two threads fail differently at the same time; each sees its own message."""
    failures: List[str] = []
    start = threading.Barrier(2)

    def unknown_user() -> None:
        start.wait()
        for _ in range(25):
            try:
                findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "unknown-x")
            except AuthError as e:
                if "USER_NOT_FOUND" not in e.message or e.http_status != 400:
                    failures.append("auth thread saw %r" % e)
            else:
                failures.append("auth thread: no error")

    def bad_base_url() -> None:
        start.wait()
        for _ in range(200):
            try:
                findity_auth.get_token("ftp://nowhere.example", CLIENT_ID, SECRET)
            except InvalidArgumentError as e:
                if "base_url" not in e.message or e.http_status != 0:
                    failures.append("argument thread saw %r" % e)
            else:
                failures.append("argument thread: no error")

    threads = [threading.Thread(target=unknown_user), threading.Thread(target=bad_base_url)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []


@pytest.mark.parametrize("initial", [0, 1, 16])
def test_buffer_grows_without_a_second_request(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, initial: int
) -> None:
    sizes: List[int] = []
    original = _native.findity_get_token

    def recording(*args):  # type: ignore[no-untyped-def]
        sizes.append(args[4].value)  # buf_len, a c_size_t
        return original(*args)

    # A thread's first buffer has INITIAL_BUFFER_SIZE bytes: start this thread afresh.
    monkeypatch.setattr(_native, "INITIAL_BUFFER_SIZE", initial)
    monkeypatch.setattr(_native, "_per_thread", _native._PerThread())
    monkeypatch.setattr(_native, "findity_get_token", recording)
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert len(token) + 1 > 16
    assert sizes == [initial, len(token) + 1]
    assert emulator.stat("token_requests") == 1  # the retry was served from the cache
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == token
    assert sizes == [initial, len(token) + 1, len(token) + 1]  # the grown buffer is kept
    monkeypatch.undo()
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == token
    assert emulator.stat("token_requests") == 1


def test_a_token_call_nested_in_another_uses_its_own_buffer(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token buffers are reused per thread, but a call made while another is between the C call
    and reading its buffer (from a signal handler, a __del__, a log handler) must not overwrite
    it. Here the nested call runs right after the outer C call wrote its token."""
    org = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    alice = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    original = _native.findity_get_token
    nested: List[str] = []

    def nesting(*args):  # type: ignore[no-untyped-def]
        status = original(*args)
        nested.append(findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice"))
        return status

    monkeypatch.setattr(_native, "findity_get_token", nesting)
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == org
    assert nested == [alice]
    monkeypatch.undo()
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == org
    assert findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice") == alice


def test_a_log_handler_may_fetch_tokens(emulator: Emulator) -> None:
    """The library logs on the calling thread in the middle of a token call; a handler that
    gets a token itself (to ship the lines somewhere) gets its own, and so does the caller."""
    other = findity_auth.get_token(emulator.url, OTHER_CLIENT_ID, OTHER_SECRET)
    seen: List[str] = []

    class Shipping(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if threading.current_thread() is threading.main_thread():
                seen.append(findity_auth.get_token(emulator.url, OTHER_CLIENT_ID, OTHER_SECRET))

    logger = logging.getLogger("findity")
    handler = Shipping()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        findity_auth.enable_logging("debug")
        org = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
        findity_auth.invalidate(emulator.url, CLIENT_ID)
        renewed = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    finally:
        findity_auth.disable_logging()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert seen and set(seen) == {other}
    assert org != other and renewed not in (org, other)
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == renewed


def test_small_buffers_for_user_tokens_and_messages(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AuthError) as full:
        findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "unknown-y")
    monkeypatch.setattr(_native, "INITIAL_BUFFER_SIZE", 1)
    monkeypatch.setattr(_native, "_per_thread", _native._PerThread())  # this thread afresh
    token = findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    assert bearer_get(emulator.url + "/api/x", token)[0] == 200
    assert emulator.stat("authorization_code") == 1
    with pytest.raises(AuthError) as small:
        findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "unknown-y")
    assert small.value.message == full.value.message and len(full.value.message) > 1
