#!/usr/bin/env bash
# make native: the release libfindity and findity-token for every Linux a connector runs on, into
# build/native/<rid>/ (rids named as .NET names runtimes):
#
#   linux-x64        x86_64, glibc >= 2.17 (manylinux2014): cargo-zigbuild, rustup's toolchain
#   linux-arm64      aarch64, glibc >= 2.17: cargo-zigbuild + Debian's rustc with -Z build-std
#   linux-musl-x64   x86_64 musl (Alpine): Debian's rustc with -Z build-std, crt-static off
#                    (a cdylib cannot be a static executable), linked by zig
#
# Each directory: libfindity.so, libfindity.so.MAJOR -> libfindity.so (the soname, which programs
# linked with -lfindity record), findity.h, findity-token (RUNPATH $ORIGIN) and SHA256SUMS.
# The glibc ones are checked with objdump -T: no GLIBC_ symbol version above 2.17, or it fails.
#
#   bash scripts/native/build.sh [rid...]        (default: linux-x64 linux-arm64 linux-musl-x64)
#
# Toolchains and the cargo target directory live under $FINDITY_NATIVE_CACHE (scripts/native/env.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/native/env.sh

RIDS=("$@")
[ ${#RIDS[@]} -gt 0 ] || RIDS=(linux-x64 linux-arm64 linux-musl-x64)
ntime tools need_native_tools

VERSION="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)"
SONAME="libfindity.so.${VERSION%%.*}"
MAX_GLIBC=2.17
export CARGO_TARGET_DIR="$NATIVE_TARGET"

# cargo for a target rustup has no std for: Debian's rustc/cargo, std built from rust-web-src (niced).
deb_cargo() {
    nice -n 15 env RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 RUSTDOC=/usr/bin/rustdoc "$DEB_CARGO" "$@"
}
BUILD_STD=(-Z build-std=std,panic_unwind)

# build_lib RID: the release cdylib; prints its path.
build_lib() {
    local rid=$1 t
    t="$(rust_target "$rid")"
    case "$rid" in
        linux-x64)
            # rustup's x86_64 std is built for glibc 2.17; zig links against 2.17's symbols.
            nice -n 15 cargo zigbuild --release -p findity --lib --target "$t.$MAX_GLIBC" >&2 || return 1 ;;
        linux-arm64)
            deb_cargo zigbuild --release -p findity --lib --target "$t.$MAX_GLIBC" "${BUILD_STD[@]}" >&2 || return 1 ;;
        linux-musl-x64 | linux-musl-arm64)
            local var
            var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
            (export "$var=-C target-feature=-crt-static"
             deb_cargo zigbuild --release -p findity --lib --target "$t" "${BUILD_STD[@]}" >&2) || return 1 ;;
    esac
    echo "$NATIVE_TARGET/$t/release/libfindity.so"
}

# zig cc for RID's C programs (glibc 2.17 for the gnu ones; musl ones link dynamically).
zig_target() {
    case "$1" in
        linux-x64) echo "x86_64-linux-gnu.$MAX_GLIBC" ;;
        linux-arm64) echo "aarch64-linux-gnu.$MAX_GLIBC" ;;
        linux-musl-x64) echo x86_64-linux-musl ;;
        linux-musl-arm64) echo aarch64-linux-musl ;;
    esac
}

objdump_for() {
    case "$1" in
        *arm64) echo aarch64-linux-gnu-objdump ;;
        *) echo objdump ;;
    esac
}

# check_glibc RID FILE...: no GLIBC_x.y symbol version above 2.17.
check_glibc() {
    local rid=$1 f top
    shift
    for f in "$@"; do
        top="$("$(objdump_for "$rid")" -T "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
        if [ -z "$top" ]; then
            echo "native: $rid/$(basename "$f"): objdump -T shows no GLIBC_ version at all" >&2; return 1
        fi
        if [ "$(printf '%s\n%s\n' "$top" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
            echo "native: $rid/$(basename "$f") needs GLIBC_$top, above $MAX_GLIBC:" >&2
            "$(objdump_for "$rid")" -T "$f" | grep -E "GLIBC_$top" >&2
            return 1
        fi
        echo "native: $rid/$(basename "$f"): highest symbol version GLIBC_$top (<= $MAX_GLIBC): ok"
    done
}

for rid in "${RIDS[@]}"; do
    echo "=== native: $rid ($(rust_target "$rid"))"
    t0=$SECONDS
    lib="$(ntime "$rid-lib" build_lib "$rid")"
    out="$NATIVE_OUT/$rid"
    rm -rf "$out"
    mkdir -p "$out"
    install -m 0755 "$lib" "$out/libfindity.so"
    ln -s libfindity.so "$out/$SONAME"
    install -m 0644 include/findity.h "$out/findity.h"
    # findity-token finds libfindity.so.MAJOR beside itself ($ORIGIN) or through the usual paths.
    # glibc 2.17 has no explicit_bzero (2.25): the gnu builds link scripts/native/compat's.
    compat=()
    case "$rid" in linux-x64 | linux-arm64) compat=(scripts/native/compat/explicit_bzero.c) ;; esac
    nice -n 15 zig cc -target "$(zig_target "$rid")" -std=c11 -O2 -Wall -Wextra -Werror -pthread \
        -I"$out" tools/findity-token.c "${compat[@]}" -L"$out" -lfindity '-Wl,-rpath,$ORIGIN' -s \
        -o "$out/findity-token"
    case "$rid" in
        linux-musl-*)
            # zig's musl stub is named libc.so; Alpine's libc is libc.musl-<arch>.so.1, the name
            # auditwheel's musllinux policy allows (musl's loader takes any libc.* for itself).
            local_arch="$(rust_target "$rid" | cut -d- -f1)"
            for f in "$out/libfindity.so" "$out/findity-token"; do
                patchelf --replace-needed libc.so "libc.musl-$local_arch.so.1" "$f"
            done ;;
    esac
    case "$rid" in
        linux-x64 | linux-arm64) check_glibc "$rid" "$out/libfindity.so" "$out/findity-token" ;;
        *) echo "native: $rid needs: $(readelf -d "$out/libfindity.so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')" ;;
    esac
    (cd "$out" && sha256sum libfindity.so findity.h findity-token > SHA256SUMS)
    echo "native: $rid: $(du -k "$out/libfindity.so" | cut -f1) KiB libfindity.so, $(du -k "$out/findity-token" | cut -f1) KiB findity-token ($((SECONDS - t0)) s)"
done
