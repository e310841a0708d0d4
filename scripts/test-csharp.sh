#!/usr/bin/env bash
# C# wrapper tests: compile bindings/csharp (sources + tests) with Mono's mcs and run them with
# mono against findity-emulator. Then builds Findity.Auth.dll and examples/csharp/Connector.cs
# and runs the example against a fresh emulator: once plainly, once with a 401 injected on the
# API (the handler's one retry). Installs Mono (and curl) from Debian's packages when missing.
#
#   FINDITY_LIB_DIR=/abs/target/debug FINDITY_EMULATOR=/abs/target/debug/findity-emulator \
#       bash scripts/test-csharp.sh [TEST_NAME_SUBSTRING...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB_DIR="${FINDITY_LIB_DIR:-$ROOT/target/debug}"
EMULATOR="${FINDITY_EMULATOR:-$LIB_DIR/findity-emulator}"
OUT="$ROOT/build/csharp"

if [ ! -f "$LIB_DIR/libfindity.so" ]; then
    echo "test-csharp: $LIB_DIR/libfindity.so not found (set FINDITY_LIB_DIR; run 'make build')" >&2
    exit 1
fi
if [ ! -x "$EMULATOR" ]; then
    echo "test-csharp: $EMULATOR not found or not executable (set FINDITY_EMULATOR)" >&2
    exit 1
fi

cd "$ROOT"
source scripts/common.sh
mono_env

mkdir -p "$OUT"
mcs -nologo -warnaserror+ -debug -target:exe -out:"$OUT/FindityAuthTests.exe" \
    -r:System.Net.Http.dll -r:System.dll -r:System.Core.dll \
    "$ROOT"/bindings/csharp/src/*.cs "$ROOT"/bindings/csharp/tests/*.cs

# DllImport("findity") -> mono dlopens libfindity.so found through LD_LIBRARY_PATH.
export LD_LIBRARY_PATH="$LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FINDITY_EMULATOR="$EMULATOR"
export FINDITY_HEADER="$ROOT/include/findity.h"
set +e
timeout 300 mono --debug "$OUT/FindityAuthTests.exe" "$@"
rc=$?
set -e
if [ "$rc" = 124 ]; then echo "test-csharp: timed out after 300 s" >&2; fi
[ "$rc" = 0 ] || exit "$rc"
[ "$#" = 0 ] || exit 0  # a subset of the tests was asked for: no examples

# ---- examples/csharp against a fresh emulator: the library as an assembly, the example using it.
csharp_build_examples "$OUT"

EXAMPLE_ID="example-connector"
EXAMPLE_SECRET="example-secret-$RANDOM$RANDOM"
URL_FILE="$(mktemp)"
"$EMULATOR" --port 0 --quiet --url-file "$URL_FILE" --client "$EXAMPLE_ID:$EXAMPLE_SECRET" >/dev/null &
EMULATOR_PID=$!
trap 'kill "$EMULATOR_PID" 2>/dev/null || true; rm -f "$URL_FILE"' EXIT
for _ in $(seq 100); do [ -s "$URL_FILE" ] && break; sleep 0.05; done
EMULATOR_URL="$(cat "$URL_FILE")"
[ -n "$EMULATOR_URL" ] || { echo "test-csharp: the emulator did not start" >&2; exit 1; }

emulator_stat() {  # emulator_stat NAME: one counter of the emulator
    curl -sf "$EMULATOR_URL/_emulator/stats" | grep -o "\"$1\":[0-9]*" | cut -d: -f2
}
connector() {  # connector TITLE: run the example, echo its output, fail on failure or a leak
    echo "== examples/csharp/Connector.cs ($1)"
    local out
    if ! out="$(FINDITY_BASE_URL="$EMULATOR_URL" FINDITY_CLIENT_ID="$EXAMPLE_ID" \
            FINDITY_CLIENT_SECRET="$EXAMPLE_SECRET" FINDITY_USER_ID=E1234 \
            timeout 60 mono "$OUT/Connector.exe" 2>&1)"; then
        echo "$out"
        echo "test-csharp: Connector.exe failed ($1)" >&2
        return 1
    fi
    echo "$out" | sed 's/^/   /'
    grep -q '"subject":"user:E1234"' <<<"$out" && grep -q "\"subject\":\"org:$EXAMPLE_ID\"" <<<"$out" \
        || { echo "test-csharp: Connector.exe did not print both subjects" >&2; return 1; }
    if grep -qF "$EXAMPLE_SECRET" <<<"$out"; then
        echo "test-csharp: Connector.exe printed the client secret" >&2
        return 1
    fi
}

connector "plain"
[ "$(emulator_stat api_requests)" = 2 ] || { echo "test-csharp: expected 2 API requests" >&2; exit 1; }

curl -sf -X POST "$EMULATOR_URL/_emulator/reset" >/dev/null
curl -sf -X POST "$EMULATOR_URL/_emulator/fault?endpoint=api&kind=status:401" >/dev/null
connector "first API answer is a 401"
[ "$(emulator_stat faults_served)" = 1 ] && [ "$(emulator_stat api_requests)" = 3 ] \
    || { echo "test-csharp: expected the 401 to be served and the request resent once" >&2; exit 1; }
echo "test-csharp: examples ok"
