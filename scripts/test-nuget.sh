#!/usr/bin/env bash
# The NuGet package as a user gets it: `make nuget` builds build/nuget/Findity.Auth.VERSION.nupkg;
# this installs it with nuget from a local folder feed into a scratch directory, compiles
# examples/csharp/Connector.cs against the installed lib/net461/Findity.Auth.dll with mcs, and
# runs it on Mono against a fresh emulator, with no LD_LIBRARY_PATH: the package's own
# runtimes/linux-x64/native/libfindity.so is loaded (through its Findity.Auth.dll.config).
#
#   FINDITY_EMULATOR=/abs/target/debug/findity-emulator bash scripts/test-nuget.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh
EMULATOR="${FINDITY_EMULATOR:-$ROOT/target/debug/findity-emulator}"
[ -x "$EMULATOR" ] || { echo "test-nuget: $EMULATOR missing: make build" >&2; exit 2; }

PKG="$(bash scripts/nuget.sh | tail -1)"
VERSION="$(basename "$PKG" .nupkg)"; VERSION="${VERSION#Findity.Auth.}"
WORK="$(mktemp -d)"
EMULATOR_PID=
trap 'if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/feed" "$WORK/packages" "$WORK/app"
cp "$PKG" "$WORK/feed/"

echo "== nuget install Findity.Auth $VERSION from a local folder feed"
(cd "$WORK" && HOME="$WORK" nuget install Findity.Auth -Version "$VERSION" -Source "$WORK/feed" \
    -OutputDirectory "$WORK/packages" -NonInteractive -NoCache)
INSTALLED="$WORK/packages/Findity.Auth.$VERSION"
for f in lib/net461/Findity.Auth.dll lib/net461/Findity.Auth.dll.config runtimes/linux-x64/native/libfindity.so; do
    [ -f "$INSTALLED/$f" ] || { echo "test-nuget: the installed package lacks $f" >&2; exit 1; }
done
if readelf -S "$INSTALLED/runtimes/linux-x64/native/libfindity.so" | grep -q '\.debug_info'; then
    echo "test-nuget: the packaged libfindity.so is not a stripped release build" >&2; exit 1
fi

echo "== mcs: examples/csharp/Connector.cs against the installed package"
mcs -nologo -warnaserror+ -target:exe -out:"$WORK/app/Connector.exe" \
    -r:"$INSTALLED/lib/net461/Findity.Auth.dll" -r:System.Net.Http.dll examples/csharp/Connector.cs

"$EMULATOR" --port 0 --quiet --url-file "$WORK/url" --client "nuget-client:nuget-secret-$$" >/dev/null &
EMULATOR_PID=$!
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.05; done
URL="$(cat "$WORK/url")"
[ -n "$URL" ] || { echo "test-nuget: the emulator did not start" >&2; exit 1; }

echo "== mono Connector.exe (Findity.Auth.dll and libfindity.so from the installed package)"
out="$(cd "$WORK/app" && env -u LD_LIBRARY_PATH MONO_PATH="$INSTALLED/lib/net461" \
    FINDITY_BASE_URL="$URL" FINDITY_CLIENT_ID=nuget-client FINDITY_CLIENT_SECRET="nuget-secret-$$" \
    FINDITY_USER_ID=E1234 MONO_LOG_LEVEL=info MONO_LOG_MASK=dll timeout 60 mono Connector.exe 2>&1)" \
    || { echo "$out"; echo "test-nuget: Connector.exe failed" >&2; exit 1; }
grep -v '^Mono' <<<"$out" | sed 's/^/   /'
grep -q '"subject":"user:E1234"' <<<"$out" && grep -q '"subject":"org:nuget-client"' <<<"$out" \
    || { echo "test-nuget: Connector.exe did not print both subjects" >&2; exit 1; }
grep -q "DllImport loaded library '$INSTALLED/lib/net461/../../runtimes/linux-x64/native/libfindity.so'" <<<"$out" \
    || { grep '^Mono' <<<"$out" | grep -i findity; echo "test-nuget: libfindity.so was not the package's" >&2; exit 1; }
echo "test-nuget: $(basename "$PKG") installs from a folder feed; a Mono consumer built with mcs gets tokens with it"
