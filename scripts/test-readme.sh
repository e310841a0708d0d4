#!/usr/bin/env bash
# README.md as a newcomer follows it: every fenced block runs as written, in order, in one shell
# session started at the repository root, against the emulator; what cannot run here is checked
# for syntax. Every block must follow a marker line saying which:
#
#   <!-- test-readme: file NAME -->  a file the text says to save (app.c, quickstart.py,
#                                    Program.cs); written to a scratch directory
#   <!-- test-readme: run -->        shell lines, run as written (see below)
#   <!-- test-readme: syntax -->     needs Findity itself, root, or is a fragment: sh -> bash -n,
#                                    python -> compile(), c -> compiled as a function body
#                                    (-fsyntax-only), csharp -> not accepted (make it a file)
#   <!-- test-readme: cron -->       crontab lines: five time fields and a command sh -n accepts
#
# A block without a marker fails the test, so a block added later is run or checked.
#
# "As written" means the run blocks' text, in one bash session (set -e; its exports and an
# activated venv carry over to later blocks, as in a terminal), with these changes only:
#   - 8080 (in 127.0.0.1:8080 and --port 8080) becomes a free port;
#   - the saved files' names (app.c, quickstart.py, Program.cs) become their scratch paths;
#   - a line that starts a server in the background (`... --port N ... &`) first stops the
#     session's earlier background jobs (the emulator section restarts the emulator the C quick
#     start left running) and is followed by a wait until its port answers, as a person typing
#     the next line would wait;
#   - HOME is a scratch directory (make install PREFIX=$HOME/.local, findity-token's cache, nuget's
#     files), FINDITY_* and other settings of the caller's environment are unset, and cargo,
#     rustup and pip keep their real caches.
# Earlier runs' outputs of the quick starts in build/ are removed first (build/venv, build/app,
# build/demo, build/c-cmake, build/packages/Findity.Auth.*, build/Program.exe, build/Connector.exe),
# so the wheel and the NuGet package are installed fresh, with the wheel's extras.
# Then each run block's output is checked for what the README says it prints.
#
#   bash scripts/test-readme.sh        (make test-readme)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh
WORK="$(mktemp -d)"
cleanup() {
    # The session's own trap stops its servers; this catches a session killed mid-way.
    if [ -n "${SESSION_PID:-}" ]; then kill -- -"$SESSION_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "test-readme: $*" >&2; exit 1; }
t0=$SECONDS

# ---- the blocks: README line, marker, language, text (one file per block)
mkdir -p "$WORK/blocks" "$WORK/files" "$WORK/home"
awk -v dir="$WORK/blocks" '
    /^<!-- test-readme: .* -->$/ { marker = $0; sub(/^<!-- test-readme: /, "", marker); sub(/ -->$/, "", marker); marked = NR; next }
    /^```/ {
        if (!inside) {
            inside = 1; n++; lang = substr($0, 4)
            f = sprintf("%s/%02d", dir, n)
            m = (marked == NR - 1 || marked == NR - 2 && prev == "") ? marker : "NONE"
            printf "%d\t%s\t%s\n", NR, m, lang > (f ".meta")
            printf "" > (f ".txt")
        } else { inside = 0; close(f ".txt"); close(f ".meta") }
        prev = $0; next
    }
    inside { print > (f ".txt") }
    { prev = $0 }' README.md
blocks=("$WORK"/blocks/*.meta)
[ -e "${blocks[0]}" ] || fail "no fenced blocks in README.md"

PORT="$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
saved=()
session="$WORK/session.sh"
cat >"$session" <<'SH'
set -eo pipefail
__stop_servers() {
    local p
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
__wait_port() {
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "test-readme: nothing listens on port $1" >&2; return 1
}
trap __stop_servers EXIT
SH
echo "cd '$ROOT'" >>"$session"

n_run=0 n_syntax=0
for meta in "${blocks[@]}"; do
    IFS=$'\t' read -r line marker lang <"$meta"
    text="${meta%.meta}.txt"
    case "$marker" in
    "file "*)
        name="${marker#file }"
        cp "$text" "$WORK/files/$name"
        saved+=("$name")
        ;;
    run)
        n_run=$((n_run + 1))
        case "$lang" in sh | bash | console) ;; *) fail "README.md:$line: a run block must be sh, not '$lang'" ;; esac
        echo "echo '@@block $line'" >>"$session"
        while IFS= read -r l || [ -n "$l" ]; do
            l="${l//127.0.0.1:8080/127.0.0.1:$PORT}"
            l="${l//--port 8080/--port $PORT}"
            for name in "${saved[@]}"; do
                l="$(sed -E "s#(^|[[:space:]=])$name([[:space:]]|\$)#\\1$WORK/files/$name\\2#g" <<<"$l")"
            done
            if [[ "$l" =~ --port\ ([0-9]+).*\&[[:space:]]*(#.*)?$ ]]; then
                printf '__stop_servers\n%s\n__wait_port %s\n' "$l" "${BASH_REMATCH[1]}" >>"$session"
            else
                printf '%s\n' "$l" >>"$session"
            fi
        done <"$text"
        ;;
    syntax | cron)
        n_syntax=$((n_syntax + 1))
        case "$marker:$lang" in
        syntax:sh | syntax:bash) bash -n "$text" || fail "README.md:$line: sh syntax" ;;
        syntax:python) python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$text" \
            || fail "README.md:$line: Python syntax" ;;
        syntax:c)
            { echo '#include <findity.h>'; echo 'void readme_fragment(void) {'; cat "$text"; echo '}'; } >"$WORK/fragment.c"
            cc -std=c11 -Wall -Werror -fsyntax-only -Iinclude "$WORK/fragment.c" || fail "README.md:$line: C fragment does not compile"
            ;;
        cron:*)
            while IFS= read -r l; do
                [[ -z "${l// /}" || "$l" =~ ^[[:space:]]*# ]] && continue
                [[ "$l" =~ ^([0-9*/,-]+[[:space:]]+){5}(.+)$ ]] || fail "README.md:$line: not a crontab line: $l"
                sh -n -c "${BASH_REMATCH[2]}" || fail "README.md:$line: the cron command's sh syntax"
            done <"$text"
            ;;
        *) fail "README.md:$line: no syntax check for '$lang' blocks (make it a file or a run block)" ;;
        esac
        ;;
    NONE) fail "README.md:$line: a \`\`\`$lang block without a <!-- test-readme: ... --> marker (see scripts/test-readme.sh)" ;;
    *) fail "README.md:$line: unknown marker '$marker'" ;;
    esac
done
for name in "${saved[@]}"; do
    grep -qF "$WORK/files/$name" "$session" || fail "README.md saves $name but no run block uses it"
done
echo "== README.md: ${#blocks[@]} blocks: $n_run run in one session, ${#saved[@]} saved files (${saved[*]}), $n_syntax checked for syntax; emulator port $PORT instead of 8080"

# ---- what the README assumes is installed (make test installs it; so does this, when missing)
need_c_compiler
command -v pkg-config >/dev/null || apt_install pkg-config
command -v cmake >/dev/null || apt_install cmake
python3 -c 'import venv, ensurepip' 2>/dev/null || python_venv "$WORK/venv-probe"
mono_env

rm -rf build/venv build/app build/demo build/c-cmake build/packages/Findity.Auth.* build/Program.exe build/Connector.exe

# ---- the session
real_home="$HOME"
unset_vars=()
for v in $(compgen -e); do
    case "$v" in FINDITY_* | VIRTUAL_ENV | PYTHONPATH | PKG_CONFIG_PATH | MONO_PATH | LD_LIBRARY_PATH | XDG_CACHE_HOME | XDG_CONFIG_HOME | MAKEFLAGS | MAKELEVEL | MFLAGS)
        unset_vars+=(-u "$v") ;;
    esac
done
echo "== running the session (its output: build/test-readme.log)"
set +e
env "${unset_vars[@]}" HOME="$WORK/home" CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}" \
    RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}" PIP_CACHE_DIR="${PIP_CACHE_DIR:-$real_home/.cache/pip}" \
    setsid bash "$session" >"$WORK/session.log" 2>&1 </dev/null &
SESSION_PID=$!
wait "$SESSION_PID"
rc=$?
set -e
SESSION_PID=
log="$WORK/session.log"
cp "$log" build/test-readme.log
if [ "$rc" != 0 ]; then
    last="$(grep '^@@block ' "$log" | tail -1)"
    tail -40 "$log" | grep -v '^@@block' >&2
    fail "the block at README.md:${last#@@block } failed (exit $rc); the lines above are its output's end"
fi

# ---- each block's output
out_of() {  # out_of LINE: the output of the run block at README.md:LINE
    awk -v want="@@block $1" '/^@@block / { on = ($0 == want); next } on' "$log"
}
expect() {  # expect LINE REGEX WHAT
    grep -qE -- "$2" <<<"$(out_of "$1")" || { out_of "$1" | tail -20 >&2; fail "README.md:$1: no line matching '$2' ($3)"; }
}
block_with() {  # block_with TEXT: the README line of the run block whose text has TEXT
    local meta
    for meta in "${blocks[@]}"; do
        IFS=$'\t' read -r line marker _ <"$meta"
        [ "$marker" = run ] && grep -qF -- "$1" "${meta%.meta}.txt" && { echo "$line"; return; }
    done
    fail "no run block contains '$1'"
}
for meta in "${blocks[@]}"; do
    IFS=$'\t' read -r line marker _ <"$meta"
    [ "$marker" = run ] || continue
    echo "-- README.md:$line"
    { out_of "$line" | grep -v '^\(Mono\|   Compiling\|    Finished\|   Fresh\)' || true; } | tail -12 | sed 's/^/   /'
done
URL="http://127.0.0.1:$PORT"
b="$(block_with 'FINDITY_CLIENT_SECRET=my-secret build/app')"
expect "$b" "organization token .* from $URL\$" "the C quick start's organization token"
expect "$b" "^user token for E1234 " "the C quick start's user token"
b="$(block_with 'build/demo http://')"
expect "$b" "^user token for E1234: " "demo.c's user token"
expect "$b" "^with a wrong secret \(expected to fail\) failed: status 4, HTTP 401" "demo.c's refusal"
expect "$b" "^for an unknown user \(expected to fail\)" "demo.c's last step"
b="$(block_with 'findity-demo http://')"
expect "$b" "^user token for E1234: " "the CMake-built findity-demo against the installed library"
b="$(block_with 'build/findity-token --user')"
expect "$b" '"subject":"org:my-client-id"' "curl with findity-token's token"
expect "$b" '^\{"access_token":"[^"]+","token_type":"Bearer","expires_in":[0-9]+' "findity-token --user E1234 --json"
b="$(block_with 'python3 quickstart.py')"
for want in "^requests: 200 " "^httpx: 200 .*user:E1234" "^asyncio: [0-9]+ chars; 200 " "^refused: AUTH "; do
    expect "$b" "$want" "the Python quick start"
done
b="$(block_with 'mono build/Program.exe')"
expect "$b" "organization token .{8}\.\.\. \([0-9]+ chars\)" "the C# quick start's organization token"
expect "$b" "^user token for E1234 " "the C# quick start's user token"
expect "$b" '^HttpClient: 200 .*"subject":"org:my-client-id"' "the C# quick start's HttpClient call"
expect "$b" "^refused: Auth 401 " "the C# quick start's refusal"
b="$(block_with 'mono build/Connector.exe')"
expect "$b" '"subject":"user:E1234"' "Connector.exe's user call"
expect "$b" '"subject":"org:my-client-id"' "Connector.exe's organization call"
b="$(block_with '_emulator/stats')"
expect "$b" '"fault":\{[^}]*"every":10' "the emulator section's per-request fault"
expect "$b" '"token_requests":0' "the emulator section's fresh emulator"
readelf -d build/findity-token | grep -E 'RUNPATH|RPATH' | grep -qF "[$ROOT/target/release]" \
    || fail "build/findity-token (make tools) is not linked to the release library"
grep -q 'failed: status 0' "$log" && fail "a call reported as failed succeeded (status 0)"
grep -qF 'my-secret' <(grep -v '^@@block' "$log") && fail "a quick start printed the client secret"

# ---- what the packages carry (the wheel and the nupkg the session built and installed)
# Every wheel there (make wheels builds one per platform): each carries both licence texts.
for wheel in build/wheelhouse/findity_auth-*.whl; do
python3 - "$wheel" <<'PY' || fail "the wheel $wheel lacks its licence"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
for f in ("LICENSE-MIT", "LICENSE-APACHE"):
    got = [n for n in names if n.endswith(".dist-info/licenses/" + f)]
    assert got, "no %s in the wheel's .dist-info/licenses" % f
    assert z.read(got[0]) == open(f, "rb").read(), "%s in the wheel differs from the repository's" % f
    assert "License-File: " + f in meta, "METADATA has no License-File: " + f
assert "License-Expression: MIT OR Apache-2.0" in meta, "METADATA has no License-Expression"
PY
done
nupkg="$(ls build/nuget/Findity.Auth.*.nupkg)"
python3 - "$nupkg" <<'PY' || fail "the nupkg lacks its licence"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
nuspec = z.read(next(n for n in z.namelist() if n.endswith(".nuspec"))).decode()
for f in ("LICENSE-MIT", "LICENSE-APACHE"):
    assert z.read(f) == open(f, "rb").read(), "%s in the nupkg differs from the repository's" % f
assert '<license type="expression">MIT OR Apache-2.0</license>' in nuspec, "no <license> in the nuspec"
assert "<licenseUrl>https://licenses.nuget.org/MIT%20OR%20Apache-2.0</licenseUrl>" in nuspec, "no <licenseUrl>"
assert "<readme>README.md</readme>" in nuspec and "README.md" in z.namelist(), "no readme"
PY
# The files the README has you save at the repository root are ignored by git; the rest goes to build/.
for f in "${saved[@]}"; do
    git check-ignore -q --no-index "$f" || fail ".gitignore does not list $f (the README has you save it at the root)"
done
echo "test-readme: $n_run README blocks ran as written against the emulator, $n_syntax checked for syntax; the wheel and the nupkg carry LICENSE-MIT and LICENSE-APACHE ($((SECONDS - t0)) s)"
