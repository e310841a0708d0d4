#!/usr/bin/env bash
# bench/store.sh (make bench-store): the shared cache's figures, across real processes, written
# to the "Shared cache" section of BENCHMARKS.md (replaced on each run). Release library and
# findity-token; the debug emulator (request counts do not depend on its speed); redis-server
# from Debian's packages (installed when missing), on a free loopback port, no persistence.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
need_c_compiler
command -v redis-server >/dev/null || apt_install --no-install-recommends redis-server
command -v curl >/dev/null || apt_install --no-install-recommends curl

SECS=${SECS:-20}
echo "== builds"
cargo build --quiet --release -p findity
cargo build --quiet -p findity-emulator
REL=target/release
mkdir -p build/bench
gcc -O2 -std=c11 -pthread -Iinclude tools/findity-token.c -L$REL -lfindity -Wl,-rpath,$PWD/$REL -o build/bench/findity-token
gcc -O2 -pthread -Iinclude bench/bench_store.c -L$REL -lfindity -Wl,-rpath,$PWD/$REL -o build/bench/bench_store
TOK=build/bench/findity-token
B=build/bench/bench_store
ID=bench-client
SECRET=bench-secret-0123456789
WORK=$(mktemp -d /tmp/findity-bench-store.XXXXXX)
PIDS=()
trap 'kill ${PIDS[*]} 2>/dev/null || true; rm -rf "$WORK"' EXIT

emu() { # emu VAR [options]: a fresh emulator; URL in VAR
    local var=$1 f
    shift
    f=$(mktemp "$WORK/url.XXXXXX")
    target/debug/findity-emulator --port 0 --quiet --url-file "$f" --client $ID:$SECRET "$@" >/dev/null &
    PIDS+=($!)
    for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.05; done
    printf -v "$var" '%s' "$(cat "$f")"
}
stat() { curl -s "$1/_emulator/stats" | python3 -c "import json, sys; d = json.load(sys.stdin); print($2)"; }
REQS='d["token_requests"] + d["authorization_grant"]'
free_port() { python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
REDIS_PORT=$(free_port)
redis_start() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --logfile '' >/dev/null 2>&1 &
    REDIS_PID=$!
    PIDS+=($REDIS_PID)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break; sleep 0.05; done
}
redis_stop() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; }
REDIS=redis://127.0.0.1:$REDIS_PORT
redis_start
sumf() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) s += kv[2] } } END { print s + 0 }'; }
maxf() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k && kv[2] > m) m = kv[2] } } END { print m + 0 }'; }
declare -A R

echo "== 1. 20 sequential findity-token runs"
emu U
export XDG_CACHE_HOME=$WORK/xdg1
for _ in $(seq 20); do FINDITY_CLIENT_SECRET=$SECRET $TOK --env "$U" --client-id $ID >/dev/null; done
R[seq]=$(stat "$U" "$REQS")
FINDITY_CLIENT_SECRET=$SECRET $TOK --env "$U" --client-id $ID --no-cache >/dev/null
R[seq_nocache]=$(($(stat "$U" "$REQS") - R[seq]))
echo "   ${R[seq]} token request(s); --no-cache: ${R[seq_nocache]}"

echo "== 2. 16 findity-token processes, one user token, at once"
emu U
export XDG_CACHE_HOME=$WORK/xdg2
pids=()
for _ in $(seq 16); do FINDITY_CLIENT_SECRET=$SECRET $TOK --env "$U" --client-id $ID --user E1 >/dev/null & pids+=($!); done
wait "${pids[@]}"
R[sixteen]=$(stat "$U" "$REQS")
echo "   ${R[sixteen]} requests (client_credentials + authorization grant + code)"
unset XDG_CACHE_HOME

load() { # load NAME STORE SECS [during-cmd]: 8 processes x 4 threads, user token E2, 4 s tokens
    local name=$1 store=$2 secs=$3 during=${4:-}
    emu U --lifetime 4
    local pids=()
    for i in $(seq 8); do $B load "$U" $ID $SECRET "$store" E2 4 "$secs" 5000 >"$WORK/$name.$i" & pids+=($!); done
    [ -z "$during" ] || eval "$during"
    wait "${pids[@]}"
    cat "$WORK/$name".* >"$WORK/$name.all"
    R[${name}_req]=$(stat "$U" "$REQS")
    R[${name}_reuse]=$(stat "$U" 'd["refresh_reuse"] + d["code_reuse"]')
    R[${name}_ok]=$(sumf ok <"$WORK/$name.all")
    R[${name}_fail]=$(sumf fail <"$WORK/$name.all")
    R[${name}_hits]=$(sumf store_hits <"$WORK/$name.all")
    R[${name}_writes]=$(sumf store_writes <"$WORK/$name.all")
    R[${name}_errors]=$(sumf store_errors <"$WORK/$name.all")
    R[${name}_slow]=$(maxf slowest_ms <"$WORK/$name.all")
    # Renewals the fleet needs: the first user token (3 requests), then one per refresh window
    # (a 4 s token is stale after 2 s).
    R[${name}_bound]=$((3 + secs / 2))
    echo "   $name: ${R[${name}_req]} requests (bound ${R[${name}_bound]}), reuse ${R[${name}_reuse]}, calls ${R[${name}_ok]} ok / ${R[${name}_fail]} failed, store hits ${R[${name}_hits]}, writes ${R[${name}_writes]}, errors ${R[${name}_errors]}, slowest ${R[${name}_slow]} ms"
}
echo "== 3. 8 processes x 4 threads, ${SECS} s, 4 s tokens"
load file "file:$WORK/load-file" "$SECS"
load redis "$REDIS/1" "$SECS"
echo "== 4. Redis stopped mid-run (at 1/3, started again empty at 2/3)"
load redisstop "$REDIS/2" "$SECS" "sleep $((SECS / 3)); redis_stop; sleep $((SECS / 3)); redis_start"

echo "== 5. lock holder killed with SIGKILL mid-request"
emu U --latency-ms 3000
$B load "$U" $ID $SECRET "file:$WORK/kill" - 1 0 20000 >/dev/null &
holder=$!
while [ "$(stat "$U" 'd["in_flight"]')" = 0 ]; do sleep 0.01; done
kill -9 $holder
wait $holder 2>/dev/null || true
curl -s -X POST -d latency_ms=0 "$U/_emulator/config" >/dev/null
t0=$(date +%s%N)
pids=()
for i in $(seq 4); do $B load "$U" $ID $SECRET "file:$WORK/kill" - 1 0 3000 >"$WORK/kill.$i" & pids+=($!); done
wait "${pids[@]}"
R[kill_ms]=$((($(date +%s%N) - t0) / 1000000))
R[kill_ok]=$(cat "$WORK"/kill.* | sumf ok)
R[kill_fail]=$(cat "$WORK"/kill.* | sumf fail)
echo "   4 processes after the kill: ${R[kill_ok]} ok, ${R[kill_fail]} failed, all done in ${R[kill_ms]} ms (timeout_ms 3000); no clean-up"

echo "== 6. token served from the store (cache cleared before each call), and the cache hit"
emu U
$B load "$U" $ID $SECRET "file:$WORK/served" - 1 0 5000 >/dev/null
$B load "$U" $ID $SECRET "$REDIS/3" - 1 0 5000 >/dev/null
R[served_file]=$($B served "$U" $ID $SECRET "file:$WORK/served" 2000)
R[served_redis]=$($B served "$U" $ID $SECRET "$REDIS/3" 2000)
R[hit_plain]=$($B served "$U" $ID $SECRET "" 3 | sed 's/.*hit_ns=//')
echo "   file: ${R[served_file]}"
echo "   redis: ${R[served_redis]}"
echo "   cache hit without a store: ${R[hit_plain]} ns"
v() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

section=$WORK/section.md
cat >"$section" <<EOT
## Shared cache (option shared_cache)

Measured by \`bench/store.sh\` (\`make bench-store\`, SECS=$SECS) on $(nproc) cores, $(date -u +%Y-%m-%d): release
libfindity and findity-token, the emulator, redis-server $(redis-server --version | awk '{print $3}' | tr -d v=) on loopback.
Requests are counted by the emulator (token endpoint + authorization grants).

| Scenario | Figure | Target |
|---|---|---|
| 20 sequential \`findity-token\` runs | ${R[seq]} token request(s) (\`--no-cache\`: ${R[seq_nocache]} per run) | 1 |
| 16 \`findity-token --user E1\` processes at once | ${R[sixteen]} requests | 3 |
| 8 processes × 4 threads, ${SECS} s, 4 s tokens, file store | ${R[file_req]} requests (fleet needs ${R[file_bound]}: 3 + one per 2 s window), ${R[file_reuse]} refresh/code reuse, ${R[file_fail]} failed of ${R[file_ok]} calls, slowest call ${R[file_slow]} ms | ≤ renewals + 1, 0, 0 |
| same, Redis store | ${R[redis_req]} requests (needs ${R[redis_bound]}), ${R[redis_reuse]} reuse, ${R[redis_fail]} failed of ${R[redis_ok]} calls, slowest ${R[redis_slow]} ms | ≤ renewals + 1, 0, 0 |
| same, Redis stopped at ${SECS}/3 s, restarted empty at 2·${SECS}/3 s | ${R[redisstop_fail]} failed of ${R[redisstop_ok]} calls, ${R[redisstop_reuse]} reuse, ${R[redisstop_req]} requests (each process renews on its own during the outage), ${R[redisstop_errors]} store errors counted | 0 failed |
| lock holder SIGKILLed mid-request (file store) | the 4 next processes: ${R[kill_ok]} ok, ${R[kill_fail]} failed, all done in ${R[kill_ms]} ms (timeout_ms 3000), no clean-up | within timeout_ms |
| token served from the store, file (another process fetched it) | median $(v median_us "${R[served_file]}") µs, p99 $(v p99_us "${R[served_file]}") µs, $(v requests "${R[served_file]}") requests | ≤ 100 µs |
| token served from the store, Redis on loopback | median $(v median_us "${R[served_redis]}") µs, p99 $(v p99_us "${R[served_redis]}") µs | ≤ 1 ms |
| cache hit, store configured vs none | $(v hit_ns "${R[served_file]}") ns (file), $(v hit_ns "${R[served_redis]}") ns (Redis) vs ${R[hit_plain]} ns | unchanged |

Store-served calls include the whole miss path: lock (OFD lock / \`SET NX PX\`), read, HKDF + ChaCha20-Poly1305 open,
adoption, unlock (compare-and-delete script). The cache hit never touches the store.
EOT
python3 - "$section" <<'PY'
import re, sys
new = open(sys.argv[1]).read()
path = "BENCHMARKS.md"
old = open(path).read()
start = old.find("## Shared cache (option shared_cache)")
if start >= 0:
    end = old.find("\n## ", start + 1)
    old = old[:start].rstrip() + "\n" + (old[end:] if end >= 0 else "")
open(path, "w").write(old.rstrip() + "\n\n" + new)
PY
echo "== BENCHMARKS.md: Shared cache section written"
