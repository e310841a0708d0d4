#!/usr/bin/env bash
# C# wrapper tests: compile bindings/csharp (sources + tests) with Mono's mcs and run them with
# mono against findity-emulator. Installs Mono from Debian's packages when mcs/mono are missing.
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

# Mono: the compiler, the runtime, and System.Net.Http (not pulled in by the other two).
MONO_PACKAGES="mono-mcs mono-runtime libmono-system-net-http4.0-cil"
if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1 \
    || [ ! -e /usr/lib/mono/4.5/System.Net.Http.dll ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "test-csharp: installing $MONO_PACKAGES"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $MONO_PACKAGES >/dev/null
fi

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
exit "$rc"
