#!/usr/bin/env bash
# The Java wrapper's tests (bindings/java), against the emulator, on the built jar.
#
#   FINDITY_EMULATOR=/abs/target/debug/findity-emulator bash scripts/test-java.sh [launcher args]
#
# Installs what a fresh machine lacks (JDK, Debian's libjna-java and junit5), compiles the JUnit 5
# suite against build/java/findity-auth-VERSION.jar (make java) and runs it with the console
# launcher; the suite's JVM loads libfindity from the jar (FINDITY_LIB unset), and LoadingTest
# starts child JVMs for the other loading cases. Then the README's quick start is compiled as
# written and run against a fresh emulator, once plainly and once with a 401 injected.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

export FINDITY_EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
[ -x "$FINDITY_EMULATOR" ] || { echo "test-java: $FINDITY_EMULATOR is missing; run: make build" >&2; exit 2; }
command -v javac >/dev/null || apt_install --no-install-recommends openjdk-17-jdk-headless
JNA=/usr/share/java/jna.jar
JUNIT=/usr/share/java/junit-platform-console-standalone.jar
[ -f "$JNA" ] || apt_install --no-install-recommends libjna-java
[ -f "$JUNIT" ] || apt_install --no-install-recommends junit5

VERSION="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)"
JAR="$ROOT/build/java/findity-auth-$VERSION.jar"
[ -f "$JAR" ] || { echo "test-java: $JAR is missing; run: make java" >&2; exit 2; }

T="$ROOT/build/java/test"
rm -rf "$T"
mkdir -p "$T/classes" "$T/nolib"
javac -Xlint:all -Werror -encoding UTF-8 -cp "$JAR:$JNA:$JUNIT" -d "$T/classes" bindings/java/src/test/java/com/findity/auth/*.java
# The same classes without the bundled library (LoadingTest's "nothing to load" case).
(cd "$T/nolib" && jar --extract --file "$JAR" && rm -rf linux-* win32-* darwin-*)

set +e
env -u FINDITY_LIB -u LD_LIBRARY_PATH -u FINDITY_SHARED_CACHE -u FINDITY_LOG \
    java -Dfindity.test.jar="$JAR" -Dfindity.test.nolib="$T/nolib" -Dfindity.test.classes="$T/classes" \
    -Dfindity.test.jna="$JNA" -Dfindity.test.lib="$ROOT/target/release/libfindity.so" \
    -jar "$JUNIT" --disable-banner --details=tree --fail-if-no-tests \
    --class-path "$T/classes:$JAR:$JNA" --scan-class-path "$T/classes" "$@"
status=$?
set -e
[ "$status" = 0 ] || exit "$status"

# ---- the README's quick start, as written, against a fresh emulator
Q="$T/quickstart"
mkdir -p "$Q"
awk '/^```java$/ { f = 1; next } f && /^```$/ { exit } f' bindings/java/README.md >"$Q/Quickstart.java"
grep -q "public class Quickstart" "$Q/Quickstart.java" || { echo "test-java: no Quickstart in bindings/java/README.md" >&2; exit 1; }
cp "$JAR" "$Q/"
(cd "$Q" && javac -cp "findity-auth-$VERSION.jar:$JNA" Quickstart.java)
QS_ID=quickstart-client
QS_SECRET="quickstart-secret-$RANDOM$RANDOM"
start_emulator --client "$QS_ID:$QS_SECRET"
emulator_stat() {
    curl -fsS "$EMULATOR_URL/_emulator/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
command -v curl >/dev/null || apt_install --no-install-recommends curl
quickstart() {
    echo "== bindings/java/README.md quick start ($1)"
    local out
    out="$(cd "$Q" && env -u FINDITY_LIB FINDITY_BASE_URL="$EMULATOR_URL" FINDITY_CLIENT_ID="$QS_ID" \
        FINDITY_CLIENT_SECRET="$QS_SECRET" java -cp "findity-auth-$VERSION.jar:$JNA:." Quickstart 2>&1)" \
        || { echo "$out"; echo "test-java: the quick start failed ($1)" >&2; return 1; }
    echo "$out" | sed 's/^/   /'
    grep -q "^/api/v1/expenses -> 200$" <<<"$out" && grep -q "^refused: HTTP 401$" <<<"$out" \
        || { echo "test-java: unexpected quick start output" >&2; return 1; }
    ! grep -qF "$QS_SECRET" <<<"$out" || { echo "test-java: the quick start printed the secret" >&2; return 1; }
}
quickstart plain
[ "$(emulator_stat api_requests)" = 1 ] || { echo "test-java: expected 1 API request" >&2; exit 1; }
curl -fsS -X POST "$EMULATOR_URL/_emulator/reset" >/dev/null
curl -fsS -X POST "$EMULATOR_URL/_emulator/fault?endpoint=api&kind=status:401" >/dev/null
quickstart "first API answer is a 401"
[ "$(emulator_stat faults_served)" = 1 ] && [ "$(emulator_stat api_requests)" = 2 ] \
    || { echo "test-java: expected the 401 to be served and the request resent once" >&2; exit 1; }
echo "test-java: ok"
