#!/usr/bin/env bash
# The test command: every suite, installing what a fresh machine lacks (C compiler, Python venv
# with pytest, Mono). Suites run even when an earlier one failed; the exit code says if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

need_c_compiler
# Suites that need a service (Redis) must not skip themselves here.
export FINDITY_MAKE_TEST=1
passed=0
failed=0
failures=()
suite() {
    local name=$1
    shift
    echo
    echo "=============== $name: $*"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "--------------- $name: ok ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "--------------- $name: FAILED ($((SECONDS - t0)) s)"
    fi
}

suite build make build
suite header make check-header
suite deps make check-deps
suite lint make lint
suite rust make test-rust
suite store make test-store
suite c make test-c
suite c-valgrind make test-c-valgrind
suite examples-c make test-examples-c
suite install make test-install
suite python make test-python
suite csharp make test-csharp
suite nuget make test-nuget
suite java make test-java
suite node make test-node
suite readme make test-readme

echo
echo "total: $SECONDS s"
[ "$failed" = 0 ] || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
