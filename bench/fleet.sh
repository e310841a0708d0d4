#!/usr/bin/env bash
# bench/fleet.sh (make bench-fleet): the fleet's throttle (issue 22), across real processes,
# against the emulator's Findity-like throttle (a sliding window of 20 token requests per second
# per client). Writes the "Fleet throttle" section of BENCHMARKS.md. Debug test binaries: the
# figures are request counts and times bound by the server's rate, not by the library's speed.
# FINDITY_FLEET="procs threads users rate" (default "4 4 150 20"). About 4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export FINDITY_FLEET=${FINDITY_FLEET:-"4 4 150 20"}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo test -q --test store_file --no-run
cargo test -q --test store_file fleet_bench_file -- --ignored --nocapture --test-threads=1 | tee -a "$out"
bash scripts/redis.sh cargo test -q --test store_redis fleet_bench_redis -- --ignored --nocapture --test-threads=1 | tee -a "$out"
lines=$(grep '^FLEET' "$out" | sed 's/^FLEET /- /')
python3 - "$lines" <<'PY'
import re, sys, datetime, subprocess
lines = sys.argv[1]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
section = f"""## Fleet throttle (`make bench-fleet`, bench/fleet.sh)

Every process asks once for the same users' tokens (prefork workers or hosts serving any
employee), against the emulator allowing 20 token requests per second per client. Ideal: every
user's authorization grant and code exchange, plus one organization token, at the server's
rate. {datetime.date.today()}, commit {commit}, 2 cores, debug build:

{lines}
"""
path = "BENCHMARKS.md"
text = open(path).read()
start = text.find("## Fleet throttle")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
echo "BENCHMARKS.md: Fleet throttle section written"
