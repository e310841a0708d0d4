"""FindityHttpxAuth with httpx.Client and httpx.AsyncClient against the emulator's resource API."""

import asyncio
import threading
from typing import List

import pytest

import findity_auth
from findity_auth import AuthError
from support import CLIENT_ID, SECRET, WRONG_SECRET, Emulator, assert_no_secret

httpx = pytest.importorskip("httpx")
from findity_auth import FindityHttpxAuth  # noqa: E402  (needs httpx)


def renewals(emulator: Emulator) -> int:
    stats = emulator.stats()
    return int(stats["client_credentials"]) + int(stats["refresh_token"])


def test_is_an_httpx_auth_and_hides_the_secret(emulator: Emulator) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")
    assert isinstance(auth, httpx.Auth) and isinstance(auth, findity_auth.FindityAuth)
    assert_no_secret(repr(auth), str(auth))


def test_sync_client(emulator: Emulator) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET)
    with httpx.Client(auth=auth, timeout=10) as client:
        for path in ("/api/v1/me", "/api/v1/expenses"):
            r = client.get(emulator.url + path)
            assert r.status_code == 200 and r.json()["subject"] == "org:" + CLIENT_ID
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert r.request.headers["Authorization"] == "Bearer " + token and r.history == []
    r = httpx.get(emulator.url + "/api/v1/me", auth=FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET, "bob"))
    assert r.json()["subject"] == "user:bob"
    assert emulator.stat("client_credentials") == 1


def test_async_client(emulator: Emulator) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")

    async def run() -> List[int]:
        async with httpx.AsyncClient(auth=auth, timeout=10) as client:
            answers = await asyncio.gather(*(client.get(emulator.url + "/api/v1/me") for _ in range(20)))
        assert {a.json()["subject"] for a in answers} == {"user:alice"}
        return [a.status_code for a in answers]

    assert asyncio.run(run()) == [200] * 20
    stats = emulator.stats()
    assert (stats["client_credentials"], stats["authorization_code"], stats["api_requests"]) == (1, 1, 20)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_401_once_renews_and_resends_once(emulator: Emulator, mode: str) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET)
    old = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    emulator.fault("api", "status:401", count=1)
    if mode == "sync":
        r = httpx.post(emulator.url + "/api/v1/expenses", json={"amount": 12.5}, auth=auth)
    else:
        async def send() -> "httpx.Response":
            async with httpx.AsyncClient(auth=auth) as client:
                return await client.post(emulator.url + "/api/v1/expenses", json={"amount": 12.5})

        r = asyncio.run(send())
    assert r.status_code == 200 and [h.status_code for h in r.history] == [401]
    new = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert new != old and r.request.headers["Authorization"] == "Bearer " + new
    assert emulator.stat("api_requests") == 2 and renewals(emulator) == 2  # the first + one


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_always_401_retries_only_once(emulator: Emulator, mode: str) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET)
    emulator.fault("api", "status:401", count=0)
    if mode == "sync":
        r = httpx.get(emulator.url + "/api/v1/me", auth=auth)
    else:
        async def send() -> "httpx.Response":
            async with httpx.AsyncClient(auth=auth) as client:
                return await client.get(emulator.url + "/api/v1/me")

        r = asyncio.run(send())
    assert r.status_code == 401 and len(r.history) == 1
    assert emulator.stat("api_requests") == 2


def test_token_errors_surface_and_nothing_is_sent(emulator: Emulator) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, WRONG_SECRET)
    with pytest.raises(AuthError) as info:
        httpx.get(emulator.url + "/api/v1/me", auth=auth)
    assert_no_secret(str(info.value), repr(info.value))

    async def send() -> None:
        async with httpx.AsyncClient(auth=auth) as client:
            await client.get(emulator.url + "/api/v1/me")

    with pytest.raises(AuthError):
        asyncio.run(send())
    assert emulator.stat("api_requests") == 0


def test_50_concurrent_401s_with_one_token_renew_once_sync(emulator: Emulator) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET)
    old = auth.token()
    emulator.revoke("access")  # every request with `old` is now answered 401
    before = renewals(emulator)
    barrier = threading.Barrier(50)
    answers: List[int] = []
    first = threading.local()

    class Together(httpx.HTTPTransport):
        """Holds each thread's first request until all 50 have their (old) token."""

        def handle_request(self, request: "httpx.Request") -> "httpx.Response":
            if not getattr(first, "sent", False):
                first.sent = True
                barrier.wait()
            return super().handle_request(request)

    def one() -> None:
        with httpx.Client(auth=auth, timeout=10, transport=Together()) as client:
            r = client.get(emulator.url + "/api/v1/me")
            answers.append(r.status_code * 10 + len(r.history))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [2001] * 50  # each: one 401, then 200
    assert renewals(emulator) - before == 1
    assert auth.token() != old


def test_200_concurrent_401s_with_one_token_renew_once_async(emulator: Emulator) -> None:
    auth = FindityHttpxAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")
    old = auth.token()
    emulator.revoke("access")
    stats = emulator.stats()
    before = int(stats["authorization_code"]) + int(stats["refresh_token"])

    async def run() -> List["httpx.Response"]:
        waiting = [0]
        all_there = asyncio.Event()

        class Together(httpx.AsyncHTTPTransport):
            """Holds the first 200 requests until all 200 have their (old) token."""

            async def handle_async_request(self, request: "httpx.Request") -> "httpx.Response":
                if waiting[0] < 200:
                    waiting[0] += 1
                    if waiting[0] == 200:
                        all_there.set()
                    await all_there.wait()
                return await super().handle_async_request(request)

        transport = Together(limits=httpx.Limits(max_connections=200))
        async with httpx.AsyncClient(auth=auth, timeout=30, transport=transport) as client:
            return await asyncio.gather(*(client.get(emulator.url + "/api/v1/me") for _ in range(200)))

    answers = asyncio.run(run())
    assert [(a.status_code, len(a.history)) for a in answers] == [(200, 1)] * 200
    stats = emulator.stats()
    assert int(stats["authorization_code"]) + int(stats["refresh_token"]) - before == 1
    assert auth.token() != old
