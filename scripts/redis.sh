#!/usr/bin/env bash
# scripts/redis.sh COMMAND...: run COMMAND with a real redis-server on a free loopback port.
# Installs Debian's redis-server when missing; persistence off (--save '' --appendonly no);
# exports FINDITY_TEST_REDIS_URL (redis://127.0.0.1:PORT/0) and FINDITY_TEST_REDIS_SERVER (the
# binary, for tests that stop and start a server of their own); stops the server afterwards,
# whatever COMMAND did. Exits with COMMAND's status.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server (Debian package)"
    apt_install --no-install-recommends redis-server || { echo "cannot install redis-server" >&2; exit 1; }
    # The package starts a system-wide server on 6379 where there is an init system; ours is apart.
fi
bin=$(command -v redis-server)
port=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --logfile '' --loglevel warning >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "redis-server did not start on port $port" >&2; exit 1; }
echo "redis-server $("$bin" --version | awk '{print $3}') on 127.0.0.1:$port (pid $pid)"
export FINDITY_TEST_REDIS_URL="redis://127.0.0.1:$port/0" FINDITY_TEST_REDIS_SERVER="$bin"
"$@"
