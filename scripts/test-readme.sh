#!/usr/bin/env bash
# README.md's quick starts, as written, against the emulator: the blocks after the markers
# `<!-- test-readme: c -->` (app.c), `<!-- test-readme: c-run -->` (its build and run lines) and
# `<!-- test-readme: python -->` are extracted and run. The emulator is started with the
# `--client ID:SECRET` of the README's own command (on a free port instead of 8080); the C
# program is compiled with the README's `cc` line and run with the README's environment line
# (FINDITY_BASE_URL pointed at that port), so the snippets' defaults must agree with it.
#
#   FINDITY_EMULATOR=/abs/target/debug/findity-emulator bash scripts/test-readme.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh
EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
WORK="$(mktemp -d)"
EMULATOR_PID=
trap 'if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

block() {  # block NAME: the fenced block right after <!-- test-readme: NAME -->
    awk -v want="<!-- test-readme: $1 -->" '
        $0 == want { armed = 1; next }
        armed && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' README.md
}
fail() { echo "test-readme: $*" >&2; exit 1; }

block c >"$WORK/app.c"
block c-run >"$WORK/run.sh"
block python >"$WORK/quickstart.py"
for f in app.c run.sh quickstart.py; do [ -s "$WORK/$f" ] || fail "no block for $f in README.md"; done

emu_line="$(grep -m1 'findity-emulator --port' "$WORK/run.sh")" || fail "no emulator command in the c-run block"
client="$(grep -o -- '--client [^ ]*' <<<"$emu_line" | cut -d' ' -f2)"
cc_line="$(grep -m1 '^cc app.c' "$WORK/run.sh")" || fail "no cc line in the c-run block"
env_line="$(grep -m1 '\./app$' "$WORK/run.sh")" || fail "no ./app line in the c-run block"
readme_port="$(grep -o -- '--port [0-9]*' <<<"$emu_line" | cut -d' ' -f2)"

"$EMULATOR" --port 0 --quiet --url-file "$WORK/url" --client "$client" >/dev/null &
EMULATOR_PID=$!
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.05; done
URL="$(cat "$WORK/url")"
[ -n "$URL" ] || fail "the emulator did not start"
port="${URL##*:}"

echo "== README C quick start: $cc_line"
[ -f target/release/libfindity.so ] || make --no-print-directory release
cc_cmd="${cc_line% -o app}"; (cd "$ROOT" && eval "${cc_cmd/app.c/$WORK/app.c} -o $WORK/app" 2>&1) || fail "app.c does not compile as written"
run_line="${env_line//127.0.0.1:$readme_port/127.0.0.1:$port}"
run_line="${run_line%./app}$WORK/app"
echo "   ${env_line} (port $port)"
out="$(cd "$WORK" && env -u FINDITY_CLIENT_ID -u FINDITY_USER_ID bash -c "$run_line" 2>&1)" || { echo "$out"; fail "the C quick start failed"; }
echo "$out" | sed 's/^/   /'
grep -q "^organization token .* from $URL$" <<<"$out" && grep -q "^user token for E1234 " <<<"$out" \
    || fail "the C quick start did not print both tokens"

echo "== README Python quick start (the installed wheel)"
python_env >/dev/null
secret="$(grep -o 'FINDITY_CLIENT_SECRET=[^ ]*' <<<"$env_line" | cut -d= -f2)"
out="$(cd "$WORK" && env -u FINDITY_LIB -u FINDITY_CLIENT_ID FINDITY_BASE_URL="$URL" FINDITY_CLIENT_SECRET="$secret" \
    "$VPY" quickstart.py 2>&1)" || { echo "$out"; fail "the Python quick start failed"; }
echo "$out" | sed 's/^/   /'
for want in "^requests: 200 " "^httpx: 200 .*user:E1234" "^asyncio: [0-9]* chars; 200 " "^refused: AUTH "; do
    grep -q "$want" <<<"$out" || fail "the Python quick start did not print $want"
done
! grep -qF "$secret" <<<"$out" || fail "the Python quick start printed the secret"
echo "test-readme: the C and Python quick starts run as written"
