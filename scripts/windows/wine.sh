# Sourced by scripts/windows/test.sh: the Wine prefixes the tests run in, under build/wine/<rid>
# (WINEPREFIX), made on first use and reused. Each gets the TEST-ONLY bcryptprimitives.dll
# stand-in (scripts/windows/c/bcryptprimitives.c) in its system directory: Wine 8 lacks the DLL
# that Rust's std imports ProcessPrng from. It is never copied anywhere else, never shipped.
#
#   wine_prefix RID     sets WINEPREFIX and WINE for RID; 1 when Wine for RID is missing
#   wine_run CMD...     runs a Windows program under $WINE (quiet, no desktop, no Mono/Gecko)

export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY=

wine_prefix() {
    local rid=$1 sys gcc
    WINE="$(wine_for "$rid")"
    [ -n "$WINE" ] || return 1
    export WINEPREFIX="$ROOT/build/wine/$rid"
    case "$rid" in
        win-x64) export WINEARCH=win64; sys=system32 ;;
        win-x86) export WINEARCH=win32; sys=system32 ;;
    esac
    gcc="$(win_triple "$rid")-gcc"
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        echo "wine: making the prefix $WINEPREFIX ($WINEARCH)"
        mkdir -p "$WINEPREFIX"
        local t0=$SECONDS
        "$WINE" wineboot -i >/dev/null 2>&1 || true
        /usr/lib/wine/wineserver -w 2>/dev/null || true
        [ -f "$WINEPREFIX/system.reg" ] || { echo "wine: wineboot did not make $WINEPREFIX" >&2; return 1; }
        echo "native-time: wine-prefix-$rid $((SECONDS - t0)) s" >&2
    fi
    local stand_in="$WINEPREFIX/drive_c/windows/$sys/bcryptprimitives.dll"
    if [ ! -f "$stand_in" ] || [ "$ROOT/scripts/windows/c/bcryptprimitives.c" -nt "$stand_in" ]; then
        "$gcc" -O2 -shared -s -o "$stand_in" "$ROOT/scripts/windows/c/bcryptprimitives.c" \
            "$ROOT/scripts/windows/c/bcryptprimitives.def" -ladvapi32 \
            || { echo "wine: cannot build the bcryptprimitives.dll stand-in" >&2; return 1; }
        echo "wine: TEST-ONLY bcryptprimitives.dll stand-in in $stand_in (never shipped)"
    fi
}

wine_run() {
    "$WINE" "$@"
}
