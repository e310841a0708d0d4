#!/usr/bin/env bash
# The Python wrapper's tests (bindings/python), against the emulator, on the installed wheel.
#
#   FINDITY_EMULATOR=/abs/target/debug/findity-emulator bash scripts/test-python.sh [pytest args...]
#
# Builds the findity-auth wheel once (scripts/build-wheel.sh: release libfindity inside,
# manylinux tag; cargo reuses target/release), installs it into build/venv-python with pytest,
# requests and httpx, and runs pytest from a scratch directory, so `findity_auth` and its
# libfindity.so come from the installed wheel, never from the source tree. Then: a fresh venv
# with nothing but `pip install <the wheel>` (plus requests and httpx) gets tokens through
# requests, httpx and asyncio; and examples/python/connector.py runs against a fresh emulator,
# once plainly, once with a 401 injected on the API (FindityAuth's one retry).
# Fails if pytest or an example run fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

export FINDITY_EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
[ -x "$FINDITY_EMULATOR" ] || { echo "test-python: $FINDITY_EMULATOR is missing; run: make build" >&2; exit 2; }

t0=$SECONDS
build_wheel
echo "test-python: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB) built in $((SECONDS - t0)) s"
python_env

# Run from a scratch directory so `findity_auth` can only come from the venv's site-packages;
# FINDITY_LIB is cleared so the tests see the loading order a user gets.
RUN_DIR="$(mktemp -d)"
EMULATOR_PID=
trap 'if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; fi; rm -rf "$RUN_DIR"' EXIT
cd "$RUN_DIR"
set +e
env -u FINDITY_LIB PYTHONDONTWRITEBYTECODE=1 \
    "$VPY" -m pytest -q -p no:cacheprovider "$ROOT/bindings/python/tests" "$@"
status=$?
set -e
[ "$status" = 0 ] || exit "$status"

# ---- a fresh venv: only the wheel (and the HTTP clients), from a directory outside the tree
FRESH="$ROOT/build/venv-fresh"
rm -rf "$FRESH"
python_venv "$FRESH"
"$VENV_PY" -m pip install -q "$WHEEL" requests httpx
env -u FINDITY_LIB -u LD_LIBRARY_PATH -u PYTHONPATH "$VENV_PY" "$ROOT/bindings/python/tests/fresh_venv_check.py" \
    || { echo "test-python: the wheel does not work in a fresh venv" >&2; exit 1; }

# ---- examples/python against a fresh emulator
EXAMPLE_ID="example-connector"
EXAMPLE_SECRET="example-secret-$RANDOM$RANDOM"
"$FINDITY_EMULATOR" --port 0 --quiet --url-file "$RUN_DIR/emulator-url" \
    --client "$EXAMPLE_ID:$EXAMPLE_SECRET" >/dev/null &
EMULATOR_PID=$!
for _ in $(seq 100); do [ -s "$RUN_DIR/emulator-url" ] && break; sleep 0.05; done
EMULATOR_URL="$(cat "$RUN_DIR/emulator-url")"
[ -n "$EMULATOR_URL" ] || { echo "test-python: the emulator did not start" >&2; exit 1; }

emulator() {  # emulator METHOD PATH: the control API, answer on stdout
    "$VPY" -c 'import sys, urllib.request as u
print(u.urlopen(u.Request(sys.argv[2], method=sys.argv[1], data=b"" if sys.argv[1] == "POST" else None)).read().decode())' \
        "$1" "$EMULATOR_URL$2"
}
emulator_stat() {  # emulator_stat NAME: one counter of the emulator
    emulator GET /_emulator/stats | "$VPY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
connector() {  # connector TITLE: run the example, echo its output, fail on failure or a leak
    echo "== examples/python/connector.py ($1)"
    local out
    if ! out="$(env -u FINDITY_LIB FINDITY_BASE_URL="$EMULATOR_URL" FINDITY_CLIENT_ID="$EXAMPLE_ID" \
            FINDITY_CLIENT_SECRET="$EXAMPLE_SECRET" FINDITY_USER_ID=E1234 \
            "$VPY" "$ROOT/examples/python/connector.py" 2>&1)"; then
        echo "$out"
        echo "test-python: connector.py failed ($1)" >&2
        return 1
    fi
    echo "$out" | sed 's/^/   /'
    grep -q "^/api/v1/me -> user:E1234$" <<<"$out" && grep -q "^/api/v1/expenses -> org:$EXAMPLE_ID$" <<<"$out" \
        || { echo "test-python: connector.py did not print both subjects" >&2; return 1; }
    if grep -qF "$EXAMPLE_SECRET" <<<"$out"; then
        echo "test-python: connector.py printed the client secret" >&2
        return 1
    fi
}

connector "plain"
[ "$(emulator_stat api_requests)" = 2 ] || { echo "test-python: expected 2 API requests" >&2; exit 1; }

emulator POST /_emulator/reset >/dev/null
emulator POST "/_emulator/fault?endpoint=api&kind=status:401" >/dev/null
connector "first API answer is a 401"
[ "$(emulator_stat faults_served)" = 1 ] && [ "$(emulator_stat api_requests)" = 3 ] \
    || { echo "test-python: expected the 401 to be served and the request resent once" >&2; exit 1; }
echo "test-python: examples ok"
