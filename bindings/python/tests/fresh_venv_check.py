"""Run by scripts/test-python.sh in a fresh venv holding only the installed wheel (plus requests
and httpx): tokens through requests, httpx (sync and async) and asyncio, from the library
inside the wheel, with no environment variable set. Not a pytest module (no test_ prefix)."""

import asyncio
import os
import select
import subprocess
import sys
import sysconfig

import httpx
import requests

import findity_auth
from findity_auth import FindityAuth, FindityHttpxAuth, _native


def main() -> int:
    site = sysconfig.get_paths()["platlib"]
    assert _native.LIB_PATH.startswith(site), "libfindity from %s, not the wheel" % _native.LIB_PATH
    assert "FINDITY_LIB" not in os.environ
    emu = subprocess.Popen(
        [os.environ["FINDITY_EMULATOR"], "--port", "0", "--quiet", "--exit-on-stdin-close",
         "--client", "fresh-client:fresh-secret"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert emu.stdout is not None
        select.select([emu.stdout], [], [], 10)
        url = emu.stdout.readline().decode().strip()
        assert url.startswith("http://"), url
        args = (url, "fresh-client", "fresh-secret")

        r = requests.get(url + "/api/v1/me", auth=FindityAuth(*args), timeout=10)
        assert r.status_code == 200 and r.json()["subject"] == "org:fresh-client", r.text
        r = httpx.get(url + "/api/v1/me", auth=FindityHttpxAuth(*args, user_id="E1234"))
        assert r.status_code == 200 and r.json()["subject"] == "user:E1234", r.text

        async def run() -> None:
            findity_auth.clear_cache()
            token = await findity_auth.aget_token(*args)
            assert token == findity_auth.get_token(*args)
            user = await findity_auth.aget_user_token(*args, "E5678")
            async with httpx.AsyncClient(auth=FindityHttpxAuth(*args, user_id="E5678")) as client:
                r = await client.get(url + "/api/v1/me")
                assert r.status_code == 200 and r.json()["subject"] == "user:E5678", r.text
                assert r.request.headers["Authorization"] == "Bearer " + user

        asyncio.run(run())
    finally:
        if emu.stdin:
            emu.stdin.close()
        emu.wait(10)
    print(
        "fresh venv: findity_auth %s, libfindity %s from %s: requests, httpx, httpx async and "
        "asyncio ok" % (findity_auth.__version__, findity_auth.version(), _native.LIB_PATH)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
