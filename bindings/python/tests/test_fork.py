"""multiprocessing with the fork start method: children inherit a usable library."""

import multiprocessing
import os
import sys
import threading
import time
from typing import Dict, Tuple

import pytest

import findity_auth
from support import CLIENT_ID, SECRET, Emulator, bearer_get

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="fork start method is POSIX only"),
    # Python 3.12+ warns about fork() in a multi-threaded process: forking while another thread
    # is inside libfindity is exactly what these tests check is safe.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

# Set in the parent before forking; children read it (fork copies memory).
_URL = ""


def _child_tokens(i: int) -> Tuple[int, str, str, int]:
    org = findity_auth.get_token(_URL, CLIENT_ID, SECRET)
    user = findity_auth.user_token(_URL, CLIENT_ID, SECRET, "forked-user-%d" % i)
    status, _ = bearer_get(_URL + "/api/v1/me", user)
    return os.getpid(), org, user, status


def _child_org_token(_: int) -> Tuple[int, str]:
    return os.getpid(), findity_auth.get_token(_URL, CLIENT_ID, SECRET)


def _pool_map(fn, n: int):  # type: ignore[no-untyped-def]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes=2) as pool:
        return pool.map_async(fn, range(n)).get(timeout=30)


def test_fork_children_inherit_the_cached_token(emulator: Emulator) -> None:
    global _URL
    _URL = emulator.url
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    results = _pool_map(_child_org_token, 4)
    assert all(pid != os.getpid() for pid, _ in results)
    assert [t for _, t in results] == [token] * 4
    assert emulator.stat("client_credentials") == 1  # served from the inherited cache


def test_fork_while_a_parent_thread_is_mid_request(emulator: Emulator) -> None:
    global _URL
    _URL = emulator.url
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)  # the parent holds a token ...
    findity_auth.clear_cache()
    emulator.config(latency_ms=1000)
    parent: Dict[str, str] = {}
    # ... and a thread is inside a token request (holding the key in flight) while we fork.
    thread = threading.Thread(
        target=lambda: parent.update(token=findity_auth.get_token(emulator.url, CLIENT_ID, SECRET))
    )
    thread.start()
    deadline = time.monotonic() + 5
    in_flight = 0
    while in_flight == 0 and time.monotonic() < deadline:
        in_flight = emulator.stat("in_flight")
    assert in_flight == 1, "the parent's request should be in flight"

    ctx = multiprocessing.get_context("fork")
    t0 = time.monotonic()
    with ctx.Pool(processes=2) as pool:  # the workers are forked here, mid-request
        assert thread.is_alive()
        emulator.config(latency_ms=0)  # the children's own requests need not be slow
        results = pool.map_async(_child_tokens, range(3)).get(timeout=30)
    assert time.monotonic() - t0 < 20
    for pid, org, user, status in results:
        assert pid != os.getpid()
        assert org and user and org != user
        assert status == 200  # the child's user token works
    thread.join(10)
    assert parent.get("token"), "the parent's request finished"
    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == parent["token"]
