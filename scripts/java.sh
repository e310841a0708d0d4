#!/usr/bin/env bash
# build/java/findity-auth-VERSION.jar (+ findity-auth-VERSION.pom and pom.xml next to it): the Java
# wrapper (bindings/java) compiled with javac/jar, no Maven. Classes are Java 8 bytecode
# (--release 8) except FindityHttp (--release 11, java.net.http); the release libfindity of this
# platform is bundled at JNA's resource path (linux-x86-64/libfindity.so, ...). JNA comes from
# Debian (libjna-java), installed when missing. Needs target/release/libfindity.so (make release).
#
#   bash scripts/java.sh          # prints the jar's path as its last line
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

JNA_JAR=/usr/share/java/jna.jar
java_env() {
    command -v javac >/dev/null && command -v jar >/dev/null || apt_install --no-install-recommends openjdk-17-jdk-headless
    [ -f "$JNA_JAR" ] || apt_install --no-install-recommends libjna-java
}
java_env

VERSION="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)"
POM_VERSION="$(sed -n 's:^  <version>\(.*\)</version>$:\1:p' bindings/java/pom.xml | head -1)"
[ "$VERSION" = "$POM_VERSION" ] || { echo "java: bindings/java/pom.xml says $POM_VERSION, Cargo.toml $VERSION" >&2; exit 1; }

LIB=target/release/libfindity.so
[ -f "$LIB" ] || { echo "java: $LIB is missing; run: make release" >&2; exit 2; }
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) PREFIX=linux-x86-64 ;;
    Linux-aarch64) PREFIX=linux-aarch64 ;;
    *) echo "java: no JNA resource prefix known for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac

OUT=build/java
STAGE="$OUT/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/classes/$PREFIX" "$STAGE/classes/META-INF/maven/com.findity/findity-auth"
SRC=bindings/java/src/main/java/com/findity/auth
JAVA8=()
for f in "$SRC"/*.java; do [ "$(basename "$f")" = FindityHttp.java ] || JAVA8+=("$f"); done
javac -nowarn -Xlint:all,-options -Werror --release 8 -encoding UTF-8 -cp "$JNA_JAR" -d "$STAGE/classes" "${JAVA8[@]}"
javac -Xlint:all -Werror --release 11 -encoding UTF-8 -cp "$JNA_JAR:$STAGE/classes" -d "$STAGE/classes" "$SRC/FindityHttp.java"
cp "$LIB" "$STAGE/classes/$PREFIX/libfindity.so"
cp bindings/java/pom.xml "$STAGE/classes/META-INF/maven/com.findity/findity-auth/pom.xml"
printf 'groupId=com.findity\nartifactId=findity-auth\nversion=%s\n' "$VERSION" \
    >"$STAGE/classes/META-INF/maven/com.findity/findity-auth/pom.properties"
cat >"$STAGE/MANIFEST.MF" <<MF
Automatic-Module-Name: com.findity.auth
Implementation-Title: findity-auth
Implementation-Version: $VERSION
Implementation-Vendor: Findity
MF
JAR="$OUT/findity-auth-$VERSION.jar"
rm -f "$JAR"
jar --create --file "$JAR" --manifest "$STAGE/MANIFEST.MF" -C "$STAGE/classes" .
cp bindings/java/pom.xml "$OUT/findity-auth-$VERSION.pom"
cp bindings/java/pom.xml "$OUT/pom.xml"
rm -rf "$STAGE"
echo "java: $JAR ($(du -k "$JAR" | cut -f1) KiB, libfindity for $PREFIX inside) and $OUT/pom.xml"
echo "$JAR"
