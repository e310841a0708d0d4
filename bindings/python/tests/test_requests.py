"""FindityAuth: with requests (retry once on 401), as a plain callable, without requests."""

import http.server
import io
import json
import os
import subprocess
import sys
import threading
import urllib.request
from typing import Any, Iterator, List, Tuple

import pytest

import findity_auth
from findity_auth import AuthError, FindityAuth
from support import CLIENT_ID, SECRET, WRONG_SECRET, Emulator, assert_no_secret

requests = pytest.importorskip("requests")


def test_requests_adds_the_bearer_header(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    resp = requests.get(emulator.url + "/api/v1/me", auth=auth, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["subject"] == "org:" + CLIENT_ID
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert resp.request.headers["Authorization"] == "Bearer " + token
    assert resp.history == []


def test_session_auth_reuses_the_cached_token(emulator: Emulator) -> None:
    with requests.Session() as session:
        session.auth = FindityAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")
        for path in ("/api/v1/me", "/api/v1/expenses", "/api/v1/me"):
            resp = session.get(emulator.url + path, timeout=10)
            assert resp.status_code == 200 and resp.json()["subject"] == "user:alice"
    stats = emulator.stats()
    assert (stats["client_credentials"], stats["authorization_code"], stats["api_requests"]) == (
        1,
        1,
        3,
    )


def test_401_once_invalidates_and_retries_once(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    old = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    emulator.fault("api", "status:401", count=1)  # the resource server answers 401 once
    resp = requests.get(emulator.url + "/api/v1/me", auth=auth, timeout=10)
    assert resp.status_code == 200
    assert [r.status_code for r in resp.history] == [401]
    assert resp.history[0].request.headers["Authorization"] == "Bearer " + old
    new = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert new != old  # invalidated and renewed ...
    assert resp.request.headers["Authorization"] == "Bearer " + new  # ... and resent with it
    stats = emulator.stats()
    assert stats["api_requests"] == 2
    assert (stats["client_credentials"], stats["refresh_token"]) == (1, 1)


def test_revoked_access_token_is_replaced(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")
    assert requests.get(emulator.url + "/api/v1/me", auth=auth, timeout=10).status_code == 200
    emulator.revoke("access")  # a real 401 from the token check, not an injected one
    resp = requests.get(emulator.url + "/api/v1/me", auth=auth, timeout=10)
    assert resp.status_code == 200 and [r.status_code for r in resp.history] == [401]
    assert resp.json()["subject"] == "user:alice"


def test_always_401_retries_only_once(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    emulator.fault("api", "status:401", count=0)  # until cleared
    resp = requests.get(emulator.url + "/api/v1/me", auth=auth, timeout=10)
    assert resp.status_code == 401
    assert len(resp.history) == 1
    assert emulator.stat("api_requests") == 2


def test_token_errors_surface_from_requests(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, WRONG_SECRET)
    with pytest.raises(AuthError) as info:
        requests.get(emulator.url + "/api/v1/me", auth=auth, timeout=10)
    assert_no_secret(str(info.value), repr(info.value))
    assert emulator.stat("api_requests") == 0


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback resource server that answers 401 to its first request, then 200."""

    seen: List[Tuple[str, str, bytes]] = []

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return body
                body += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        self.seen.append((self.command, self.headers.get("Authorization", ""), self._body()))
        status = 401 if len(self.seen) == 1 else 200
        payload = json.dumps({"n": len(self.seen)}).encode()
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def resource_server() -> Iterator[Tuple[str, List[Tuple[str, str, bytes]]]]:
    seen: List[Tuple[str, str, bytes]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["bytes", "form", "json", "file"])
def test_retry_resends_the_body(emulator: Emulator, resource_server: Any, kind: str) -> None:
    url, seen = resource_server
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    payload = b'{"amount": 12.5, "currency": "SEK", "note": "lunch \xc3\xa5"}'
    kwargs = {
        "bytes": {"data": payload},
        "form": {"data": {"amount": "12.5", "note": "lunch"}},
        "json": {"json": {"amount": 12.5}},
        "file": {"data": io.BytesIO(payload)},
    }[kind]
    resp = requests.post(url + "/expenses", auth=auth, timeout=10, **kwargs)
    assert resp.status_code == 200 and resp.json() == {"n": 2}
    assert [r.status_code for r in resp.history] == [401]
    assert len(seen) == 2
    (m1, auth1, body1), (m2, auth2, body2) = seen
    assert m1 == m2 == "POST" and body1 == body2 and body1
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert auth1 != auth2 == "Bearer " + token


def test_unrewindable_body_is_not_resent(emulator: Emulator, resource_server: Any) -> None:
    url, seen = resource_server
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    resp = requests.post(url + "/upload", data=(c for c in [b"a", b"b"]), auth=auth, timeout=10)
    assert resp.status_code == 401 and resp.history == []
    assert len(seen) == 1 and seen[0][2] == b"ab"


def test_plain_callable_and_headers(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    headers = auth()
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert headers == {"Authorization": "Bearer " + token} == auth.headers()
    assert auth.token() == token
    req = urllib.request.Request(emulator.url + "/api/v1/me", headers=auth())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["subject"] == "org:" + CLIENT_ID
    auth.invalidate()
    assert auth.token() != token
    user = FindityAuth(emulator.url, CLIENT_ID, SECRET, "bob")
    assert user()["Authorization"] == "Bearer " + findity_auth.user_token(
        emulator.url, CLIENT_ID, SECRET, "bob"
    )


def test_repr_hides_the_secret(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")
    assert_no_secret(repr(auth), str(auth))
    assert CLIENT_ID in repr(auth) and "alice" in repr(auth)
    assert auth == FindityAuth(emulator.url, CLIENT_ID, SECRET, user_id="alice")
    assert auth != FindityAuth(emulator.url, CLIENT_ID, WRONG_SECRET, user_id="alice")
    with pytest.raises(TypeError):
        FindityAuth(emulator.url, CLIENT_ID, None)  # type: ignore[arg-type]


def test_imports_and_works_without_requests(emulator: Emulator) -> None:
    code = (
        "import sys; sys.modules['requests'] = None\n"  # makes `import requests` fail
        "import findity_auth\n"
        "auth = findity_auth.FindityAuth(sys.argv[1], sys.argv[2], sys.argv[3])\n"
        "assert 'requests' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(auth()['Authorization'].split()[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, emulator.url, CLIENT_ID, SECRET],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Bearer"


def test_50_concurrent_401s_with_one_token_renew_once(emulator: Emulator) -> None:
    auth = FindityAuth(emulator.url, CLIENT_ID, SECRET)
    old = auth.token()
    emulator.revoke("access")  # every request with `old` is now answered 401
    stats = emulator.stats()
    before = stats["client_credentials"] + stats["refresh_token"]
    barrier = threading.Barrier(50)
    answers: List[Tuple[int, int]] = []

    def one() -> None:
        with requests.Session() as session:
            # Prepared first (that is when the header is set), so all 50 send the old token.
            prep = session.prepare_request(requests.Request("GET", emulator.url + "/api/v1/me", auth=auth))
            barrier.wait()
            r = session.send(prep, timeout=10)
            answers.append((r.status_code, len(r.history)))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [(200, 1)] * 50  # each: one 401 with the old token, then 200
    stats = emulator.stats()
    assert stats["client_credentials"] + stats["refresh_token"] - before == 1
    assert auth.token() != old
