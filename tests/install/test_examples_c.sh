#!/usr/bin/env bash
# make test-examples-c: the C examples (examples/c/) against a fresh emulator.
#   usage: test_examples_c.sh CONNECTOR_BINARY DEMO_BINARY   (built by mk/install.mk)
# connector.c: a user call and an organization call answer 200 with the right subject; a
# single injected 401 is answered by findity_invalidate + one retry (and a new token); a
# persistent 401 gives up after exactly one retry. demo.c: runs to the end.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source scripts/common.sh
source tests/install/lib.sh

connector=${1:?usage: $0 CONNECTOR DEMO}
demo=${2:?usage: $0 CONNECTOR DEMO}
t0=$SECONDS

start_emulator --client erp-client:erp-secret --unknown-users unknown-employee
export FINDITY_CLIENT_SECRET=erp-secret
echo "emulator at $EMULATOR_URL"

run_connector() {
    out=$("$connector" "$EMULATOR_URL" erp-client E1234 2>&1)
    rc=$?
}

# 1. The plain run.
run_connector
printf '%s\n' "$out" | sed 's/^/     | /'
expect_eq "connector exits 0" 0 "$rc"
expect_contains "GET /api/v1/me answers 200 for the user" 'GET /api/v1/me as user E1234 -> 200 {"path":"/api/v1/me","subject":"user:E1234"}' "$out"
expect_contains "GET /api/v1/expenses answers 200 for the organization" '-> 200 {"path":"/api/v1/expenses","subject":"org:erp-client"}' "$out"
expect_eq "two API requests, no retry" 2 "$(emu_stat api_requests)"
plain_tokens=$(emu_stat token_requests)

# 2. One 401 from the API: invalidate, a new token, one retry, success.
emu_post /_emulator/reset
emu_post '/_emulator/fault?endpoint=api&kind=status:401&count=1'
run_connector
printf '%s\n' "$out" | sed 's/^/     | /'
expect_eq "connector exits 0 after a 401" 0 "$rc"
expect_contains "the 401 is reported and retried" "/api/v1/me answered 401: invalidating the user token and retrying once" "$out"
expect_contains "the retry answers 200" 'GET /api/v1/me as user E1234 -> 200' "$out"
expect_eq "three API requests (one retry)" 3 "$(emu_stat api_requests)"
expect_eq "one more token request than without the 401 (the invalidated token was replaced)" \
    $((plain_tokens + 1)) "$(emu_stat token_requests)"

# 3. A 401 every time: exactly one retry per call, then a failure exit.
emu_post /_emulator/reset
emu_post '/_emulator/fault?endpoint=api&kind=status:401&count=0'
run_connector
expect_eq "connector exits 1 when the API keeps answering 401" 1 "$rc"
expect_eq "four API requests (each call retried exactly once)" 4 "$(emu_stat api_requests)"
expect_contains "the final answer is shown" 'GET /api/v1/expenses as the organization -> 401' "$out"
emu_post /_emulator/fault/clear

# 4. Usage.
out=$(env -u FINDITY_CLIENT_SECRET "$connector" "$EMULATOR_URL" erp-client E1234 2>&1)
expect_eq "connector without a secret: usage, exit 2" 2 "$?"

# 5. demo.c runs to the end.
emu_post /_emulator/reset
out=$("$demo" "$EMULATOR_URL" erp-client E1234 2>&1)
rc=$?
expect_eq "demo exits 0" 0 "$rc"
expect_contains "demo gets a user token" "user token for E1234" "$out"

echo "($((SECONDS - t0)) s)"
summary
