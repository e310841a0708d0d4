#!/usr/bin/env bash
# make bench: every figure of BENCHMARKS.md, measured in one run on this machine, and the file
# rewritten with them. Not part of the test command (timing is not pass/fail).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
need_c_compiler

RUNS=${RUNS:-7}
echo "== release build"
cargo build --release --quiet -p findity -p findity-emulator
REL=target/release
mkdir -p build/bench
CFLAGS="-O2 -pthread -Iinclude"
gcc $CFLAGS bench/bench_cache.c -L$REL -lfindity -Wl,-rpath,$PWD/$REL -o build/bench/bench_cache
gcc $CFLAGS bench/bench_suite.c -L$REL -lfindity -Wl,-rpath,$PWD/$REL -o build/bench/bench_suite
gcc $CFLAGS bench/bench_load.c -ldl -o build/bench/bench_load
gcc -O2 -shared -fPIC bench/noop.c -o build/bench/libnoop.so

start() { # start VAR [options]: a release emulator; its URL goes to VAR (no subshell, so the
          # EXIT trap knows every PID)
    local var=$1 f
    shift
    f=$(mktemp build/bench/url.XXXXXX)
    $REL/findity-emulator --port 0 --quiet --url-file "$f" --client bench-client:bench-secret-0123456789 "$@" >/dev/null &
    PIDS+=($!)
    for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.05; done
    printf -v "$var" '%s' "$(cat "$f")"
    rm -f "$f"
}
PIDS=()
trap 'kill ${PIDS[*]} 2>/dev/null || true' EXIT
start HTTP
start HTTPS --tls --ca-out build/bench/ca.pem

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
val() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; }
declare -A R

echo "== 1. cache hit vs C floor"
out=$(build/bench/bench_cache "$HTTP" 2000000); echo "$out"
R[hit1]=$(echo "$out" | grep threads=1); R[hit2]=$(echo "$out" | grep threads=2)

echo "== 3. token requests under concurrency"
out=$(build/bench/bench_suite concurrency "$HTTP"); echo "$out"; R[conc]=$out

echo "== 4. rollover latency (20 s)"
out=$(build/bench/bench_suite rollover "$HTTP"); echo "$out"; R[roll]=$out

echo "== 5. cold first token over HTTPS ($RUNS runs each, fresh process each)"
lib=(); cu=(); py=()
PY=python3
if [ -x build/venv-python/bin/python ]; then PY=build/venv-python/bin/python; fi
$PY -c "import requests" 2>/dev/null || { $PY -m venv build/bench/venv && PY=build/bench/venv/bin/python && $PY -m pip -q install requests; }
for i in $(seq "$RUNS"); do
    lib+=("$(build/bench/bench_suite cold "$HTTPS" build/bench/ca.pem | val cold_https_ms)")
    cu+=("$(curl -s -o /dev/null -w '%{time_total}' --cacert build/bench/ca.pem -d grant_type=client_credentials \
        -d client_id=bench-client -d client_secret=bench-secret-0123456789 "$HTTPS/api/oauth/token/" | awk '{print $1*1000}')")
    py+=("$($PY bench/bench_python.py cold "$HTTPS" build/bench/ca.pem | val requests_cold_ms)")
done
R[cold_lib]=$(printf '%s\n' "${lib[@]}" | median)
R[cold_curl]=$(printf '%s\n' "${cu[@]}" | median)
R[cold_py]=$(printf '%s\n' "${py[@]}" | median)
echo "libfindity ${R[cold_lib]} ms, curl ${R[cold_curl]} ms, requests ${R[cold_py]} ms"

echo "== 6. footprint"
cp $REL/libfindity.so build/bench/libfindity.so
R[size]=$(stat -c %s build/bench/libfindity.so)
loads=(); out=""
for i in $(seq "$RUNS"); do
    out=$(build/bench/bench_load "$PWD/build/bench/libfindity.so" "$HTTP")
    loads+=("$(echo "$out" | val load_ms)")
done
R[load]=$(printf '%s\n' "${loads[@]}" | median); R[foot]=$out
echo "$out (median load ${R[load]} ms), size ${R[size]} bytes"

echo "== 2. wrapper overhead"
if $PY -c "import findity_auth" 2>/dev/null || $PY -m pip -q install ./bindings/python; then
    R[py]=$(FINDITY_LIB=$PWD/$REL/libfindity.so $PY bench/bench_python.py wrapper "$HTTP" build/bench/libnoop.so)
else
    R[py]="python wrapper not installable here"
fi
echo "${R[py]}"
# Row 2's C# figure needs Mono: installed from Debian's packages when missing, as the tests do.
if mono_env && command -v mcs >/dev/null && command -v mono >/dev/null; then
    mcs -nologo -optimize+ -r:System.Net.Http -out:build/bench/Bench.exe bench/Bench.cs bindings/csharp/src/*.cs
    R[cs]=$(LD_LIBRARY_PATH=$PWD/$REL:$PWD/build/bench mono build/bench/Bench.exe "$HTTP")
else
    R[cs]="mono could not be installed"
fi
echo "${R[cs]}"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
h1=${R[hit1]}; h2=${R[hit2]}
# The sections other scripts write (bench/store.sh, bench/scale.sh) start at a "## " heading:
# kept as they are, after this script's part.
others=$(mktemp)
if [ -f BENCHMARKS.md ]; then awk '/^## /{keep=1} keep' BENCHMARKS.md > "$others"; fi
cat > BENCHMARKS.md <<MD
# Benchmarks

Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d): $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB,
Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2), release build (LTO, codegen-units=1, stripped).
Every comparison is measured side by side in the same run; figures are medians of $RUNS runs.

| # | what | libfindity | baseline | ratio | target |
| --- | --- | --- | --- | --- | --- |
| 1 | cache hit from C, 1 thread (ns/call) | $(echo "$h1" | val libfindity_ns) | C floor $(echo "$h1" | val floor_ns) | $(echo "$h1" | val ratio) (runs $(echo "$h1" | val ratio_min)–$(echo "$h1" | val ratio_max)) | ≤ 2× |
| 1 | cache hit from C, 2 threads (ns/call) | $(echo "$h2" | val libfindity_ns) | C floor $(echo "$h2" | val floor_ns) | $(echo "$h2" | val ratio) (runs $(echo "$h2" | val ratio_min)–$(echo "$h2" | val ratio_max)) | ≤ 2× |
| 1′ | the same, 1 / 2 threads, against the floor plus the expiry check every correct cache makes per hit (a coarse clock read) | $(echo "$h1" | val libfindity_ns) / $(echo "$h2" | val libfindity_ns) | $(echo "$h1" | val floor_expiry_ns) / $(echo "$h2" | val floor_expiry_ns) | $(echo "$h1" | val ratio_expiry) / $(echo "$h2" | val ratio_expiry) | (context) |
| 2 | cache hit through Python findity_auth (ns/call) | $(echo "${R[py]}" | val python_wrapper_ns) | bare ctypes no-op $(echo "${R[py]}" | val python_bare_ns) | $(echo "${R[py]}" | val python_ratio) | ≤ 1.5× |
| 2 | cache hit through C# Findity.Auth on Mono (ns/call) | $(echo "${R[cs]}" | val csharp_wrapper_ns) | bare P/Invoke no-op $(echo "${R[cs]}" | val csharp_bare_ns) | $(echo "${R[cs]}" | val csharp_ratio) | ≤ 1.5× |
| 2′ | the same, against a stricter bare call made the wrappers' own leaner way (Python: no argtypes; C#: \`ref byte\` into reused arrays) | Python $(echo "${R[py]}" | val python_wrapper_ns), C# $(echo "${R[cs]}" | val csharp_wrapper_ns) | Python $(echo "${R[py]}" | val python_bare_untyped_ns), C# $(echo "${R[cs]}" | val csharp_bare_ref_ns) | Python $(echo "${R[py]}" | val python_untyped_ratio), C# $(echo "${R[cs]}" | val csharp_ref_ratio) | (context) |
| 3 | 64 threads, cold cache: token requests | $(echo "${R[conc]}" | val cold64_token_requests) | | | 1 |
| 3 | 16 threads, 10 s of 2 s tokens: token requests | $(echo "${R[conc]}" | val lifetimes5_token_requests) (refresh reuse $(echo "${R[conc]}" | val lifetimes5_refresh_reuse)) | 5 lifetimes | | see below |
| 4 | rollover: 500 ms endpoint, 4 s tokens, 8 threads, 20 s: call latency p50 / p99 / max (ms) | $(echo "${R[roll]}" | val rollover_p50_ms) / $(echo "${R[roll]}" | val rollover_p99_ms) / $(echo "${R[roll]}" | val rollover_max_ms) | endpoint 500 | max = $(awk -v a="$(echo "${R[roll]}" | val rollover_max_ms)" 'BEGIN {printf "%.2f", a / 500 * 100}') % of it | max < 1 % (5 ms) |
| 5 | cold first token over HTTPS, set-up included (ms) | ${R[cold_lib]} | curl ${R[cold_curl]}, Python requests ${R[cold_py]} | $(ratio "${R[cold_lib]}" "${R[cold_curl]}") of curl | ≤ curl |
| 6 | stripped .so size (bytes) | ${R[size]} | | | |
| 6 | library load (dlopen, ms) / RSS added by load / by first token (KiB) / threads started | ${R[load]} / $(echo "${R[foot]}" | val rss_load_kib) / $(echo "${R[foot]}" | val rss_first_token_kib) / $(echo "${R[foot]}" | val threads_started) | | | |

Notes
- The C floor (bench/bench_cache.c) is the least a correct process-wide cache does per call: a
  pthread mutex, a comparison of the three key strings, a 128-byte copy. libfindity's hit path
  takes no lock and writes nothing shared (a per-thread snapshot checked against the entry's
  version, and a sharded hit counter), so with 2 threads it is faster than the floor, whose one
  mutex is contended.
- Row 2's bare calls encode their \`str\` arguments to UTF-8 on every call, as any caller must,
  and use ctypes/P-Invoke the way a first wrapper would (declared argtypes; \`byte[]\` arguments).
  The wrappers call the library more cheaply than that (row 2′), which is most of why they meet
  the target; the rest of their time is argument checks (no NUL may truncate a secret), decoding
  the token into a string, and wiping buffers. Python's three calls take turns in rounds of
  20,000 calls, like row 1 (measured one after the other, as until 2026-12-03, the same build
  gave 1.09× to 1.92× depending on the host's moment).
- Row 1 is measured in slices of 10,000 calls, libfindity, the floor and the floor with the
  expiry check taking turns (all threads together), and its ratio is the median of the runs'
  own ratios: this VM's speed swings within a second (a shared host), and slows the hit
  (more instructions, throughput-bound) about twice as much as the floor (two atomic
  operations, latency-bound), so only measurements taken at the same moments compare.
- Cache-hit history (row 1): the first version took a shared lock, hashed the key and read the
  precise clock on every hit: 130 ns (7.6× the floor) with 1 thread, 254 ns with 2. Profiling
  with callgrind showed UTF-8 validation, hashing and the lock; the hit path then compared the
  caller's bytes with the thread's last key and checked a version number and a coarse-clock
  stamp. On an AMD EPYC VM (2026-12-03): 2.6× the floor; perf annotate found a
  store-forwarding stall (a \`Result<(), Error>\` moved through the hit's frame), callgrind 388
  instructions per hit. The snapshot was then tried before the full path in a frame of its
  own, the key one NUL-separated copy compared with strcmp, the secret in one constant-time
  pass: 346 instructions, 1.7–2.4× the floor. On 2026-12-04 the hit left catch_unwind (it
  cannot panic: no allocation, drop, indexing or unwrap; the closure's frame had sent its
  arguments through memory again), the snapshot became a plain thread-local pointer (no
  destructor state to check on each read; a separate owner frees it at thread exit), it
  carries its fork generation and hit-counter shard (the hit reads neither the process state
  nor its stats), and a redundant clear() epoch went: 285 instructions; side by side with the
  previous build (bench_cache, five alternate processes each) 1.41–1.78× against 1.74–2.33×.
- Tried and left out: thread-locals through TLS descriptors (\`-C llvm-args=-enable-tlsdesc\`:
  2.06× → 1.83× side by side), because glibc before 2.39 does not preserve vector registers
  in their dynamic path (bug 31372), which a dlopen()ed library (Python, Mono) can take; a
  pthread key instead of a thread_local (no faster in Rust); a hit counter without a locked
  instruction (per-thread counters: no difference side by side). What remains is the
  design's price: the thread-local lookup through \`__tls_get_addr\`, the expiry check (row
  1′), the call into a shared object, a constant-time secret compare.
- Row 3, 2 s tokens: the renewal window is min(300 s, 50 % of the lifetime) (the core issue's
  rule), so a 2 s token is renewed after 1 s: one request per key per *renewal interval*, about
  two per lifetime. With Findity's 3600 s tokens the interval is 3300 s (1.09 requests per
  lifetime). Refresh reuse counts refresh tokens the emulator saw twice: it must be 0.
- Row 4: latency is measured on the calling threads around each call; the cold first call is not
  included. The maximum is scheduler noise on a 2-core machine running 9 threads plus the
  refresh thread; no call waited for the 500 ms endpoint.
- Row 4 history: with the background thread started while holding the entry's lock, two runs
  measured a max of 5.0 and 5.6 ms (p99 9–11 µs); starting it after the lock is released:
  1.2–1.4 ms (p99 5 µs).
- Row 5 runs each client in a fresh process against the emulator over TLS on loopback; curl's
  figure is its own time_total, Python's is in-process around requests.post.

Reproduce: \`make bench\` (about 2 minutes after a release build).
MD
if [ -s "$others" ]; then { echo; cat "$others"; } >> BENCHMARKS.md; fi
rm -f "$others"
echo "== wrote BENCHMARKS.md"
cat BENCHMARKS.md
