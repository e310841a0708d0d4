# Helpers for tests/install/*.sh (sourced, not run): checks with a pass/fail count, and the
# emulator's control API through python3 (no curl needed on a fresh machine).

passed=0
failed=0

ok() {
    passed=$((passed + 1))
    printf 'ok   %s\n' "$1"
}

fail() {
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$1"
    shift
    local line
    for line in "$@"; do printf '     %s\n' "$line"; done
}

# check NAME COMMAND...: runs the command, quiet on success, its output shown on failure.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        fail "$name" "command: $*" "${out:0:2000}"
    fi
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected: $2" "actual:   $3"; fi
}

# expect_contains NAME NEEDLE HAYSTACK
expect_contains() {
    case "$3" in
    *"$2"*) ok "$1" ;;
    *) fail "$1" "expected to contain: $2" "actual: ${3:0:2000}" ;;
    esac
}

summary() {
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

# emu_post PATH_AND_QUERY: a control call, e.g. emu_post '/_emulator/fault?endpoint=api&kind=status:401'
emu_post() {
    python3 -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="POST"), timeout=10).read()' \
        "$EMULATOR_URL$1"
}

# emu_stat NAME: one counter of /_emulator/stats
emu_stat() {
    python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1], timeout=10))[sys.argv[2]])' \
        "$EMULATOR_URL/_emulator/stats" "$1"
}

# api_subject: GET /api/v1/whoami with the token in $TOKEN; prints the emulator's "subject"
# (org:CLIENT or user:ID) or "HTTP <status>".
api_subject() {
    python3 -c 'import json, os, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
try:
    print(json.load(urllib.request.urlopen(req, timeout=10))["subject"])
except urllib.error.HTTPError as e:
    print("HTTP", e.code)' "$EMULATOR_URL/api/v1/whoami"
}

# A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
