"""Fixtures: a fresh findity-emulator per test ($FINDITY_EMULATOR) and a clean library state."""

from typing import Iterator

import pytest

import findity_auth
from support import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator (so counters and the library's cache keys are this test's own)."""
    emu = Emulator()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(autouse=True)
def clean_library() -> Iterator[None]:
    """Every test starts with an empty token cache and ends with default options."""
    findity_auth.clear_cache()
    yield
    findity_auth.clear_cache()
    for option in ("timeout_ms", "connect_timeout_ms", "user_agent"):
        findity_auth.set_option(option, "")
