#!/usr/bin/env bash
# The Python wrapper's tests (bindings/python), against the emulator.
#
#   FINDITY_LIB_DIR=/abs/target/debug FINDITY_EMULATOR=/abs/target/debug/findity-emulator \
#       bash scripts/test-python.sh [pytest args...]
#
# Creates build/venv-python, installs pytest and requests into it, copies libfindity.so into
# the package, installs the package (not editable, so the packaged copy is what gets loaded)
# and runs pytest from outside the source tree. Then runs examples/python/connector.py against
# a fresh emulator: once plainly, once with a 401 injected on the API (FindityAuth's one retry).
# Fails if pytest or an example run fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

LIB_DIR="${FINDITY_LIB_DIR:-$ROOT/target/debug}"
export FINDITY_EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
for f in "$LIB_DIR/libfindity.so" "$FINDITY_EMULATOR"; do
    [ -e "$f" ] || { echo "test-python: $f is missing; run: cargo build -p findity -p findity-emulator" >&2; exit 2; }
done

python_env "$LIB_DIR"

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
