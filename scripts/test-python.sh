#!/usr/bin/env bash
# The Python wrapper's tests (bindings/python), against the emulator.
#
#   FINDITY_LIB_DIR=/abs/target/debug FINDITY_EMULATOR=/abs/target/debug/findity-emulator \
#       bash scripts/test-python.sh [pytest args...]
#
# Creates build/venv-python, installs pytest and requests into it, copies libfindity.so into
# the package, installs the package (not editable, so the packaged copy is what gets loaded)
# and runs pytest from outside the source tree. The exit code is pytest's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

LIB_DIR="${FINDITY_LIB_DIR:-$ROOT/target/debug}"
export FINDITY_EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
for f in "$LIB_DIR/libfindity.so" "$FINDITY_EMULATOR"; do
    [ -e "$f" ] || { echo "test-python: $f is missing; run: cargo build -p findity -p findity-emulator" >&2; exit 2; }
done

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || apt_install python3 python3-venv
VENV="$ROOT/build/venv-python"

# A fresh Debian/Ubuntu machine has python3 without the venv module (or without ensurepip).
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "test-python: installing python3-venv" >&2
    ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    apt_install python3-venv || apt_install "python$ver-venv"
fi

# Recreate a venv left broken (e.g. by an interrupted run or a removed interpreter).
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# setuptools and wheel in the venv: the package builds without a per-run isolated build env.
"$VPY" -m pip install -q pytest requests "setuptools>=61" wheel

# The packaged copy (gitignored), then a regular (non-editable) install of the package.
cp "$LIB_DIR/libfindity.so" "$ROOT/bindings/python/src/findity_auth/libfindity.so"
rm -rf "$ROOT/bindings/python/build"  # setuptools' staging dir: no stale files in the wheel
"$VPY" -m pip install -q --force-reinstall --no-deps --no-build-isolation "$ROOT/bindings/python"
rm -rf "$ROOT/bindings/python/build" "$ROOT"/bindings/python/src/*.egg-info

# Run from a scratch directory so `findity_auth` can only come from the venv's site-packages;
# FINDITY_LIB is cleared so the tests see the loading order a user gets.
RUN_DIR="$(mktemp -d)"
trap 'rm -rf "$RUN_DIR"' EXIT
cd "$RUN_DIR"
set +e
env -u FINDITY_LIB PYTHONDONTWRITEBYTECODE=1 \
    "$VPY" -m pytest -q -p no:cacheprovider "$ROOT/bindings/python/tests" "$@"
status=$?
set -e
exit $status
