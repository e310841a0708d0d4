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
