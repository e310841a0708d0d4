#!/usr/bin/env bash
# make native (Windows part): findity.dll for Windows x64 and x86 (issue 21), into
# build/native/<rid>/ (rids named as .NET names runtimes):
#
#   win-x64   x86_64-pc-windows-gnu   mingw-w64 (gcc-mingw-w64-x86-64)
#   win-x86   i686-pc-windows-gnu     mingw-w64 (gcc-mingw-w64-i686): .NET Framework "Prefer
#                                     32-bit" applications run as 32-bit processes
#
# Debian's rustc/cargo with -Z build-std (rustup's toolchain has no Windows std). Each directory:
#   findity.dll        the library (imports only system DLLs and msvcrt; checked)
#   libfindity.dll.a   its import library for mingw (gcc ... -L. -lfindity)
#   findity.def        its exports, for MSVC:  lib /def:findity.def /machine:x64 /out:findity.lib
#   findity.h          the header
#   findity-token.exe  the CLI, built with mingw against findity.dll
#   SHA256SUMS
# Unsigned: scripts/windows/sign.sh shows the Authenticode step (osslsigncode).
#
#   bash scripts/windows/build.sh [rid...]        (default: win-x64 win-x86)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/windows/env.sh

RIDS=("$@")
[ ${#RIDS[@]} -gt 0 ] || read -r -a RIDS <<<"$WIN_RIDS_ALL"
ntime windows-tools need_windows_tools

# What a Windows build of findity.dll / findity-token.exe may import: Windows' own DLLs and
# msvcrt (present on every Windows since XP). Anything else (libgcc_s_*, libwinpthread-1) fails.
SYSTEM_DLLS='^(kernel32|msvcrt|advapi32|bcrypt|bcryptprimitives|crypt32|ntdll|ws2_32|userenv|secur32|ncrypt|user32|shell32|ole32|oleaut32|api-ms-win-[a-z0-9-]+|findity)\.dll$'

check_imports() {  # check_imports RID FILE...
    local rid=$1 f bad
    shift
    for f in "$@"; do
        bad="$("$(win_triple "$rid")-objdump" -p "$f" | sed -n 's/^\s*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u | grep -Ev "$SYSTEM_DLLS" || true)"
        if [ -n "$bad" ]; then
            echo "windows: $rid/$(basename "$f") imports DLLs that Windows does not have: $bad" >&2
            return 1
        fi
        echo "windows: $rid/$(basename "$f") imports $("$(win_triple "$rid")-objdump" -p "$f" | sed -n 's/^\s*DLL Name: //p' | sort -uf | tr '\n' ' ')"
    done
}

for rid in "${RIDS[@]}"; do
    t="$(win_target "$rid")"
    echo "=== windows: $rid ($t)"
    t0=$SECONDS
    if ! ntime "$rid-lib" win_cargo rustc --release -p findity --lib --crate-type cdylib --target "$t" "${WIN_BUILD_STD[@]}"; then
        if [ "$rid" = win-x86 ]; then
            echo "windows: the 32-bit build failed (see above); win-x86 is not built" >&2
            continue
        fi
        exit 1
    fi
    rel="$NATIVE_TARGET/$t/release"
    out="$NATIVE_OUT/$rid"
    rm -rf "$out"
    mkdir -p "$out"
    install -m 0755 "$rel/findity.dll" "$out/findity.dll"
    install -m 0644 "$rel/libfindity.dll.a" "$out/libfindity.dll.a"
    install -m 0644 include/findity.h "$out/findity.h"
    # findity.def from the DLL's export table (what MSVC's lib /def needs to make findity.lib).
    {
        echo "LIBRARY findity.dll"
        echo "EXPORTS"
        "$(win_triple "$rid")-objdump" -p "$out/findity.dll" \
            | sed -n '/^\[Ordinal\/Name Pointer\] Table/,/^$/p' | sed -n 's/^\s*\[ *[0-9]*\] \(findity_[a-z_0-9]*\)$/    \1/p'
    } >"$out/findity.def"
    n="$(grep -c '^    findity_' "$out/findity.def")"
    want="$(grep -Eo '[ *]findity_[a-z_0-9]+\(' include/findity.h | sort -u | wc -l)"
    [ "$n" = "$want" ] || { echo "windows: $rid: findity.def has $n exports, findity.h declares $want functions" >&2; exit 1; }
    nice -n 15 "$(win_triple "$rid")-gcc" -std=c11 -O2 -Wall -Wextra -Werror -I"$out" tools/findity-token.c \
        -L"$out" -lfindity -s -o "$out/findity-token.exe"
    check_imports "$rid" "$out/findity.dll" "$out/findity-token.exe"
    (cd "$out" && sha256sum findity.dll libfindity.dll.a findity.def findity.h findity-token.exe > SHA256SUMS)
    echo "windows: $rid: $(du -k "$out/findity.dll" | cut -f1) KiB findity.dll ($n exports), $(du -k "$out/findity-token.exe" | cut -f1) KiB findity-token.exe ($((SECONDS - t0)) s)"
done
