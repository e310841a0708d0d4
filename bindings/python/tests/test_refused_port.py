"""A port nothing listens on fails within 5 s with the default options (not after timeout_ms),
naming host and port; a cached token keeps being served meanwhile (issue 19, item 2)."""

import socket
import time

import pytest

import findity_auth
from findity_auth import NetworkError
from support import CLIENT_ID, SECRET, Emulator


def free_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("user", [None, "someone"])
def test_refused_port_fails_fast_with_host_and_port(user: str) -> None:
    findity_auth.set_option("timeout_ms", "")  # the default: 30 s
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as info:
        if user is None:
            findity_auth.get_token(url, CLIENT_ID, SECRET)
        else:
            findity_auth.user_token(url, CLIENT_ID, SECRET, user)
    took = time.monotonic() - t0
    message = info.value.message
    assert took < 5, (took, message)
    assert info.value.http_status == 0
    assert "nothing listens at 127.0.0.1:%d (connection refused" % port in message, message
    assert "attempts in" in message, message


def test_cached_token_is_served_while_nothing_listens() -> None:
    emu = Emulator()
    url = emu.url
    token = findity_auth.get_token(url, CLIENT_ID, SECRET)
    emu.stop()
    t0 = time.monotonic()
    assert findity_auth.get_token(url, CLIENT_ID, SECRET) == token
    assert time.monotonic() - t0 < 0.5
