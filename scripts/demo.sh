#!/usr/bin/env bash
# The demo command: builds the library and the emulator, starts the emulator, and gets an
# organization token and a user token from C. Needs only cargo and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

need_c_compiler
echo "== building libfindity and the emulator (debug)"
cargo build --workspace --quiet
mkdir -p build
gcc -std=c11 -Wall -Wextra -Iinclude examples/c/demo.c -Ltarget/debug -lfindity \
    -Wl,-rpath,"$PWD/target/debug" -o build/demo

echo "== starting the Findity emulator"
start_emulator --client demo-client:demo-secret
echo "   emulator at $EMULATOR_URL"

echo "== examples/c/demo.c"
FINDITY_CLIENT_SECRET=demo-secret ./build/demo "$EMULATOR_URL" demo-client 8ab28c3e6f8023c3016f8046be110002
echo
echo "== what the emulator saw"
python3 -c 'import json, sys, urllib.request
print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1])), indent=1, sort_keys=True))' "$EMULATOR_URL/_emulator/stats"
