#!/usr/bin/env bash
# The Findity.Auth NuGet package, with the tools this machine has (Debian's Mono packages: mcs
# and nuget 2.8), into build/nuget/Findity.Auth.VERSION.nupkg:
#
#   lib/net461/Findity.Auth.dll (+ .xml docs, + .dll.config)  built here by mcs
#   runtimes/linux-x64/native/libfindity.so                     target/release (make release)
#   README.md
#
# Why lib/net461: mcs compiles against Mono's 4.x profile, i.e. the .NET Framework 4.x API, not
# against netstandard2.0 reference assemblies (which Debian does not package), so the assembly
# is a .NET Framework one; the same sources build as netstandard2.0 with the .csproj, so they
# use nothing newer than .NET Framework 4.6.1 (netstandard2.0's floor). The assembly says so
# itself ([TargetFramework(".NETFramework,Version=v4.6.1")]). System.Net.Http (HttpClient,
# DelegatingHandler) is declared as a framework assembly, so consumers reference it.
# Findity.Auth.dll.config maps "findity" to the package's runtimes/linux-x64/native/libfindity.so
# for Mono, which does not read runtimes/ by itself. Where the .NET SDK exists, `dotnet pack
# bindings/csharp/Findity.Auth.csproj` makes the netstandard2.0 package instead.
#
#   bash scripts/nuget.sh            (make nuget; prints the package's path)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/common.sh
mono_env
command -v nuget >/dev/null 2>&1 || { echo "installing nuget (Debian)"; apt_install --no-install-recommends nuget; }

VERSION="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' bindings/csharp/Findity.Auth.csproj)"
LIB="$ROOT/target/release/libfindity.so"
[ -f "$LIB" ] || { echo "nuget: $LIB missing: run make release" >&2; exit 2; }
STAGE="$ROOT/build/nuget/stage"
rm -rf "$STAGE" "$ROOT/build/nuget/Findity.Auth."*.nupkg
mkdir -p "$STAGE/lib/net461" "$STAGE/runtimes/linux-x64/native"

cat >"$STAGE/AssemblyInfo.cs" <<CS
[assembly: System.Reflection.AssemblyVersion("$VERSION.0")]
[assembly: System.Reflection.AssemblyInformationalVersion("$VERSION")]
[assembly: System.Reflection.AssemblyTitle("Findity.Auth")]
[assembly: System.Runtime.Versioning.TargetFramework(".NETFramework,Version=v4.6.1", FrameworkDisplayName = ".NET Framework 4.6.1")]
CS
mcs -nologo -warnaserror+ -optimize+ -target:library \
    -out:"$STAGE/lib/net461/Findity.Auth.dll" -doc:"$STAGE/lib/net461/Findity.Auth.xml" \
    -r:System.Net.Http.dll -r:System.dll -r:System.Core.dll \
    "$STAGE/AssemblyInfo.cs" bindings/csharp/src/*.cs
rm "$STAGE/AssemblyInfo.cs"
cat >"$STAGE/lib/net461/Findity.Auth.dll.config" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<!-- Mono: [DllImport("findity")] -> the package's native library (ignored by .NET). Copying
     libfindity.so next to the application, or LD_LIBRARY_PATH, works as well. -->
<configuration>
  <dllmap dll="findity" os="linux" cpu="x86-64" target="../../runtimes/linux-x64/native/libfindity.so"/>
</configuration>
XML
install -m 0755 "$LIB" "$STAGE/runtimes/linux-x64/native/libfindity.so"
cp bindings/csharp/README.md "$STAGE/README.md"

DESCRIPTION="$(sed -n 's:.*<Description>\(.*\)</Description>.*:\1:p' bindings/csharp/Findity.Auth.csproj)"
cat >"$STAGE/Findity.Auth.nuspec" <<XML
<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd">
  <metadata>
    <id>Findity.Auth</id>
    <version>$VERSION</version>
    <authors>libfindity contributors</authors>
    <requireLicenseAcceptance>false</requireLicenseAcceptance>
    <description>$DESCRIPTION Built with Mono for .NET Framework 4.6.1+ / Mono; native library for linux-x64.</description>
    <tags>findity oauth expense erp httpclient</tags>
    <frameworkAssemblies>
      <frameworkAssembly assemblyName="System.Net.Http" targetFramework="net461" />
    </frameworkAssemblies>
  </metadata>
  <files>
    <file src="lib/net461/*" target="lib/net461" />
    <file src="runtimes/linux-x64/native/libfindity.so" target="runtimes/linux-x64/native" />
    <file src="README.md" target="" />
  </files>
</package>
XML
nuget pack "$STAGE/Findity.Auth.nuspec" -BasePath "$STAGE" -OutputDirectory "$ROOT/build/nuget" \
    -NonInteractive -NoPackageAnalysis >"$ROOT/build/nuget/pack.log" 2>&1 \
    || { cat "$ROOT/build/nuget/pack.log" >&2; exit 1; }
echo "$ROOT/build/nuget/Findity.Auth.$VERSION.nupkg"
