"""The findity-emulator for the tests: start/stop and its control API; shared test constants."""

import json
import os
import select
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import pytest

CLIENT_ID = "demo-client"
SECRET = "s3cr3t-PY-7f3a9c"  # distinctive, so "never in a message" checks mean something
OTHER_CLIENT_ID = "other-client"
OTHER_SECRET = "s3cr3t-PY-other-51d2e0"
WRONG_SECRET = "wr0ng-PY-secret-0b8e44"
SECRETS = (SECRET, OTHER_SECRET, WRONG_SECRET)

REPO_ROOT = Path(__file__).resolve().parents[3]


def emulator_binary() -> str:
    path = os.environ.get("FINDITY_EMULATOR") or str(REPO_ROOT / "target/debug/findity-emulator")
    if not os.access(path, os.X_OK):
        pytest.fail(
            "findity-emulator not found at %s: build it (cargo build -p findity-emulator) "
            "and set FINDITY_EMULATOR" % path
        )
    return path


class Emulator:
    """A running findity-emulator on a loopback port, and its control API."""

    def __init__(self, *args: str) -> None:
        cmd = [
            emulator_binary(),
            "--port", "0",
            "--quiet",
            "--exit-on-stdin-close",
            "--client", "%s:%s" % (CLIENT_ID, SECRET),
            "--client", "%s:%s" % (OTHER_CLIENT_ID, OTHER_SECRET),
            "--unknown-users", "unknown-user-1,unknown-x,unknown-y",
            *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError("findity-emulator did not print its URL (got %r)" % line)
        self.url = line

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()  # --exit-on-stdin-close
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def _call(self, method: str, path: str, **params: Any) -> Any:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def stats(self) -> Dict[str, Any]:
        return self._call("GET", "/_emulator/stats")

    def stat(self, name: str) -> int:
        return int(self.stats()[name])

    def fault(self, endpoint: str, kind: str, count: int = 1, **extra: Any) -> None:
        self._call("POST", "/_emulator/fault", endpoint=endpoint, kind=kind, count=count, **extra)

    def clear_faults(self) -> None:
        self._call("POST", "/_emulator/fault/clear")

    def config(self, **params: Any) -> None:
        self._call("POST", "/_emulator/config", **params)

    def revoke(self, what: str) -> None:
        self._call("POST", "/_emulator/revoke", what=what)


def assert_no_secret(*texts: str, tokens: Sequence[str] = ()) -> None:
    """No secret (and none of ``tokens``) appears in any of ``texts``."""
    for text in texts:
        for s in (*SECRETS, *tokens):
            assert s not in text, "a secret or token leaked into %r" % text


def bearer_get(url: str, token: str) -> Tuple[int, Dict[str, Any]]:
    """GET ``url`` with ``Authorization: Bearer token`` (urllib); status and JSON body."""
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
