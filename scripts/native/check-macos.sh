#!/usr/bin/env bash
# make check-macos: `cargo check` of libfindity for both Apple architectures (aarch64-apple-darwin,
# x86_64-apple-darwin). No macOS SDK can be had here, so nothing is linked or run: Debian's rustc
# builds std's metadata (-Z build-std), ring's C goes through `zig cc -target <arch>-macos`, and
# the project's own code is type-checked against the libc crate's macOS definitions.
# Prints the project's errors (file:line and message) per architecture; fails if there are any.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/native/env.sh
need_native_tools >/dev/null || exit 1

WRAP="$NATIVE_CACHE/macos-cc"
mkdir -p "$WRAP"
for arch in aarch64 x86_64; do
    # cc-rs adds --target=arm64-apple-macosx..., a spelling zig rejects: drop it, zig gets -target.
    cat >"$WRAP/cc-$arch" <<SH
#!/bin/sh
for a in "\$@"; do shift; case "\$a" in --target=*) ;; *) set -- "\$@" "\$a" ;; esac; done
exec zig cc -target $arch-macos "\$@"
SH
    printf '#!/bin/sh\nexec zig ar "$@"\n' >"$WRAP/ar"
    chmod +x "$WRAP/cc-$arch" "$WRAP/ar"
done

export CARGO_TARGET_DIR="$NATIVE_TARGET"
status=0
for arch in aarch64 x86_64; do
    t="$arch-apple-darwin"
    v="$(echo "$t" | tr 'a-z-' 'A-Z_')"
    echo "=== check-macos: $t (cargo check, -Z build-std; nothing linked)"
    t0=$SECONDS
    log="$NATIVE_CACHE/check-$t.log"
    env "CC_${t//-/_}=$WRAP/cc-$arch" "AR_${t//-/_}=$WRAP/ar" "CARGO_TARGET_${v}_LINKER=$WRAP/cc-$arch" \
        RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 nice -n 15 "$DEB_CARGO" check --message-format short \
        -p findity --lib --target "$t" -Z build-std=std,panic_unwind >"$log" 2>&1
    rc=$?
    echo "native-time: check-macos-$t $((SECONDS - t0)) s"
    if [ "$rc" = 0 ]; then
        echo "check-macos: $t: ok (every dependency and the project's code type-check)"
    else
        status=1
        errs="$(grep -E '^(src|tests|emulator)/[^:]+:[0-9]+:[0-9]+: error' "$log" | sort -u)"
        if [ -n "$errs" ]; then
            echo "check-macos: $t: the project's code does not build for macOS ($(wc -l <<<"$errs") errors):"
            echo "$errs" | sed 's/^/  /'
        else
            echo "check-macos: $t: cargo check failed outside the project's code; the last lines of $log:"
            tail -20 "$log" | sed 's/^/  /'
        fi
    fi
done
if [ "$status" != 0 ]; then
    cat <<'TXT'
check-macos: what src/ needs for macOS (see issue 20):
  - libc::F_WRLCK / F_UNLCK are c_short (i16) on macOS and c_int on Linux; flock.l_type is
    c_short on both. Pass the lock kind as c_short: ofd_lock(f, kind: libc::c_short), callers
    ofd_lock(&f, libc::F_WRLCK as libc::c_short) / (libc::F_UNLCK as libc::c_short) (a cast to a
    type alias, so clippy's unnecessary_cast stays quiet on Linux), and fl.l_type = kind.
  - F_OFD_SETLK type-checks on macOS (the libc crate has xnu's value, 90), but Apple does not
    document open-file-description locks: on targets other than Linux, flock(2) on the lock file
    (LOCK_EX | LOCK_NB; owned by the open file description, dropped on close, like OFD locks)
    is the documented equivalent; keep F_OFD_SETLK behind cfg(target_os = "linux").
TXT
fi
exit $status
