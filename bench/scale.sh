#!/usr/bin/env bash
# make scale: the many-keys figures (tests/scale.rs), written into BENCHMARKS.md between markers.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo test --test scale -- --ignored --test-threads 1 --nocapture 2>&1 | tee "$out" | grep '^SCALE' || true
grep -q '^SCALE' "$out" || { echo "scale: no figures (see above)"; tail -30 "$out"; exit 1; }
python3 - "$out" <<'PY'
import sys, time
lines = [l[6:].strip() for l in open(sys.argv[1]) if l.startswith("SCALE ")]
begin, end = "<!-- scale:begin -->", "<!-- scale:end -->"
body = [begin, "", f"Command: `make scale` (debug build, in-process emulator except for the memory figure, 2 cores), {time.strftime('%Y-%m-%d')}.", ""]
body += [f"- {l}" for l in lines] + ["", end]
text = open("BENCHMARKS.md").read()
if begin in text:
    a, b = text.index(begin), text.index(end) + len(end)
    text = text[:a] + "\n".join(body) + text[b:]
else:
    text += "\n## Many keys against a throttling server (issue: thousands of keys)\n\n" + "\n".join(body) + "\n"
open("BENCHMARKS.md", "w").write(text)
PY
