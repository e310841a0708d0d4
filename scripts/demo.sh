#!/usr/bin/env bash
# The demo command: builds the library and the emulator, starts the emulator, and gets
# organization and user tokens from C, Python and C#. Needs cargo, a C compiler and Python 3;
# installs a Python venv (build/venv-python) and Mono (Debian packages) when missing.
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
start_emulator --client demo-client:demo-secret --unknown-users unknown-employee
echo "   emulator at $EMULATOR_URL"

echo "== examples/c/demo.c"
FINDITY_CLIENT_SECRET=demo-secret ./build/demo "$EMULATOR_URL" demo-client 8ab28c3e6f8023c3016f8046be110002

echo
echo "== Python: examples/python/connector.py (requests + findity_auth.FindityAuth)"
echo "   (building the findity-auth wheel: the release libfindity, ~2 min the first time)"
python_env >/dev/null
FINDITY_BASE_URL="$EMULATOR_URL" FINDITY_CLIENT_ID=demo-client FINDITY_CLIENT_SECRET=demo-secret \
    FINDITY_USER_ID=8ab28c3e6f8023c3016f8046be110002 "$VPY" examples/python/connector.py

echo
echo "== C#: examples/csharp/Connector.cs (HttpClient + FindityAuthHandler, on Mono)"
mono_env
csharp_build_examples build/csharp
FINDITY_BASE_URL="$EMULATOR_URL" FINDITY_CLIENT_ID=demo-client FINDITY_CLIENT_SECRET=demo-secret \
    FINDITY_USER_ID=8ab28c3e6f8023c3016f8046be110002 LD_LIBRARY_PATH="$PWD/target/debug" \
    mono build/csharp/Connector.exe

echo
echo "== what the emulator saw (all three languages, one emulator)"
python3 -c 'import json, sys, urllib.request
print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1])), indent=1, sort_keys=True))' "$EMULATOR_URL/_emulator/stats"
