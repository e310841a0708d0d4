#!/usr/bin/env bash
# The Node.js wrapper's tests (bindings/node), against the emulator, on the packed tarball.
#
#   FINDITY_EMULATOR=/abs/target/debug/findity-emulator bash scripts/test-node.sh [node --test args]
#
# Installs build/npm/findity-auth-VERSION.tgz (make npm) with `npm install` into an empty folder
# (build/npm/app; koffi comes from the registry) and runs the node:test suite there, so
# `findity-auth` and its libfindity come from the installed package, never from the source tree.
# Then: the TypeScript declarations are type-checked (ESM and CommonJS use), the README's quick
# start runs as written against a fresh emulator (plainly and with a 401 injected), and a Java,
# a Node and a Python process sharing one file store make one token request for one key
# (needs build/java/findity-auth-VERSION.jar: make java).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

export FINDITY_EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
[ -x "$FINDITY_EMULATOR" ] || { echo "test-node: $FINDITY_EMULATOR is missing; run: make build" >&2; exit 2; }
command -v node >/dev/null && command -v npm >/dev/null || apt_install --no-install-recommends nodejs npm
command -v curl >/dev/null || apt_install --no-install-recommends curl
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

VERSION="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)"
TGZ="$ROOT/build/npm/findity-auth-$VERSION.tgz"
[ -f "$TGZ" ] || { echo "test-node: $TGZ is missing; run: make npm" >&2; exit 2; }

# ---- the tarball into an empty folder, as a user installs it
APP="$ROOT/build/npm/app"
rm -rf "$APP"
mkdir -p "$APP"
(cd "$APP" && echo '{"name": "findity-auth-test-app", "private": true}' >package.json \
    && npm install --silent "$TGZ")
cp -r bindings/node/test "$APP/test"

set +e
(cd "$APP" && env -u FINDITY_LIB -u LD_LIBRARY_PATH -u FINDITY_SHARED_CACHE -u FINDITY_LOG \
    FINDITY_TEST_LIB="$ROOT/target/release/libfindity.so" \
    node --test --test-concurrency=1 "$@" test/*.test.mjs test/*.test.cjs)
status=$?
set -e
[ "$status" = 0 ] || exit "$status"

# ---- the TypeScript declarations, from ESM and from CommonJS
TSC_DIR="$ROOT/build/npm/tsc"
[ -x "$TSC_DIR/node_modules/.bin/tsc" ] || (mkdir -p "$TSC_DIR" && cd "$TSC_DIR" \
    && echo '{"private": true}' >package.json && npm install --silent typescript@5 @types/node@20)
cat >"$APP/types.mts" <<'TS'
import findity, { getToken, cachedToken, stats, FindityAuth, FindityError, type FindityStats } from 'findity-auth';
const t: Promise<string> = getToken('production', 'id', 'secret');
const c: string | null = cachedToken('production', 'id', 'secret', null);
const s: FindityStats = stats();
const n: number = s.cacheHits + s.failures[4];
const a = new FindityAuth({ baseUrl: 'production', clientId: 'id', clientSecret: 's', userId: 'E1' });
const r: Promise<Response> = a.fetch('https://example.com/api/v1/me', { method: 'GET' });
const e = new FindityError('AUTH', 401, 'm');
const st: 'INVALID_ARGUMENT' | 'NETWORK' | 'AUTH' | 'SERVER' | 'INTERNAL' = e.status;
findity.setLogger((level, message) => { const l: string = level + message; void l; });
void [t, c, n, r, st];
TS
cat >"$APP/types.cts" <<'TS'
import findity = require('findity-auth');
const t: Promise<string> = findity.getToken('production', 'id', 'secret');
const u: Promise<string> = findity.getUserToken('production', 'id', 'secret', 'E1');
const x: number = findity.tokenExpiresIn('production', 'id');
void [t, u, x];
TS
(cd "$APP" && NODE_PATH="$TSC_DIR/node_modules" "$TSC_DIR/node_modules/.bin/tsc" --noEmit --strict \
    --module nodenext --moduleResolution nodenext --target es2022 --types node --typeRoots "$TSC_DIR/node_modules/@types" \
    types.mts types.cts) || { echo "test-node: the TypeScript declarations do not type-check" >&2; exit 1; }
echo "test-node: TypeScript declarations ok (ESM and CommonJS)"

# ---- the README's quick start, as written, against a fresh emulator
awk '/^```js$/ { f = 1; next } f && /^```$/ { exit } f' bindings/node/README.md >"$APP/quickstart.mjs"
grep -q "from 'findity-auth'" "$APP/quickstart.mjs" || { echo "test-node: no quick start in bindings/node/README.md" >&2; exit 1; }
QS_ID=quickstart-client
QS_SECRET="quickstart-secret-$RANDOM$RANDOM"
start_emulator --client "$QS_ID:$QS_SECRET"
emulator_stat() {
    curl -fsS "$EMULATOR_URL/_emulator/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}
quickstart() {
    echo "== bindings/node/README.md quick start ($1)"
    local out
    out="$(cd "$APP" && env -u FINDITY_LIB FINDITY_BASE_URL="$EMULATOR_URL" FINDITY_CLIENT_ID="$QS_ID" \
        FINDITY_CLIENT_SECRET="$QS_SECRET" node quickstart.mjs 2>&1)" \
        || { echo "$out"; echo "test-node: the quick start failed ($1)" >&2; return 1; }
    echo "$out" | sed 's/^/   /'
    grep -q "^/api/v1/expenses -> 200$" <<<"$out" && grep -q "^refused: AUTH HTTP 401$" <<<"$out" \
        && grep -q "^cached: true$" <<<"$out" || { echo "test-node: unexpected quick start output" >&2; return 1; }
    ! grep -qF "$QS_SECRET" <<<"$out" || { echo "test-node: the quick start printed the secret" >&2; return 1; }
}
quickstart plain
[ "$(emulator_stat api_requests)" = 1 ] || { echo "test-node: expected 1 API request" >&2; exit 1; }
curl -fsS -X POST "$EMULATOR_URL/_emulator/reset" >/dev/null
curl -fsS -X POST "$EMULATOR_URL/_emulator/fault?endpoint=api&kind=status:401" >/dev/null
quickstart "first API answer is a 401"
[ "$(emulator_stat faults_served)" = 1 ] && [ "$(emulator_stat api_requests)" = 2 ] \
    || { echo "test-node: expected the 401 to be served and the request resent once" >&2; exit 1; }

# ---- Java, Node and Python processes sharing one file store: one token request for one key
JAR="$ROOT/build/java/findity-auth-$VERSION.jar"
JNA=/usr/share/java/jna.jar
[ -f "$JAR" ] || { echo "test-node: $JAR is missing; run: make java" >&2; exit 2; }
[ -f "$JNA" ] || apt_install --no-install-recommends libjna-java
command -v python3 >/dev/null || apt_install python3
SS="$ROOT/bindings/node/test/shared-store"
cp "$SS/shared-store.mjs" "$APP/"
STORE_ROOT="$(mktemp -d)"
trap 'kill $EMULATOR_PID 2>/dev/null || true; rm -rf "$STORE_ROOT"' EXIT
three() {  # three TITLE STORE_DIR MODE(together|in-turn): run the three processes; check one request
    local title=$1 store=$2 mode=$3 start out=() i
    curl -fsS -X POST "$EMULATOR_URL/_emulator/reset" >/dev/null
    curl -fsS -X POST "$EMULATOR_URL/_emulator/config?latency_ms=400" >/dev/null
    local cmds=(
        "java -cp $JAR:$JNA $SS/SharedStore.java"
        "node $APP/shared-store.mjs"
        "env PYTHONPATH=$ROOT/bindings/python/src FINDITY_LIB=$ROOT/target/release/libfindity.so python3 $SS/shared_store.py"
    )
    if [ "$mode" = together ]; then
        start=$(( $(date +%s%3N) + 2500 ))  # all three ask at this instant (the JVM starts slowest)
        local pids=()
        for i in 0 1 2; do
            (cd "$APP" && env -u FINDITY_LIB -u FINDITY_SHARED_CACHE ${cmds[$i]} "$EMULATOR_URL" "$QS_ID" "$QS_SECRET" "$store" "$start" \
                >"$STORE_ROOT/out.$i" 2>&1) &
            pids+=($!)
        done
        wait "${pids[@]}" || true  # (not a bare wait: the emulator runs in the background too)
    else
        for i in 2 1 0; do
            (cd "$APP" && env -u FINDITY_SHARED_CACHE ${cmds[$i]} "$EMULATOR_URL" "$QS_ID" "$QS_SECRET" "$store" 0 \
                >"$STORE_ROOT/out.$i" 2>&1)
        done
    fi
    echo "== one file store, Java + Node + Python ($title)"
    sed 's/^/   /' "$STORE_ROOT"/out.*
    local hashes requests
    hashes="$(cat "$STORE_ROOT"/out.* | awk '/^(java|node|python) [0-9a-f]{16} / { print $2 }' | sort -u)"
    [ "$(cat "$STORE_ROOT"/out.* | grep -cE '^(java|node|python) [0-9a-f]{16} ')" = 3 ] \
        || { echo "test-node: not every process got a token ($title)" >&2; return 1; }
    [ "$(wc -l <<<"$hashes")" = 1 ] || { echo "test-node: the processes got different tokens ($title)" >&2; return 1; }
    requests="$(emulator_stat client_credentials)"
    [ "$requests" = 1 ] || { echo "test-node: $requests token requests for one key across three processes ($title)" >&2; return 1; }
    echo "   -> one token request, one token ($title)"
}
three "asking at the same instant" "$STORE_ROOT/store-together" together
three "one after another" "$STORE_ROOT/store-in-turn" in-turn
echo "test-node: ok"
