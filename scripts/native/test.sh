#!/usr/bin/env bash
# make test-native: the cross-built libraries of build/native/ (make native) run where this
# machine can run them, against the emulator running natively on the host (qemu-user and the
# chroot share the host's loopback):
#
#   linux-arm64 under qemu-aarch64 (user mode, no binfmt_misc):
#     - tests/c/test_findity.c built with aarch64-linux-gnu-gcc against build/native/linux-arm64
#     - scripts/native/c/smoke.c (organization token, cache hit, user token, a refused secret)
#     - three findity-token processes sharing a file store, then a Redis store (a real
#       redis-server on the host): one token request per key
#     - Rust test binaries built for aarch64 (Debian's rustc, -Z build-std), run through qemu
#       as cargo's runner; those that start copies of themselves are named as not run
#   linux-x64 (glibc 2.17 build) in a Debian 11 chroot (glibc 2.31, debootstrap):
#     - smoke.c and findity-token built with zig for glibc 2.17
#     - the manylinux2014 x86_64 wheel installed with --no-index into a venv, and the Python
#       package's tests (the emulator built for glibc 2.17 too, since the tests start it)
#   linux-musl-x64: smoke.c linked with musl-gcc, run by Debian's musl loader
#   packages: each wheel of build/wheelhouse and the nupkg (scripts/nuget.sh) hold the library
#     of build/native/<rid>
#
# Anything that cannot run says so (SKIPPED, with the reason); the last line counts the checks.
# NATIVE_TEST_ONLY="arm64 x64 musl packages" picks parts; NATIVE_RUST_TESTS overrides the Rust test list.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/native/env.sh
source scripts/native/chroot.sh

PARTS="${NATIVE_TEST_ONLY:-arm64 x64 musl packages}"
OUT="$ROOT/build/native-test"
QEMU=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
CFLAGS_T=(-std=c11 -O1 -g -Wall -Wextra -Werror -pthread)
ID=native-client
SECRET="native-secret-$RANDOM$RANDOM"
passed=0 failed=0 skipped=0
failures=() skips=()

result() {  # result NAME ok|fail|skip [reason]
    case "$2" in
        ok) passed=$((passed + 1)); echo "--- native-test: $1: ok" ;;
        fail) failed=$((failed + 1)); failures+=("$1"); echo "--- native-test: $1: FAILED${3:+ ($3)}" ;;
        skip) skipped=$((skipped + 1)); skips+=("$1: $3"); echo "--- native-test: $1: SKIPPED: $3" ;;
    esac
}
check() {  # check NAME CMD...: ok when CMD succeeds
    local name=$1 t0=$SECONDS
    shift
    echo; echo "=== native-test: $name"
    if "$@"; then result "$name ($((SECONDS - t0)) s)" ok; else result "$name ($((SECONDS - t0)) s)" fail; fi
}

need_native_tools >/dev/null || exit 1
mkdir -p "$OUT"

# ---- the emulator, natively on the host
echo "native-test: building the emulator (host)"
nice -n 15 cargo build -q -p findity-emulator || { echo "native-test: the emulator does not build" >&2; exit 1; }
EMU="$ROOT/target/debug/findity-emulator"
EMU_PID=
REDIS_PID=
cleanup() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null
    mountpoint -q "$BULLSEYE/dev/shm" 2>/dev/null && umount "$BULLSEYE/dev/shm"
    mountpoint -q "$BULLSEYE/proc" 2>/dev/null && umount "$BULLSEYE/proc"
    true
}
trap cleanup EXIT
start_emu() {  # a fresh emulator with our client; sets URL
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
    rm -f "$OUT/emu-url"
    "$EMU" --port 0 --quiet --url-file "$OUT/emu-url" --client "$ID:$SECRET" >/dev/null &
    EMU_PID=$!
    for _ in $(seq 100); do [ -s "$OUT/emu-url" ] && break; sleep 0.05; done
    URL="$(cat "$OUT/emu-url")"
    [ -n "$URL" ]
}
emu_stat() {  # emu_stat NAME: one counter of the running emulator
    python3 -c 'import json, sys, urllib.request as u
print(json.load(u.urlopen(sys.argv[1] + "/_emulator/stats"))[sys.argv[2]])' "$URL" "$1"
}

# ---- three processes of findity-token share one store: one token request per key
# shared_store NAME STORE RUNNER...: runs RUNNER findity-token (3 at once, org; then 3 at once, user)
shared_store() {
    local name=$1 store=$2 i rc=0 n
    shift 2
    start_emu || return 1
    for key in org user; do
        local pids=() extra=()
        [ "$key" = user ] && extra=(--user E42)
        for i in 1 2 3; do
            env FINDITY_SHARED_CACHE="$store" FINDITY_ENV="$URL" FINDITY_CLIENT_ID="$ID" FINDITY_CLIENT_SECRET="$SECRET" \
                "$@" "${extra[@]}" >"$OUT/$name.$key.$i" 2>"$OUT/$name.$key.$i.err" &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || rc=1; done
        [ "$rc" = 0 ] || { cat "$OUT/$name.$key".*.err >&2; echo "a findity-token process failed ($key)" >&2; return 1; }
        [ "$(cat "$OUT/$name.$key".[123] | sort -u | wc -l)" = 1 ] \
            || { echo "the three processes printed different $key tokens" >&2; return 1; }
    done
    n="$(emu_stat token_requests)"
    echo "3 + 3 processes ($store): $n token requests at the emulator (one per key: 2)"
    [ "$n" = 2 ]
}

# ======================= linux-arm64 under qemu
arm64() {
    local dir="$NATIVE_OUT/linux-arm64" t="$OUT/linux-arm64"
    if [ ! -f "$dir/libfindity.so" ]; then result "linux-arm64" skip "build/native/linux-arm64 missing (make native)"; return; fi
    mkdir -p "$t"
    export LD_LIBRARY_PATH="$dir"   # the guest's loader reads it; the host's skips ARM64 files
    check "linux-arm64: findity-token --version under qemu" "${QEMU[@]}" "$dir/findity-token" --version
    if aarch64-linux-gnu-gcc "${CFLAGS_T[@]}" -I"$dir" tests/c/test_findity.c -L"$dir" -lfindity -o "$t/test_findity"; then
        # The suite re-runs itself (execl(argv[0], ...)) for a child; without binfmt_misc the
        # host cannot exec an ARM64 file, so argv[0] (qemu -0) is a script that runs it in qemu.
        printf '#!/bin/sh\nexec %s -0 "$0" %s "$@"\n' "${QEMU[*]}" "$t/test_findity" >"$t/test_findity.qemu"
        chmod +x "$t/test_findity.qemu"
        # fork_under_contention forks 200 times while 8 threads hammer the library: under
        # qemu-user, a fork from a busy multi-threaded guest hung once (a forked qemu stuck at
        # 0 % CPU, its parent spinning), which native runs never do; the other fork tests run.
        # A hang fails the suite after 15 minutes instead of holding CI.
        check "linux-arm64: C suite (tests/c/test_findity.c) under qemu" \
            timeout 900 env FINDITY_EMULATOR="$EMU" \
            FINDITY_TEST_SKIP="fork_under_contention:qemu-user forks a busy multi-threaded guest unreliably; runs natively" \
            "$t/test_findity.qemu"
    else
        result "linux-arm64: C suite" fail "does not compile with aarch64-linux-gnu-gcc"
    fi
    aarch64-linux-gnu-gcc "${CFLAGS_T[@]}" -I"$dir" scripts/native/c/smoke.c -L"$dir" -lfindity -o "$t/smoke" \
        && start_emu && check "linux-arm64: smoke.c under qemu" "${QEMU[@]}" "$t/smoke" "$URL" "$ID" "$SECRET" E1234
    check "linux-arm64: 3 processes sharing a file store under qemu" \
        shared_store arm64-file "file:$(mktemp -d "$OUT/store.XXXXXX")" "${QEMU[@]}" "$dir/findity-token"
    check "linux-arm64: 3 processes sharing a Redis store (redis-server on the host) under qemu" \
        bash scripts/redis.sh bash -c 'shared_store arm64-redis "$FINDITY_TEST_REDIS_URL" "$@"; rc=$?; kill $EMU_PID; exit $rc' \
            redis "${QEMU[@]}" "$dir/findity-token"
    unset LD_LIBRARY_PATH
    arm64_rust
}

# The Rust tests for aarch64: built once (Debian's rustc, build-std, gcc-aarch64-linux-gnu links),
# run with qemu as cargo's runner. store_file/store_redis start copies of themselves
# (current_exe()): under qemu-user without binfmt_misc the child exec fails (Exec format error),
# so they need a runner prefix for the children in tests/common/store.rs; not run here.
# soak, scale and many_keys are long load runs. dead_keys, eviction, fault_matrix and
# refusing_host assert wall-clock schedules (a renewal within 2.4 s, a timeout_ms budget) that
# qemu's slowdown breaks: they failed here under qemu (0 of 4 renewals sent by 7.5 s; a cached
# token not served within the timeout) and pass natively; not run under emulation.
RUST_TESTS="${NATIVE_RUST_TESTS:-options cache_renewal clear_in_flight idle_snapshot lost_answers refused_clients secret_hygiene throttle worker_linger fuzz_regressions log_reentry code_resend}"
# background_failure waits 0.9 s for a background renewal to be sent: qemu missed it once.
RUST_TIMING_TESTS="dead_keys eviction fault_matrix refusing_host background_failure"
arm64_rust() {
    local args=(--lib) t
    for t in $RUST_TESTS; do [ -f "tests/$t.rs" ] && args+=(--test "$t"); done
    echo; echo "=== native-test: linux-arm64: Rust tests under qemu: ${args[*]}"
    local t0=$SECONDS
    export CARGO_TARGET_DIR="$NATIVE_TARGET"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
    if ! nice -n 15 env RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 "$DEB_CARGO" test --no-run -q \
            --target aarch64-unknown-linux-gnu -Z build-std=std,panic_unwind "${args[@]}"; then
        result "linux-arm64: Rust tests (build)" fail "cargo test --no-run for aarch64 failed"
        return
    fi
    echo "native-time: arm64-rust-tests-build $((SECONDS - t0)) s"
    check "linux-arm64: Rust tests under qemu (${args[*]})" \
        nice -n 15 env RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 "$DEB_CARGO" test -q --no-fail-fast \
            --target aarch64-unknown-linux-gnu -Z build-std=std,panic_unwind "${args[@]}"
    # store_file/store_redis start copies of themselves (current_exe(), which qemu reports as
    # the ARM64 file): they run here only where tests/common/store.rs puts
    # $FINDITY_TEST_CHILD_RUNNER (split on spaces) before the child's path.
    if grep -q FINDITY_TEST_CHILD_RUNNER tests/common/store.rs 2>/dev/null; then
        check "linux-arm64: Rust tests store_file, store_redis under qemu (children through qemu too)" \
            env FINDITY_TEST_CHILD_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
            bash scripts/redis.sh nice -n 15 env RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 "$DEB_CARGO" test -q \
            --target aarch64-unknown-linux-gnu -Z build-std=std,panic_unwind --test store_file --test store_redis \
            -- --skip busy_lock_is_not_a_store_error --skip processes_sharing --skip a_429_storm
        result "linux-arm64: store tests busy_lock_is_not_a_store_error, processes_sharing_*, a_429_storm_*" skip \
            "wall-clock: a waiter's own request within its last 0.75 s, and the fleet's pace against a throttling server; under qemu a process's first request builds its TLS roots for over a second (busy_lock failed so); they run natively in make test"
    else
        result "linux-arm64: Rust tests store_file, store_redis" skip \
            "they start copies of themselves (current_exe()); under qemu-user the children need a runner prefix (FINDITY_TEST_CHILD_RUNNER in tests/common/store.rs, not there yet)"
    fi
    result "linux-arm64: Rust tests soak, scale, many_keys" skip "long load runs, not run under emulation"
    result "linux-arm64: Rust tests ${RUST_TIMING_TESTS// /, }" skip \
        "they assert wall-clock schedules that qemu's slowdown breaks (they pass natively in make test)"
}

# ======================= linux-x64 (glibc 2.17) in a Debian 11 chroot
x64() {
    local dir="$NATIVE_OUT/linux-x64"
    if [ ! -f "$dir/libfindity.so" ]; then result "linux-x64 (Debian 11)" skip "build/native/linux-x64 missing (make native)"; return; fi
    echo; echo "=== native-test: linux-x64: a Debian 11 chroot"
    if ! need_bullseye; then
        result "linux-x64 in Debian 11 (glibc 2.31)" skip "debootstrap could not make a bullseye chroot: the mirror may no longer serve Debian 11"
        return
    fi
    local in="$BULLSEYE/opt/findity" t0
    rm -rf "$in"
    mkdir -p "$in/lib" "$in/wheels"
    cp -a "$dir"/. "$in/lib/"
    echo "chroot: $(in_bullseye /usr/bin/ldd --version | head -1)"
    # Programs for glibc 2.17 (zig), so they run on Debian 11 as on RHEL 7.
    zig cc -target x86_64-linux-gnu.2.17 -std=c11 -O1 -Wall -Wextra -Werror -I"$dir" scripts/native/c/smoke.c \
        -L"$dir" -lfindity '-Wl,-rpath,$ORIGIN' -o "$in/lib/smoke" || { result "linux-x64: smoke.c (zig, glibc 2.17)" fail "does not build"; return; }
    t0=$SECONDS
    nice -n 15 cargo zigbuild -q --release -p findity-emulator --target x86_64-unknown-linux-gnu.2.17 \
        --target-dir "$NATIVE_TARGET" || { result "linux-x64: emulator for glibc 2.17" fail "does not build"; return; }
    echo "native-time: emulator-2.17 $((SECONDS - t0)) s"
    install -m 0755 "$NATIVE_TARGET/x86_64-unknown-linux-gnu/release/findity-emulator" "$in/findity-emulator"
    start_emu || return
    check "linux-x64 (2.17) in Debian 11: smoke.c" in_bullseye /opt/findity/lib/smoke "$URL" "$ID" "$SECRET" E1234
    check "linux-x64 (2.17) in Debian 11: findity-token" in_bullseye env FINDITY_ENV="$URL" FINDITY_CLIENT_ID="$ID" \
        FINDITY_CLIENT_SECRET="$SECRET" /opt/findity/lib/findity-token --no-cache --json
    local whl
    whl="$(ls "$ROOT"/build/wheelhouse/findity_auth-*manylinux*_x86_64*.whl 2>/dev/null | grep -E 'manylinux(_2_17|2014)' | head -1)"
    if [ -z "$whl" ]; then
        result "linux-x64 in Debian 11: Python" skip "no manylinux2014 x86_64 wheel in build/wheelhouse (make wheels)"
        return
    fi
    # pytest & co for Debian 11's Python, fetched on the host (the chroot has no certificates).
    # pip evaluates markers for the running Python, not --python-version: what pytest, anyio
    # and httpx need only below 3.11 is named here.
    local pyver
    pyver="$(in_bullseye /usr/bin/python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')"
    mkdir -p "$NATIVE_CACHE/wheels-cp$pyver"
    python3 -m pip download -q -d "$NATIVE_CACHE/wheels-cp$pyver" --only-binary=:all: --python-version "$pyver" \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
        pytest requests httpx exceptiongroup tomli typing_extensions || { result "linux-x64 in Debian 11: Python" fail "pip download of pytest, requests, httpx failed"; return; }
    cp "$NATIVE_CACHE/wheels-cp$pyver"/*.whl "$in/wheels/"
    cp "$whl" "$in/"
    # The tests find the header as the repository's include/findity.h (tests/support.py).
    mkdir -p "$in/repo/bindings/python" "$in/repo/include"
    cp -r bindings/python/tests "$in/repo/bindings/python/tests"
    cp include/findity.h "$in/repo/include/"
    rm -rf "$in/repo/bindings/python/tests/__pycache__"
    check "linux-x64 (2.17) in Debian 11: pip install --no-index $(basename "$whl") into a venv" \
        in_bullseye /bin/sh -c "rm -rf /opt/venv && python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /opt/findity/wheels /opt/findity/$(basename "$whl") pytest requests httpx"
    check "linux-x64 (2.17) in Debian 11: the wheel gets a token (fresh_venv_check.py)" \
        in_bullseye env FINDITY_EMULATOR=/opt/findity/findity-emulator /opt/venv/bin/python /opt/findity/repo/bindings/python/tests/fresh_venv_check.py
    check "linux-x64 (2.17) in Debian 11: the Python package's tests (pytest)" \
        in_bullseye /bin/sh -c "cd /tmp && FINDITY_EMULATOR=/opt/findity/findity-emulator PYTHONDONTWRITEBYTECODE=1 /opt/venv/bin/python -m pytest -q -p no:cacheprovider /opt/findity/repo/bindings/python/tests"
}

# ======================= linux-musl-x64: musl-gcc, Debian's musl loader
musl() {
    local dir="$NATIVE_OUT/linux-musl-x64" t="$OUT/linux-musl-x64"
    if [ ! -f "$dir/libfindity.so" ]; then result "linux-musl-x64" skip "build/native/linux-musl-x64 missing (make native)"; return; fi
    mkdir -p "$t"
    echo; echo "=== native-test: linux-musl-x64: needs $(readelf -d "$dir/libfindity.so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    if ! musl-gcc -std=c11 -O1 -Wall -Wextra -Werror -I"$dir" scripts/native/c/smoke.c -L"$dir" -lfindity \
            -Wl,-rpath,"$dir" -o "$t/smoke"; then
        result "linux-musl-x64: smoke.c (musl-gcc)" fail "does not link"; return
    fi
    start_emu || return
    check "linux-musl-x64: smoke.c linked with musl-gcc" "$t/smoke" "$URL" "$ID" "$SECRET" E1234
    check "linux-musl-x64: findity-token" env FINDITY_ENV="$URL" FINDITY_CLIENT_ID="$ID" FINDITY_CLIENT_SECRET="$SECRET" \
        "$dir/findity-token" --no-cache --json
    check "linux-musl-x64: 3 processes sharing a file store" \
        shared_store musl-file "file:$(mktemp -d "$OUT/store.XXXXXX")" "$dir/findity-token"
}

# ======================= the packages hold each platform's library
packages() {
    local rid whl pkg
    echo; echo "=== native-test: packages"
    for rid in linux-x64 linux-arm64 linux-musl-x64; do
        [ -f "$NATIVE_OUT/$rid/libfindity.so" ] || { result "packages: $rid" skip "build/native/$rid missing"; continue; }
        local want glob
        want="$(sha256sum <"$NATIVE_OUT/$rid/libfindity.so" | cut -d' ' -f1)"
        case "$rid" in
            linux-x64) glob="*manylinux2014_x86_64*" ;; linux-arm64) glob="*manylinux2014_aarch64*" ;; *) glob="*musllinux_1_2_x86_64*" ;;
        esac
        whl="$(ls "$ROOT"/build/wheelhouse/findity_auth-*$glob.whl 2>/dev/null | head -1)"
        if [ -n "$whl" ] && [ "$(unzip -p "$whl" findity_auth/libfindity.so | sha256sum | cut -d' ' -f1)" = "$want" ]; then
            result "packages: $(basename "$whl") holds build/native/$rid/libfindity.so" ok
        else
            result "packages: the $rid wheel" fail "missing, or not holding build/native/$rid/libfindity.so"
        fi
    done
    if ! pkg="$(bash scripts/nuget.sh | tail -1)"; then result "packages: make nuget" fail "scripts/nuget.sh failed"; return; fi
    for rid in linux-x64 linux-arm64 linux-musl-x64; do
        [ -f "$NATIVE_OUT/$rid/libfindity.so" ] || continue
        if [ "$(unzip -p "$pkg" "runtimes/$rid/native/libfindity.so" | sha256sum | cut -d' ' -f1)" = "$(sha256sum <"$NATIVE_OUT/$rid/libfindity.so" | cut -d' ' -f1)" ]; then
            result "packages: $(basename "$pkg") holds runtimes/$rid/native/libfindity.so" ok
        else
            result "packages: $(basename "$pkg") runtimes/$rid" fail "missing, or not build/native/$rid/libfindity.so"
        fi
    done
}

# for the Redis run, which happens in a child of scripts/redis.sh
export -f shared_store start_emu emu_stat
export OUT EMU ID SECRET

T0=$SECONDS
for part in $PARTS; do
    t0=$SECONDS
    "$part"
    echo "native-time: test-$part $((SECONDS - t0)) s"
done
echo
for s in "${skips[@]}"; do echo "SKIPPED: $s"; done
[ "$failed" = 0 ] || echo "failed: ${failures[*]}"
echo "native-time: test-native $((SECONDS - T0)) s"
echo "test-native: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
