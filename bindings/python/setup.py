"""Build of the findity-auth wheel: the Python package plus the release libfindity.

setuptools-rust (Binding.NoBinding) runs ``cargo rustc --release --lib --crate-type cdylib`` on
the workspace's Cargo.toml (two levels up, so this works from a source checkout, which is what
``pip install ./bindings/python`` and ``pip wheel ./bindings/python`` build in place). cargo
uses the workspace's target directory (``target/release``, or ``$CARGO_TARGET_DIR``), so a
library ``make release`` built already is reused, not compiled again.

The built library goes into the wheel as ``findity_auth/libfindity.so``, the name the loader
(``_native.py``) looks for; it is a plain C library (it does not link libpython), so the wheel
is tagged ``py3-none-<platform>``: one wheel for every Python 3 on that platform.
``auditwheel repair`` then turns ``linux_x86_64`` into the manylinux tag the library qualifies
for (scripts/build-wheel.sh).

Nothing is written into the source tree: setuptools' ``build/`` and ``*.egg-info`` go to a
temporary directory made for this build and removed afterwards, so no later build can pick up
a stale copy of the library.
"""

import atexit
import os
import shutil
import sys
import tempfile

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools_rust import Binding, RustExtension
from setuptools_rust.build import build_rust

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "..", "..", "Cargo.toml")
LIB_FILE = {"darwin": "libfindity.dylib", "win32": "findity.dll"}.get(sys.platform, "libfindity.so")

# setuptools' scratch space for this build only, outside the source tree.
SCRATCH = tempfile.mkdtemp(prefix="findity-auth-build-")
atexit.register(shutil.rmtree, SCRATCH, True)


class BuildLibfindity(build_rust):
    """build_rust, but the library keeps its own file name (findity_auth/libfindity.so), not
    a Python extension module's (libfindity.cpython-311-x86_64-linux-gnu.so)."""

    def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
        path = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(path), LIB_FILE)


class PlatformWheel(bdist_wheel):
    """py3-none-<platform>: the library is native code, but not a CPython extension."""

    def get_tag(self):  # type: ignore[no-untyped-def]
        _, _, plat = super().get_tag()
        return "py3", "none", plat


if not os.path.exists(MANIFEST):
    sys.exit(
        "findity-auth builds libfindity from the repository's Cargo.toml (%s), which is missing: "
        "build from a checkout of the repository (pip install ./bindings/python)" % MANIFEST
    )

setup(
    rust_extensions=[
        RustExtension(
            "findity_auth.libfindity",
            path=MANIFEST,
            binding=Binding.NoBinding,
            debug=False,
            py_limited_api=False,
        )
    ],
    cmdclass={"build_rust": BuildLibfindity, "bdist_wheel": PlatformWheel},
    options={
        "build": {"build_base": os.path.join(SCRATCH, "build")},
        "egg_info": {"egg_base": SCRATCH},
    },
    zip_safe=False,
)
