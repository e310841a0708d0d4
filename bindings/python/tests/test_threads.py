"""Threads: single flight on a cold cache, and calls that run without the GIL."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional

import findity_auth
from support import CLIENT_ID, OTHER_CLIENT_ID, OTHER_SECRET, SECRET, Emulator

THREADS = 32


def _all_at_once(n: int, fn: Callable[[], str]) -> List[str]:
    barrier = threading.Barrier(n)

    def run() -> str:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run) for _ in range(n)]
        return [f.result(timeout=30) for f in futures]


def test_32_threads_cold_cache_make_one_token_request(emulator: Emulator) -> None:
    emulator.config(latency_ms=300)  # all 32 arrive while the first request is in flight
    tokens = _all_at_once(THREADS, lambda: findity_auth.get_token(emulator.url, CLIENT_ID, SECRET))
    assert len(set(tokens)) == 1 and tokens[0]
    stats = emulator.stats()
    assert stats["client_credentials"] == 1
    assert stats["token_requests"] == 1
    assert stats["max_concurrent"] == 1


def test_32_threads_cold_cache_make_one_user_grant(emulator: Emulator) -> None:
    emulator.config(latency_ms=200)
    tokens = _all_at_once(
        THREADS, lambda: findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    )
    assert len(set(tokens)) == 1
    stats = emulator.stats()
    assert (stats["client_credentials"], stats["authorization_grant"]) == (1, 1)
    assert stats["authorization_code"] == 1 and stats["max_concurrent"] == 1


def test_calls_release_the_gil(emulator: Emulator) -> None:
    """Two keys, two threads, 800 ms each: parallel (< 1.6 s) only if the GIL is released."""
    emulator.config(latency_ms=800)
    calls = [
        lambda: findity_auth.get_token(emulator.url, CLIENT_ID, SECRET),
        lambda: findity_auth.get_token(emulator.url, OTHER_CLIENT_ID, OTHER_SECRET),
    ]
    barrier = threading.Barrier(2)

    def run(i: int) -> str:
        barrier.wait()
        return calls[i]()

    # Meanwhile this thread keeps running Python code.
    t0 = time.monotonic()
    ticks = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(run, i) for i in range(2)]
        while not all(f.done() for f in futures):
            ticks += 1
            time.sleep(0.01)
        tokens = [f.result() for f in futures]
    elapsed = time.monotonic() - t0
    assert tokens[0] != tokens[1]
    assert elapsed < 1.5, "the two requests ran one after the other (%.2f s)" % elapsed
    assert emulator.stat("max_concurrent") == 2
    assert ticks > 20


def test_threads_hammering_cached_tokens_each_get_their_own(emulator: Emulator) -> None:
    """Cached tokens go through per-thread buffers while the GIL is released: no thread may
    ever see another key's token (or a torn one)."""
    keys = [
        (CLIENT_ID, SECRET, None),
        (OTHER_CLIENT_ID, OTHER_SECRET, None),
        (CLIENT_ID, SECRET, "alice"),
        (OTHER_CLIENT_ID, OTHER_SECRET, "bob"),
    ]

    def fetch(client_id: str, secret: str, user: Optional[str]) -> str:
        if user is None:
            return findity_auth.get_token(emulator.url, client_id, secret)
        return findity_auth.user_token(emulator.url, client_id, secret, user)

    expected = [fetch(*k) for k in keys]
    assert len(set(expected)) == len(keys)

    def run(i: int) -> int:
        wrong = 0
        for n in range(3000):
            k = (i + n) % len(keys)
            wrong += fetch(*keys[k]) != expected[k]
        return wrong

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(run, range(8))) == [0] * 8
    assert emulator.stat("token_requests") == 4  # 2 organization tokens + 2 code exchanges
