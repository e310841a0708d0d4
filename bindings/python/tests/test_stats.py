"""findity_auth.stats() and findity_auth.token_expires_in(), against the emulator."""

import ctypes
import dataclasses
import re
from typing import Dict

import pytest

import findity_auth
from findity_auth import InvalidArgumentError, Stats, Status
from findity_auth import _native
from support import CLIENT_ID, REPO_ROOT, SECRET, WRONG_SECRET, Emulator


def delta(before: Stats, after: Stats) -> Dict[str, int]:
    """The counters that changed (failures as "failures[NAME]"), by how much."""
    moved = {}
    for field in dataclasses.fields(Stats):
        if field.name == "failures":
            for status in Status:
                n = after.failures[status] - before.failures[status]
                if n:
                    moved["failures[%s]" % status.name] = n
        else:
            n = getattr(after, field.name) - getattr(before, field.name)
            if n:
                moved[field.name] = n
    return moved


def test_struct_matches_the_header() -> None:
    header = (REPO_ROOT / "include" / "findity.h").read_text()
    body = re.search(r"typedef struct FindityStats \{(.*?)\} FindityStats;", header, re.S)
    assert body is not None
    fields = re.findall(r"uint64_t (\w+)(?:\[(\d+)\])?;", body.group(1))
    after = [(n, "") for n in _native.STATS_COUNTERS_AFTER]
    assert fields == [(n, "") for n in _native.STATS_COUNTERS] + [("failures", "7")] + after
    assert ctypes.sizeof(_native.FindityStats) == len(fields + [("", "")] * 6) * 8
    assert [f.name for f in dataclasses.fields(Stats)] == [
        *_native.STATS_COUNTERS,
        "failures",
        *_native.STATS_COUNTERS_AFTER,
    ]


def test_stats_is_a_frozen_snapshot() -> None:
    s = findity_auth.stats()
    assert isinstance(s, Stats)
    assert all(isinstance(getattr(s, n), int) for n in _native.STATS_COUNTERS)
    assert isinstance(s.failures, tuple) and len(s.failures) == len(Status)
    assert s.failures[Status.OK] == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.cache_hits = 0  # type: ignore[misc]
    assert hash(s) == hash(dataclasses.replace(s))


def test_counters_move_with_the_calls(emulator: Emulator) -> None:
    s0 = findity_auth.stats()
    token = findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    s1 = findity_auth.stats()
    assert delta(s0, s1) == {"cache_misses": 1, "client_credentials_requests": 1}

    assert findity_auth.get_token(emulator.url, CLIENT_ID, SECRET) == token
    s2 = findity_auth.stats()
    assert delta(s1, s2) == {"cache_hits": 1}

    findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    s3 = findity_auth.stats()
    moved = delta(s2, s3)
    assert moved["authorization_grant_requests"] == 1
    assert moved["authorization_code_requests"] == 1
    assert "client_credentials_requests" not in moved  # the cached organization token was used

    findity_auth.invalidate(emulator.url, CLIENT_ID)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    moved = delta(s3, findity_auth.stats())
    assert moved == {"cache_misses": 1, "refresh_token_requests": 1}


def test_wrong_secret_counts_an_auth_failure(emulator: Emulator) -> None:
    before = findity_auth.stats()
    with pytest.raises(findity_auth.AuthError):
        findity_auth.get_token(emulator.url, CLIENT_ID, WRONG_SECRET)
    moved = delta(before, findity_auth.stats())
    assert moved["failures[AUTH]"] == 1
    assert moved["client_credentials_requests"] == 1
    assert "failures[NETWORK]" not in moved and "failures[SERVER]" not in moved


def test_retries_and_fallbacks_are_counted(emulator: Emulator) -> None:
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    before = findity_auth.stats()
    emulator.revoke("refresh")  # the held refresh token is refused: fall back
    emulator.fault("token", "status:503", grant="client_credentials")  # and then a retry
    findity_auth.invalidate(emulator.url, CLIENT_ID)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    moved = delta(before, findity_auth.stats())
    assert moved.get("fallbacks") == 1, moved
    assert moved.get("retries") == 1, moved


def test_token_expires_in(emulator: Emulator) -> None:
    emulator.config(lifetime=600)
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    left = findity_auth.token_expires_in(emulator.url, CLIENT_ID)
    assert isinstance(left, int)
    assert 590 <= left <= 600

    emulator.config(lifetime=120)
    findity_auth.user_token(emulator.url, CLIENT_ID, SECRET, "alice")
    assert 110 <= findity_auth.token_expires_in(emulator.url, CLIENT_ID, user_id="alice") <= 120
    assert findity_auth.token_expires_in(emulator.url, CLIENT_ID) > 500  # still the org's own

    sent = emulator.stat("token_requests")
    findity_auth.token_expires_in(emulator.url, CLIENT_ID)
    assert emulator.stat("token_requests") == sent  # sends nothing


def test_token_expires_in_without_a_cached_token(emulator: Emulator) -> None:
    assert findity_auth.token_expires_in(emulator.url, CLIENT_ID) == 0  # none yet
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    assert findity_auth.token_expires_in(emulator.url, CLIENT_ID, "bob") == 0  # bob has none
    findity_auth.invalidate(emulator.url, CLIENT_ID)
    assert findity_auth.token_expires_in(emulator.url, CLIENT_ID) == 0  # invalidated
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    findity_auth.clear_cache()
    assert findity_auth.token_expires_in(emulator.url, CLIENT_ID) == 0  # cleared
    assert emulator.stat("token_requests") == 2  # asking sent nothing
    # Bad arguments are still errors, not 0.
    with pytest.raises(InvalidArgumentError):
        findity_auth.token_expires_in(emulator.url, "")
    with pytest.raises(InvalidArgumentError):
        findity_auth.token_expires_in("ftp://example.com", CLIENT_ID)
    with pytest.raises(TypeError):
        findity_auth.token_expires_in(emulator.url, None)  # type: ignore[arg-type]


def test_size_queries_are_not_failures(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    before = findity_auth.stats()
    # A thread with a 1-byte first buffer: one BUFFER_TOO_SMALL, then the grown buffer.
    monkeypatch.setattr(_native, "INITIAL_BUFFER_SIZE", 1)
    monkeypatch.setattr(_native, "_per_thread", _native._PerThread())
    findity_auth.get_token(emulator.url, CLIENT_ID, SECRET)
    after = findity_auth.stats()
    assert after.failures[Status.BUFFER_TOO_SMALL] == before.failures[Status.BUFFER_TOO_SMALL] == 0
    assert sum(after.failures) == sum(before.failures)
    assert delta(before, after) == {"cache_hits": 2}  # the size query and the real call


def test_stats_passes_the_struct_size(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = []
    original = _native.findity_stats

    def recording(out, size):  # type: ignore[no-untyped-def]
        sizes.append(size)
        return original(out, size)

    monkeypatch.setattr(_native, "findity_stats", recording)
    findity_auth.stats()
    assert sizes == [ctypes.sizeof(_native.FindityStats)] == [23 * 8]
