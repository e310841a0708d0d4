#!/usr/bin/env bash
# build/npm/findity-auth-VERSION.tgz: the Node.js package (bindings/node) with the release
# libfindity of this platform bundled in prebuilds/<platform>-<arch>/, made with `npm pack` from a
# staging copy (nothing is written into bindings/node). koffi is a dependency the registry serves
# when the tarball is installed. Needs target/release/libfindity.so (make release).
#
#   bash scripts/npm.sh          # prints the tarball's path as its last line
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh

command -v node >/dev/null && command -v npm >/dev/null || apt_install --no-install-recommends nodejs npm
VERSION="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)"
PKG_VERSION="$(node -p 'require("./bindings/node/package.json").version')"
[ "$VERSION" = "$PKG_VERSION" ] || { echo "npm: bindings/node/package.json says $PKG_VERSION, Cargo.toml $VERSION" >&2; exit 1; }

LIB=target/release/libfindity.so
[ -f "$LIB" ] || { echo "npm: $LIB is missing; run: make release" >&2; exit 2; }
PLATFORM="$(node -p 'process.platform + "-" + process.arch')"

OUT="$ROOT/build/npm"
STAGE="$OUT/stage/findity-auth"
rm -rf "$OUT/stage" "$OUT/findity-auth-$VERSION.tgz"
mkdir -p "$STAGE/prebuilds/$PLATFORM"
cp -r bindings/node/package.json bindings/node/index.d.ts bindings/node/README.md bindings/node/lib "$STAGE/"
cp "$LIB" "$STAGE/prebuilds/$PLATFORM/libfindity.so"
(cd "$STAGE" && npm pack --silent --pack-destination "$OUT" >/dev/null)
rm -rf "$OUT/stage"
TGZ="$OUT/findity-auth-$VERSION.tgz"
[ -f "$TGZ" ] || { echo "npm: npm pack did not write $TGZ" >&2; exit 1; }
echo "npm: $TGZ ($(du -k "$TGZ" | cut -f1) KiB, libfindity for $PLATFORM inside)"
echo "$TGZ"
