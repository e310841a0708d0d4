# Sourced by scripts/native/*.sh: where the cross toolchains and caches live, and how to get them.
#
# Everything lives OUTSIDE the clone, under $FINDITY_NATIVE_CACHE (default
# /var/cache/findity-native), so a second run on the same machine (CI runs on the submitting
# machine) reuses it:
#   venv-zig/           python venv with `ziglang` (PyPI); bin/zig links to its zig
#   tools/bin/          cargo-zigbuild (crates.io, built with rustup's cargo)
#   target/             CARGO_TARGET_DIR of every cross build (std built by -Z build-std included)
#   bullseye/           the Debian 11 chroot (scripts/native/chroot.sh)
# Debian packages (rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# qemu-user musl-tools debootstrap) are installed when missing. rustup's toolchain stays the
# default; Debian's rustc/cargo (which can build std for any target) are used by explicit path.

source "$ROOT/scripts/common.sh"

NATIVE_CACHE="${FINDITY_NATIVE_CACHE:-/var/cache/findity-native}"
NATIVE_TARGET="$NATIVE_CACHE/target"
NATIVE_OUT="$ROOT/build/native"
ZIGLANG_VERSION="${ZIGLANG_VERSION:-0.13.0.post1}"
CARGO_ZIGBUILD_VERSION="${CARGO_ZIGBUILD_VERSION:-}"
DEB_RUSTC=/usr/bin/rustc
DEB_CARGO=/usr/bin/cargo
mkdir -p "$NATIVE_CACHE"

# rid -> Rust target, and how it is built.
rust_target() {
    case "$1" in
        linux-x64) echo x86_64-unknown-linux-gnu ;;
        linux-arm64) echo aarch64-unknown-linux-gnu ;;
        linux-musl-x64) echo x86_64-unknown-linux-musl ;;
        linux-musl-arm64) echo aarch64-unknown-linux-musl ;;
        *) echo "unknown rid $1" >&2; return 1 ;;
    esac
}

# ntime LABEL CMD...: run CMD, print how long it took (for the README's table).
ntime() {
    local label=$1 t0=$SECONDS rc=0
    shift
    "$@" || rc=$?
    echo "native-time: $label $((SECONDS - t0)) s (exit $rc)" >&2
    return $rc
}

need_debian_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "native: installing Debian packages: ${missing[*]}"
        apt_install --no-install-recommends "${missing[@]}"
    fi
}

# The cross toolchains: Debian's rustc/cargo + std source, the ARM64 and musl C toolchains,
# qemu-user, zig (PyPI) and cargo-zigbuild (crates.io). Idempotent, quick when all is there.
need_native_tools() {
    need_c_compiler
    need_debian_packages rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        qemu-user musl-tools musl-dev binutils patchelf python3-venv
    [ -x "$DEB_RUSTC" ] && [ -x "$DEB_CARGO" ] || { echo "native: $DEB_RUSTC / $DEB_CARGO missing after install" >&2; return 1; }
    [ -d /usr/lib/rustlib/src/rust/library ] || { echo "native: rust-web-src did not install std's source" >&2; return 1; }
    if [ ! -x "$NATIVE_CACHE/venv-zig/bin/zig" ]; then
        echo "native: installing ziglang $ZIGLANG_VERSION (PyPI) into $NATIVE_CACHE/venv-zig"
        rm -rf "$NATIVE_CACHE/venv-zig"
        python3 -m venv "$NATIVE_CACHE/venv-zig"
        "$NATIVE_CACHE/venv-zig/bin/python" -m pip install -q "ziglang==$ZIGLANG_VERSION"
        ln -sfn "$("$NATIVE_CACHE/venv-zig/bin/python" -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')" \
            "$NATIVE_CACHE/venv-zig/bin/zig"
    fi
    if [ ! -x "$NATIVE_CACHE/tools/bin/cargo-zigbuild" ]; then
        echo "native: installing cargo-zigbuild (crates.io) into $NATIVE_CACHE/tools with rustup's cargo"
        nice -n 15 cargo install --locked --root "$NATIVE_CACHE/tools" cargo-zigbuild ${CARGO_ZIGBUILD_VERSION:+--version "$CARGO_ZIGBUILD_VERSION"}
    fi
    export PATH="$NATIVE_CACHE/tools/bin:$NATIVE_CACHE/venv-zig/bin:$PATH"
}
