# Sourced by scripts/windows/*.sh: Windows builds (mingw-w64, Debian's rustc with -Z build-std) and
# their runs under Wine. Reuses scripts/native/env.sh (cache directory, ntime, need_debian_packages).
#
# Outside the clone, under $FINDITY_NATIVE_CACHE (default /var/cache/findity-native):
#   target/                      CARGO_TARGET_DIR, shared with the Linux cross builds
# Inside the clone (build/, ignored):
#   build/wine/<arch>/           the Wine prefixes (WINEPREFIX), made on first use, with the
#                                test-only bcryptprimitives.dll stand-in in system32 (never shipped)
# Debian packages installed when missing: gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64
# gcc-mingw-w64-i686 wine64 osslsigncode; wine32 (i386 multiarch) for the 32-bit runs, if it installs.

source "$ROOT/scripts/native/env.sh"

WIN_RIDS_ALL="win-x64 win-x86"
WINE64=/usr/lib/wine/wine64
WINE32=/usr/lib/wine/wine

win_target() {
    case "$1" in
        win-x64) echo x86_64-pc-windows-gnu ;;
        win-x86) echo i686-pc-windows-gnu ;;
        *) echo "unknown Windows rid $1" >&2; return 1 ;;
    esac
}
win_triple() {  # the mingw-w64 prefix of the rid's C tools
    case "$1" in
        win-x64) echo x86_64-w64-mingw32 ;;
        win-x86) echo i686-w64-mingw32 ;;
    esac
}
wine_for() {  # the Wine loader of the rid, or nothing when it is not installed
    case "$1" in
        win-x64) [ -x "$WINE64" ] && echo "$WINE64" ;;
        win-x86) [ -x "$WINE32" ] && [ -e /usr/lib/i386-linux-gnu/wine/i386-windows/kernel32.dll ] && echo "$WINE32" ;;
    esac
    return 0
}

need_windows_tools() {
    need_c_compiler
    need_debian_packages rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 \
        gcc-mingw-w64-i686 wine64 osslsigncode
    [ -d /usr/lib/rustlib/src/rust/library ] || { echo "windows: rust-web-src did not install std's source" >&2; return 1; }
}

# wine32 needs Debian's i386 architecture (multiarch). Tried once per machine; a failure only
# means the 32-bit build is not run (the tests say so).
need_wine32() {
    [ -n "$(wine_for win-x86)" ] && return 0
    [ -e "$NATIVE_CACHE/wine32-failed" ] && return 1
    echo "windows: installing wine32 (adds the i386 architecture to dpkg)"
    if ! dpkg --print-foreign-architectures | grep -qx i386; then
        as_root dpkg --add-architecture i386
        apt_updated=
    fi
    if apt_install --no-install-recommends wine32:i386 && [ -n "$(wine_for win-x86)" ]; then
        return 0
    fi
    echo "windows: wine32 did not install: the 32-bit build is compiled, not run" >&2
    touch "$NATIVE_CACHE/wine32-failed"
    return 1
}

# i686-pc-windows-gnu links rsbegin.o/rsend.o (frame registration for DWARF unwinding) from the
# sysroot, which -Z build-std does not provide: built here from rust-web-src's
# library/rtstartup and found through -L (rustc looks for them in its search paths too).
RTSTARTUP_I686="$NATIVE_CACHE/rtstartup/i686-pc-windows-gnu"
need_rtstartup() {
    local f
    mkdir -p "$RTSTARTUP_I686"
    for f in rsbegin rsend; do
        [ -f "$RTSTARTUP_I686/$f.o" ] && continue
        RUSTC_BOOTSTRAP=1 "$DEB_RUSTC" --target i686-pc-windows-gnu --emit=obj -C panic=abort -C opt-level=3 \
            -o "$RTSTARTUP_I686/$f.o" "/usr/lib/rustlib/src/rust/library/rtstartup/$f.rs" || return 1
    done
}

# Debian's cargo with std built for the target (niced); rustup's has no Windows std.
win_cargo() {
    need_rtstartup || { echo "windows: cannot build rsbegin.o/rsend.o for i686" >&2; return 1; }
    nice -n 15 env RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 RUSTDOC=/usr/bin/rustdoc \
        CARGO_TARGET_I686_PC_WINDOWS_GNU_RUSTFLAGS="-L $RTSTARTUP_I686" \
        CARGO_TARGET_DIR="$NATIVE_TARGET" \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
        CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar \
        CARGO_TARGET_I686_PC_WINDOWS_GNU_LINKER=i686-w64-mingw32-gcc \
        CC_i686_pc_windows_gnu=i686-w64-mingw32-gcc AR_i686_pc_windows_gnu=i686-w64-mingw32-ar \
        "$DEB_CARGO" "$@"
}
WIN_BUILD_STD=(-Z build-std=std,panic_unwind)
