"""Finding libfindity: $FINDITY_LIB, then the packaged copy, then the system loader."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

import findity_auth
from findity_auth import _native

PACKAGE_DIR = Path(findity_auth.__file__).resolve().parent

# Run in a subprocess: import findity_auth, report where the library came from (or the error).
PROBE = r"""
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        import findity_auth
        from findity_auth import _native
        out = {"lib": _native.LIB_PATH, "version": findity_auth.version(),
               "package": findity_auth.__file__}
    except ImportError as e:
        out = {"error": type(e).__name__, "message": str(e)}
out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print(json.dumps(out))
"""


def _probe(cwd: Path, env_changes: Dict[str, Optional[str]]) -> dict:
    env = dict(os.environ)
    for name in ("FINDITY_LIB", "LD_LIBRARY_PATH", "PYTHONPATH"):
        env.pop(name, None)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=str(cwd), env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def package_without_library(tmp_path: Path) -> Path:
    """A copy of the installed package without the packaged library, importable from tmp_path."""
    shutil.copytree(
        str(PACKAGE_DIR),
        str(tmp_path / "findity_auth"),
        ignore=shutil.ignore_patterns("*.so", "*.dylib", "*.dll", "__pycache__"),
    )
    return tmp_path


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    """A copy of the library this process loaded, in a directory of its own."""
    directory = tmp_path / "lib"
    directory.mkdir()
    shutil.copy(_native.LIB_PATH if os.path.isabs(_native.LIB_PATH) else _native.PACKAGED_PATH,
                str(directory / _native.LIB_NAME))  # fmt: skip
    return directory / _native.LIB_NAME


def test_installed_package_loads_its_packaged_copy() -> None:
    if os.environ.get("FINDITY_LIB"):
        pytest.skip("FINDITY_LIB is set: it takes precedence over the packaged copy")
    assert os.path.isfile(_native.PACKAGED_PATH), "scripts/test-python.sh packages the library"
    assert _native.LIB_PATH == _native.PACKAGED_PATH


def test_missing_library_names_all_three_places(package_without_library: Path) -> None:
    missing = str(package_without_library / "nowhere" / "libfindity.so")
    out = _probe(package_without_library, {"FINDITY_LIB": missing, "PYTHONPATH": None})
    assert out.get("error") == "ImportError", out
    message = out["message"]
    assert "FINDITY_LIB" in message and missing in message  # 1. the environment variable
    packaged = str(package_without_library / "findity_auth" / _native.LIB_NAME)
    assert "packaged" in message and packaged in message  # 2. the packaged copy
    assert "system loader" in message and _native.LIB_NAME in message  # 3. the system loader
    assert (
        message.index("\n  1. $FINDITY_LIB") < message.index("\n  2. ") < message.index("\n  3. ")
    )


def test_missing_library_without_findity_lib(package_without_library: Path) -> None:
    out = _probe(package_without_library, {})
    assert out.get("error") == "ImportError", out
    assert "FINDITY_LIB" in out["message"] and "not set" in out["message"]


def test_findity_lib_comes_first(library_copy: Path) -> None:
    # The installed package has a packaged copy; FINDITY_LIB still wins (file or directory).
    for value in (str(library_copy), str(library_copy.parent)):
        out = _probe(library_copy.parent, {"FINDITY_LIB": value})
        assert out.get("lib") == str(library_copy), out
        assert out["version"] == findity_auth.version()
        assert out["warnings"] == []


def test_bad_findity_lib_falls_back_with_a_warning(tmp_path: Path) -> None:
    bad = str(tmp_path / "missing.so")
    out = _probe(tmp_path, {"FINDITY_LIB": bad})
    assert out.get("lib") == str(PACKAGE_DIR / _native.LIB_NAME), out
    assert len(out["warnings"]) == 1 and bad in out["warnings"][0]


def test_system_loader_is_last(package_without_library: Path, library_copy: Path) -> None:
    out = _probe(package_without_library, {"LD_LIBRARY_PATH": str(library_copy.parent)})
    assert out.get("lib") == _native.LIB_NAME, out
    assert out["package"].startswith(str(package_without_library))


def test_a_library_that_is_not_libfindity_is_refused(package_without_library: Path) -> None:
    other = "/bin/true"  # not even a shared object
    for candidate in ("libm.so.6", "libc.so.6"):
        for d in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64", "/usr/lib"):
            if os.path.exists(os.path.join(d, candidate)):
                other = os.path.join(d, candidate)
                break
    out = _probe(package_without_library, {"FINDITY_LIB": other})
    assert out.get("error") == "ImportError", out
    assert other in out["message"]
    if other != "/bin/true":
        assert "not libfindity" in out["message"]
