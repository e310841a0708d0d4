#!/usr/bin/env bash
# make test-install: `make install` / `make uninstall` into temporary prefixes, and what an
# installed libfindity must do for its users:
#   - the files, modes and symlinks; SONAME libfindity.so.MAJOR; findity.pc; the header;
#   - examples/c/*.c built with `pkg-config --cflags --libs findity` ALONE (outside the source
#     tree) and run against the emulator; the CMake example (examples/c-cmake) likewise;
#   - findity-token's contract: org and user tokens that the API accepts, --json, the secret
#     from the environment or stdin and never argv, exit codes and messages;
#   - DESTDIR staging and a LIBDIR override; uninstall leaves no file behind.
# Installs pkg-config and cmake (apt-get) when missing. Builds the release library if needed.
# KEEP_TMP=1 keeps the temporary directory.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source scripts/common.sh
source tests/install/lib.sh
read -r -a MAKE_CMD <<<"${FINDITY_MAKE:-make --no-print-directory}" # the makefile that ran us
t0=$SECONDS

need_c_compiler
command -v pkg-config >/dev/null || apt_install pkg-config
command -v cmake >/dev/null || apt_install cmake
command -v readelf >/dev/null || apt_install binutils
command -v python3 >/dev/null || apt_install python3

version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
major=${version%%.*}
echo "libfindity $version: soname libfindity.so.$major"

tmp=$(mktemp -d /tmp/findity-install.XXXXXX)
cleanup() {
    [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
expect_contains "the default PREFIX is /usr/local" "/usr/local/lib/libfindity.so.$version" "$("${MAKE_CMD[@]}" -n install 2>&1)"

echo "== make install PREFIX=$tmp/usr"
prefix=$tmp/usr
if ! "${MAKE_CMD[@]}" install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
    fail "make install PREFIX=$prefix" "$(tail -30 "$tmp/install.log")"
    summary
    exit 1
fi
ok "make install PREFIX=$prefix"
lib=$prefix/lib

check "lib/libfindity.so.$version is a regular file, mode 755" \
    test "$(stat -c '%F %a' "$lib/libfindity.so.$version")" = "regular file 755"
expect_eq "lib/libfindity.so.$major -> libfindity.so.$version" "libfindity.so.$version" "$(readlink "$lib/libfindity.so.$major")"
expect_eq "lib/libfindity.so -> libfindity.so.$major" "libfindity.so.$major" "$(readlink "$lib/libfindity.so")"
expect_eq "SONAME is libfindity.so.$major" "libfindity.so.$major" \
    "$(readelf -d "$lib/libfindity.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
check "include/findity.h is the committed header, mode 644" \
    bash -c "cmp include/findity.h '$prefix/include/findity.h' && test \$(stat -c %a '$prefix/include/findity.h') = 644"
check "the installed library exports the C ABI" \
    bash -c "readelf --dyn-syms -W '$lib/libfindity.so.$version' | grep -q ' findity_token_expires_in$'"

export PKG_CONFIG_PATH=$lib/pkgconfig
expect_eq "pkg-config --modversion findity" "$version" "$(pkg-config --modversion findity)"
expect_eq "pkg-config --cflags findity" "-I$prefix/include" "$(pkg-config --cflags findity | sed 's/ *$//')"
expect_eq "pkg-config --libs findity" "-L$lib -lfindity" "$(pkg-config --libs findity | sed 's/ *$//')"
# shellcheck disable=SC2016 # the literal ${prefix}
expect_eq "findity.pc: libdir relative to prefix" '${prefix}/lib' "$(sed -n 's/^libdir=//p' "$lib/pkgconfig/findity.pc")"
# shellcheck disable=SC2046 # word splitting of pkg-config's output is the point
expect_eq "the header's FINDITY_VERSION_* match Cargo.toml" "$version" \
    "$(printf '#include <findity.h>\nFINDITY_VERSION_MAJOR.FINDITY_VERSION_MINOR.FINDITY_VERSION_PATCH\n' |
        cc -E -P $(pkg-config --cflags findity) - | tail -1 | tr -d ' ')"

tok=$prefix/bin/findity-token
check "bin/findity-token is executable" test -x "$tok"
expect_eq "findity-token needs libfindity.so.$major" "libfindity.so.$major" \
    "$(readelf -d "$tok" | sed -n 's/.*(NEEDED).*\[\(libfindity[^]]*\)\]/\1/p')"
expect_contains "findity-token loads the installed library" "libfindity.so.$major => $lib/libfindity.so.$major" "$(ldd "$tok")"
expect_eq "findity-token --version" "findity-token $version (libfindity $version)" "$("$tok" --version)"

# ---------------------------------------------------------------------------------------------
echo "== the C examples, built with pkg-config alone"
target/debug/findity-emulator --port 0 --quiet --url-file "$tmp/emulator-url" --client inst-client:inst-secret \
    --unknown-users unknown-person >/dev/null &
EMULATOR_PID=$! # stopped by cleanup
for _ in $(seq 100); do [ -s "$tmp/emulator-url" ] && break; sleep 0.05; done
EMULATOR_URL=$(cat "$tmp/emulator-url")
[ -n "$EMULATOR_URL" ] || { fail "the emulator starts"; summary; exit 1; }
echo "   emulator at $EMULATOR_URL"
mkdir -p "$tmp/src" && cp examples/c/demo.c examples/c/connector.c "$tmp/src/"
(
    cd "$tmp/src" || exit 1 # outside the source tree: nothing but pkg-config can point to the header
    # shellcheck disable=SC2046 # word splitting of pkg-config's output is the point
    cc -std=c11 -Wall -Wextra -Werror demo.c $(pkg-config --cflags --libs findity) -Wl,-rpath,"$lib" -o demo &&
        cc -std=c11 -Wall -Wextra -Werror connector.c $(pkg-config --cflags --libs findity) -Wl,-rpath,"$lib" -o connector
) >"$tmp/cc.log" 2>&1
if [ -x "$tmp/src/connector" ] && [ -x "$tmp/src/demo" ]; then
    ok "cc demo.c connector.c \$(pkg-config --cflags --libs findity)"
else
    fail "cc demo.c connector.c \$(pkg-config --cflags --libs findity)" "$(cat "$tmp/cc.log")"
fi
expect_contains "demo loads the installed library" "libfindity.so.$major => $lib/libfindity.so.$major" "$(ldd "$tmp/src/demo" 2>&1)"
export FINDITY_CLIENT_SECRET=inst-secret
out=$("$tmp/src/demo" "$EMULATOR_URL" inst-client E77 2>&1)
expect_eq "demo (pkg-config build) exits 0" 0 "$?"
expect_contains "demo (pkg-config build) gets a user token" "user token for E77" "$out"
out=$("$tmp/src/connector" "$EMULATOR_URL" inst-client E77 2>&1)
expect_eq "connector (pkg-config build) exits 0" 0 "$?"
expect_contains "connector (pkg-config build) calls the API as the user" '"subject":"user:E77"' "$out"

echo "== examples/c-cmake"
if cmake -S examples/c-cmake -B "$tmp/cmake" >"$tmp/cmake.log" 2>&1 && cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1; then
    ok "cmake configure + build with PKG_CONFIG_PATH"
else
    fail "cmake configure + build with PKG_CONFIG_PATH" "$(tail -30 "$tmp/cmake.log")"
fi
expect_contains "cmake found libfindity through pkg-config" "libfindity $version in $lib" "$(cat "$tmp/cmake.log")"
out=$("$tmp/cmake/findity-connector" "$EMULATOR_URL" inst-client E78 2>&1)
expect_eq "findity-connector (CMake build) exits 0" 0 "$?"
expect_contains "findity-connector (CMake build) calls the API as the organization" '"subject":"org:inst-client"' "$out"
out=$("$tmp/cmake/findity-demo" "$EMULATOR_URL" inst-client E78 2>&1)
expect_eq "findity-demo (CMake build) exits 0" 0 "$?"
out=$(env -u PKG_CONFIG_PATH cmake -S examples/c-cmake -B "$tmp/cmake2" -DCMAKE_PREFIX_PATH="$prefix" 2>&1)
expect_contains "cmake finds it with -DCMAKE_PREFIX_PATH instead" "libfindity $version in $lib" "$out"
unset FINDITY_CLIENT_SECRET

# ---------------------------------------------------------------------------------------------
echo "== findity-token"
url=$EMULATOR_URL
# run_tok [ENV=VALUE...] -- ARGS...: runs findity-token with no FINDITY_* from this shell, stdin
# from $stdin (default /dev/null); sets rc, so (stdout), se (stderr).
run_tok() {
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    so=$(env -u FINDITY_CLIENT_SECRET -u FINDITY_CLIENT_ID -u FINDITY_ENV -u FINDITY_SHARED_CACHE \
        XDG_CACHE_HOME="$tmp/cache" "${envs[@]}" \
        "$tok" "$@" <"${stdin:-/dev/null}" 2>"$tmp/stderr")
    rc=$?
    se=$(cat "$tmp/stderr")
    stdin=
}

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client
expect_eq "org token (secret from FINDITY_CLIENT_SECRET): exit 0" 0 "$rc"
expect_eq "org token: stdout is one line, stderr empty" "1:" "$(printf '%s\n' "$so" | wc -l):$se"
expect_eq "org token: the API accepts it as the organization" "org:inst-client" "$(TOKEN=$so api_subject)"

printf 'inst-secret\n' >"$tmp/secret"
stdin=$tmp/secret run_tok -- --env "$url" --client-id inst-client --user E5
expect_eq "user token (secret on stdin): exit 0" 0 "$rc"
expect_eq "user token: the API accepts it as the user" "user:E5" "$(TOKEN=$so api_subject)"

printf 'inst-secret' >"$tmp/secret-no-newline"
stdin=$tmp/secret-no-newline run_tok FINDITY_ENV="$url" FINDITY_CLIENT_ID=inst-client -- --user E6
expect_eq "FINDITY_ENV, FINDITY_CLIENT_ID; secret on stdin without a newline" "0 user:E6" "$rc $(TOKEN=$so api_subject)"

stdin=$tmp/secret run_tok FINDITY_CLIENT_SECRET=wrong -- --env "$url" --client-id inst-client --secret-stdin
expect_eq "--secret-stdin wins over FINDITY_CLIENT_SECRET" 0 "$rc"

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env="$url" --client-id=inst-client --user=E8 --json
expect_eq "--json: exit 0" 0 "$rc"
json_check=$(TOKEN_JSON=$so python3 -c 'import json, os
d = json.loads(os.environ["TOKEN_JSON"])
assert set(d) == {"access_token", "token_type", "expires_in", "expires_at"}, d.keys()
assert d["token_type"] == "Bearer" and isinstance(d["expires_in"], int) and 3000 < d["expires_in"] <= 3600, d
assert len(d["expires_at"]) == 20 and d["expires_at"].endswith("Z"), d["expires_at"]
print(d["access_token"])' 2>&1)
expect_eq "--json: access_token, token_type Bearer, expires_in, expires_at" 0 "$?"
expect_eq "--json: the token is the user's" "user:E8" "$(TOKEN=$json_check api_subject)"

for arg in "--secret inst-secret" "--client-secret=inst-secret" "--secret"; do
    # shellcheck disable=SC2086 # split on purpose
    run_tok -- --env "$url" --client-id inst-client $arg
    expect_eq "refuses $arg: exit 2, nothing on stdout" "2:" "$rc:$so"
    expect_contains "refuses $arg: says why" "visible to every user" "$se"
done

run_tok FINDITY_CLIENT_SECRET=not-the-secret -- --env "$url" --client-id inst-client
expect_eq "wrong secret: exit 4, nothing on stdout" "4:" "$rc:$so"
expect_contains "wrong secret: the server's answer on stderr" "HTTP 401 invalid_client" "$se"
expect_contains "wrong secret: a hint" "hint: Findity refused client \"inst-client\"" "$se"
case "$se" in *not-the-secret*) fail "wrong secret: the secret is not echoed" "$se" ;; *) ok "wrong secret: the secret is not echoed" ;; esac

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --user unknown-person
expect_eq "unknown user: exit 4" 4 "$rc"
expect_contains "unknown user: says which user" 'token for user "unknown-person"' "$se"

tokens_before=$(emu_stat token_requests)
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client
expect_eq "cache: a second run is served from \$XDG_CACHE_HOME/findity, no request" "0 $tokens_before" \
    "$rc $(emu_stat token_requests)"
expect_eq "cache: directory 0700, records 0600" "700 600" \
    "$(stat -c %a "$tmp/cache/findity") $(stat -c %a "$tmp"/cache/findity/*.rec | sort -u)"
case "$(cat "$tmp"/cache/findity/* | tr -d '\0')" in *"$so"* | *inst-secret*) fail "cache: no token or secret in plaintext" ;; *) ok "cache: no token or secret in plaintext" ;; esac
run_tok -- --help
expect_contains "--help says where it caches" "Cache here and now: $tmp/cache/findity" "$so"

emu_post '/_emulator/fault?endpoint=token&kind=status:503&count=0'
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --timeout-ms 1500 --no-cache
emu_post /_emulator/fault/clear
expect_eq "server failing (503): exit 5" "5:" "$rc:$so"
expect_contains "server failing: HTTP status on stderr" "HTTP 503" "$se"

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "http://127.0.0.1:$(free_port)" --client-id inst-client --timeout-ms 1000
expect_eq "nothing listening: exit 3" "3:" "$rc:$so"
expect_contains "nothing listening: names host and port" "nothing listens at 127.0.0.1:" "$se"
expect_contains "nothing listening: a hint" "hint: nothing listens at that address" "$se"
t0=$SECONDS
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "http://127.0.0.1:$(free_port)" --client-id inst-client --no-cache
expect_eq "nothing listening, default timeout: exit 3 within 5 s" "3 yes" "$rc $([ $((SECONDS - t0)) -le 5 ] && echo yes || echo "no: $((SECONDS - t0)) s")"

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --user E9 --verbose
expect_contains "--verbose: the requests on stderr" 'findity info: user token for "E9"' "$se"
case "$se" in *"$so"* | *inst-secret*) fail "--verbose: neither token nor secret on stderr" "$se" ;; *) ok "--verbose: neither token nor secret on stderr" ;; esac

# --invalidate (issue 19): the server dropped its tokens; four scripts get the same 401 and run
# --invalidate at once: one renewal, all four print the new token, and the next plain run too.
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client
t1=$so
emu_post '/_emulator/revoke?what=access'
expect_eq "--invalidate: the API refuses the dropped token" "HTTP 401" "$(TOKEN=$t1 api_subject)"
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client
expect_eq "--invalidate: without it, a plain run still prints the dropped token" "$t1" "$so"
before=$(emu_stat token_requests)
pids=()
for i in 1 2 3 4; do
    env -u FINDITY_CLIENT_ID -u FINDITY_ENV -u FINDITY_SHARED_CACHE XDG_CACHE_HOME="$tmp/cache" \
        FINDITY_CLIENT_SECRET=inst-secret "$tok" --env "$url" --client-id inst-client \
        --invalidate "$t1" >"$tmp/inv.$i" 2>"$tmp/inv.$i.err" </dev/null &
    pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the emulator runs in the background too
t2=$(cat "$tmp/inv.1")
expect_eq "--invalidate: four scripts at once print one new token" "$t2 $t2 $t2 $t2" \
    "$(cat "$tmp/inv.1") $(cat "$tmp/inv.2") $(cat "$tmp/inv.3") $(cat "$tmp/inv.4")"
check "--invalidate: the new token differs from the refused one" test "$t2" != "$t1"
expect_eq "--invalidate: the API accepts the new token" "org:inst-client" "$(TOKEN=$t2 api_subject)"
expect_eq "--invalidate: four scripts caused one renewal" 1 "$(( $(emu_stat token_requests) - before ))"
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --verbose
expect_eq "--invalidate: the next plain run prints the new token" "$t2" "$so"
expect_contains "--verbose says the token came from the shared cache" "organization token from the shared cache" "$se"
before=$(emu_stat token_requests)
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --invalidate "$t1"
expect_eq "--invalidate with a token no longer cached: the current one, exit 0, no request" "0 $t2 0" \
    "$rc $so $(( $(emu_stat token_requests) - before ))"
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --no-cache --invalidate "$t2" --verbose
expect_eq "--invalidate --no-cache: a new token" 0 "$rc"
check "--invalidate --no-cache: not the cached one" test "$so" != "$t2"
expect_contains "--verbose names the grant of a new request" "organization token from a new request (client_credentials grant)" "$se"
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --user E21
u1=$so
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --user E21 --invalidate "$u1" --verbose
expect_eq "--invalidate --user: a new user token" "0 user:E21" "$rc $(TOKEN=$so api_subject)"
check "--invalidate --user: not the refused one" test "$so" != "$u1"
expect_contains "--verbose: the user token's renewal" "user token from a new request (refresh_token grant)" "$se"
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env prod --client-id inst-client
expect_contains "--env prod: did you mean production" 'did you mean "production"?' "$se"

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url" --client-id inst-client --ca-file "$tmp/no-such.pem"
expect_eq "unreadable --ca-file: exit 2" "2:" "$rc:$so"
expect_contains "unreadable --ca-file: says why" "cannot read $tmp/no-such.pem" "$se"

run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env http://findity.invalid --client-id inst-client
expect_eq "http:// to a non-loopback host: exit 2 (nothing sent)" 2 "$rc"
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "$url"
expect_eq "no client id: exit 2" 2 "$rc"
expect_contains "no client id: says how to give one" "--client-id ID or set FINDITY_CLIENT_ID" "$se"
run_tok -- --env "$url" --client-id inst-client
expect_eq "no secret (empty stdin): exit 2" 2 "$rc"
run_tok -- --bogus
expect_eq "unknown option: exit 2" 2 "$rc"
run_tok -- --secrt=hunter2-typo
case "$rc:$se" in 2:*hunter2*) fail "a mistyped option's value is not echoed" "$se" ;; 2:*) ok "a mistyped option's value is not echoed" ;; *) fail "a mistyped option's value is not echoed" "rc $rc" ;; esac
run_tok -- hunter2-stray
case "$rc:$se" in 2:*hunter2*) fail "a stray argument is not echoed" "$se" ;; 2:*) ok "a stray argument is not echoed" ;; *) fail "a stray argument is not echoed" "rc $rc" ;; esac
run_tok FINDITY_CLIENT_SECRET=inst-secret -- --env "https://user:pw-in-url@127.0.0.1:1" --client-id inst-client
case "$se" in *pw-in-url*) fail "credentials in --env are not echoed" "$se" ;; *) ok "credentials in --env are not echoed" ;; esac
run_tok -- --help
expect_eq "--help: exit 0" 0 "$rc"
expect_contains "--help documents the exit codes" "4  refused: wrong client id or secret" "$so"

# ---------------------------------------------------------------------------------------------
echo "== make uninstall PREFIX=$prefix"
check "make uninstall" "${MAKE_CMD[@]}" uninstall PREFIX="$prefix"
expect_eq "nothing left but directories" "" "$(find "$prefix" ! -type d)"

echo "== make install DESTDIR=$tmp/stage PREFIX=/opt/findity LIBDIR=/opt/findity/lib64"
stage=$tmp/stage
check "make install DESTDIR=... PREFIX=/opt/findity LIBDIR=/opt/findity/lib64" \
    "${MAKE_CMD[@]}" install DESTDIR="$stage" PREFIX=/opt/findity LIBDIR=/opt/findity/lib64
expect_eq "staged files" \
    "bin/findity-token include/findity.h lib64/libfindity.so lib64/libfindity.so.$major lib64/libfindity.so.$version lib64/pkgconfig/findity.pc" \
    "$(cd "$stage/opt/findity" && find . ! -type d | sed 's|^\./||' | sort | tr '\n' ' ' | sed 's/ $//')"
pc=$stage/opt/findity/lib64/pkgconfig/findity.pc
expect_eq "findity.pc: prefix without DESTDIR, libdir \${prefix}/lib64" "prefix=/opt/findity libdir=\${prefix}/lib64" \
    "$(sed -n 's/^\(prefix\|libdir\)=/&/p' "$pc" | tr '\n' ' ' | sed 's/ $//')"
check "no file mentions the staging directory" bash -c "! grep -rl '$stage' '$stage'"
expect_contains "findity-token's RUNPATH is the final LIBDIR" "[/opt/findity/lib64]" "$(readelf -d "$stage/opt/findity/bin/findity-token" | grep -E 'RUNPATH|RPATH')"
check "make uninstall DESTDIR=... (same variables)" \
    "${MAKE_CMD[@]}" uninstall DESTDIR="$stage" PREFIX=/opt/findity LIBDIR=/opt/findity/lib64
expect_eq "nothing left but directories" "" "$(find "$stage" ! -type d)"

echo "== uninstall leaves another version's symlinks alone"
other=$tmp/other
mkdir -p "$other/lib" && touch "$other/lib/libfindity.so.$major.99.0" &&
    ln -s "libfindity.so.$major.99.0" "$other/lib/libfindity.so.$major" && ln -s "libfindity.so.$major" "$other/lib/libfindity.so"
check "make uninstall PREFIX=(a prefix with another version)" "${MAKE_CMD[@]}" uninstall PREFIX="$other"
expect_eq "its libfindity.so.$major and libfindity.so are still there" "libfindity.so.$major.99.0 libfindity.so.$major" \
    "$(readlink "$other/lib/libfindity.so.$major") $(readlink "$other/lib/libfindity.so")"

echo "($((SECONDS - t0)) s)"
summary
