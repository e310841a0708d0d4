#!/usr/bin/env bash
# The Findity.Auth NuGet package, with the tools this machine has (Debian's Mono packages: mcs
# and nuget 2.8), into build/nuget/Findity.Auth.VERSION.nupkg:
#
#   lib/net461/Findity.Auth.dll (+ .xml docs, + .dll.config)  built here by mcs
#   runtimes/<rid>/native/libfindity.so                         build/native/<rid> (make native)
#     for each of linux-x64, linux-arm64, linux-musl-x64 built there; linux-x64 falls back to
#     target/release (make release, the host's glibc) when make native has not run or is older, and a
#     missing rid is named on stderr. .NET picks runtimes/<rid> itself (linux-musl-x64 on
#     Alpine); Mono reads the dllmap of Findity.Auth.dll.config (x86-64 and armv8; glibc only).
#   runtimes/win-x64/native/findity.dll, runtimes/win-x86/native/findity.dll
#                                                               build/native/win-* (make windows)
#   build/net461/Findity.Auth.targets                           .NET Framework projects do not
#     read runtimes/: it copies the findity.dll of the application's platform next to it (x86 for
#     PlatformTarget x86, or AnyCPU with Prefer32Bit in an .exe; else x64; FindityPlatform=x86|x64
#     overrides, e.g. for a library loaded by a 32-bit IIS application pool)
#   README.md, LICENSE-MIT, LICENSE-APACHE
#
# License metadata: nuget 2.8 knows no <license> or <readme> element (NuGet 4.9 / 5.10), so the
# nuspec it packs has <licenseUrl> (licenses.nuget.org's page of the SPDX expression, what newer
# NuGet writes for old clients), <copyright> and both license texts in the package; the packed
# nuspec is then given <license type="expression">MIT OR Apache-2.0</license> and
# <readme>README.md</readme>, which current NuGet clients and nuget.org read (nuget 2.8 installs
# such a package). <projectUrl> is Cargo.toml's [package] homepage or repository, or
# $FINDITY_PROJECT_URL; none is written when neither is set.
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
RIDS=()
declare -A RID_LIB
for rid in linux-x64 linux-arm64 linux-musl-x64; do
    native="$ROOT/build/native/$rid/libfindity.so" host="$ROOT/target/release/libfindity.so"
    if [ -f "$native" ] && { [ "$rid" != linux-x64 ] || [ ! "$host" -nt "$native" ]; }; then
        RIDS+=("$rid"); RID_LIB[$rid]="$native"
        [ ! "$host" -nt "$native" ] || echo "nuget: build/native/$rid is older than target/release (make native rebuilds it)" >&2
    elif [ "$rid" = linux-x64 ] && [ -f "$ROOT/target/release/libfindity.so" ]; then
        RIDS+=("$rid"); RID_LIB[$rid]="$ROOT/target/release/libfindity.so"
        echo "nuget: runtimes/linux-x64 from target/release (this host's glibc; make native builds it for glibc 2.17)" >&2
    else
        echo "nuget: WARNING: no $rid library (make native): the package carries no runtimes/$rid" >&2
    fi
done
[ -n "${RID_LIB[linux-x64]:-}" ] || { echo "nuget: no linux-x64 library: run make release or make native" >&2; exit 2; }
# Windows (issue 21): findity.dll of make windows, when built.
WIN_RIDS=()
for rid in win-x64 win-x86; do
    if [ -f "$ROOT/build/native/$rid/findity.dll" ]; then
        WIN_RIDS+=("$rid")
    else
        echo "nuget: WARNING: no $rid findity.dll (make windows): the package carries no runtimes/$rid" >&2
    fi
done
STAGE="$ROOT/build/nuget/stage"
rm -rf "$STAGE" "$ROOT/build/nuget/Findity.Auth."*.nupkg
mkdir -p "$STAGE/lib/net461"

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
  <dllmap dll="findity" os="linux" cpu="armv8" target="../../runtimes/linux-arm64/native/libfindity.so"/>
</configuration>
XML
RUNTIME_FILES=
for rid in "${RIDS[@]}"; do
    mkdir -p "$STAGE/runtimes/$rid/native"
    install -m 0755 "${RID_LIB[$rid]}" "$STAGE/runtimes/$rid/native/libfindity.so"
    RUNTIME_FILES+="
    <file src=\"runtimes/$rid/native/libfindity.so\" target=\"runtimes/$rid/native\" />"
done
for rid in "${WIN_RIDS[@]}"; do
    mkdir -p "$STAGE/runtimes/$rid/native"
    install -m 0755 "$ROOT/build/native/$rid/findity.dll" "$STAGE/runtimes/$rid/native/findity.dll"
    RUNTIME_FILES+="
    <file src=\"runtimes/$rid/native/findity.dll\" target=\"runtimes/$rid/native\" />"
done
if [ ${#WIN_RIDS[@]} -gt 0 ]; then
    mkdir -p "$STAGE/build/net461"
    cat >"$STAGE/build/net461/Findity.Auth.targets" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<!-- Findity.Auth for .NET Framework on Windows: .NET Framework does not read runtimes/<rid>/,
     so the findity.dll matching the application's platform is copied next to it. x86 when the
     process will be 32-bit: PlatformTarget x86, or AnyCPU with Prefer32Bit in an executable
     (the default of .NET Framework console and desktop templates for years); x64 otherwise.
     Set FindityPlatform to x86 or x64 to choose (e.g. a library in a 32-bit IIS pool). -->
<Project xmlns="http://schemas.microsoft.com/developer/msbuild/2003">
  <PropertyGroup Condition="'$(FindityPlatform)' == ''">
    <FindityPlatform Condition="'$(PlatformTarget)' == 'x86'">x86</FindityPlatform>
    <FindityPlatform Condition="'$(FindityPlatform)' == '' and ('$(PlatformTarget)' == '' or '$(PlatformTarget)' == 'AnyCPU') and '$(Prefer32Bit)' == 'true' and ('$(OutputType)' == 'Exe' or '$(OutputType)' == 'WinExe')">x86</FindityPlatform>
    <FindityPlatform Condition="'$(FindityPlatform)' == ''">x64</FindityPlatform>
  </PropertyGroup>
  <ItemGroup Condition="'$(TargetFrameworkIdentifier)' == '.NETFramework' and Exists('$(MSBuildThisFileDirectory)..\..\runtimes\win-$(FindityPlatform)\native\findity.dll')">
    <None Include="$(MSBuildThisFileDirectory)..\..\runtimes\win-$(FindityPlatform)\native\findity.dll">
      <Link>findity.dll</Link>
      <CopyToOutputDirectory>PreserveNewest</CopyToOutputDirectory>
      <Visible>false</Visible>
    </None>
  </ItemGroup>
</Project>
XML
    RUNTIME_FILES+="
    <file src=\"build/net461/Findity.Auth.targets\" target=\"build/net461\" />"
fi
cp bindings/csharp/README.md "$STAGE/README.md"
cp LICENSE-MIT LICENSE-APACHE "$STAGE/"
LICENSE_EXPR="$(sed -n 's/^license *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
[ -n "$LICENSE_EXPR" ] || { echo "nuget: no license in Cargo.toml" >&2; exit 1; }
PROJECT_URL="${FINDITY_PROJECT_URL:-$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^(homepage|repository) *=/ { print $2; exit }' Cargo.toml)}"

DESCRIPTION="$(sed -n 's:.*<Description>\(.*\)</Description>.*:\1:p' bindings/csharp/Findity.Auth.csproj)"
cat >"$STAGE/Findity.Auth.nuspec" <<XML
<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd">
  <metadata>
    <id>Findity.Auth</id>
    <version>$VERSION</version>
    <authors>libfindity contributors</authors>
    <requireLicenseAcceptance>false</requireLicenseAcceptance>
    <licenseUrl>https://licenses.nuget.org/${LICENSE_EXPR// /%20}</licenseUrl>
    <copyright>Copyright (c) The libfindity authors; $LICENSE_EXPR (LICENSE-MIT, LICENSE-APACHE)</copyright>${PROJECT_URL:+
    <projectUrl>$PROJECT_URL</projectUrl>}
    <description>$DESCRIPTION Built with Mono for .NET Framework 4.6.1+ / Mono; native libraries for ${RIDS[*]}${WIN_RIDS[*]:+ ${WIN_RIDS[*]}}.</description>
    <tags>findity oauth expense erp httpclient</tags>
    <frameworkAssemblies>
      <frameworkAssembly assemblyName="System.Net.Http" targetFramework="net461" />
    </frameworkAssemblies>
  </metadata>
  <files>
    <file src="lib/net461/*" target="lib/net461" />$RUNTIME_FILES
    <file src="README.md" target="" />
    <file src="LICENSE-MIT" target="LICENSE-MIT" />
    <file src="LICENSE-APACHE" target="LICENSE-APACHE" />
  </files>
</package>
XML
nuget pack "$STAGE/Findity.Auth.nuspec" -BasePath "$STAGE" -OutputDirectory "$ROOT/build/nuget" \
    -NonInteractive -NoPackageAnalysis >"$ROOT/build/nuget/pack.log" 2>&1 \
    || { cat "$ROOT/build/nuget/pack.log" >&2; exit 1; }
# The modern license and readme elements into the packed nuspec (see the top).
python3 - "$ROOT/build/nuget/Findity.Auth.$VERSION.nupkg" "$LICENSE_EXPR" <<'PY'
import os, sys, zipfile
path, expr = sys.argv[1], sys.argv[2]
tmp = path + ".tmp"
with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith(".nuspec"):
            text = data.decode("utf-8")
            assert "<licenseUrl>" in text and "</description>" in text, "unexpected nuspec from nuget pack"
            text = text.replace("<licenseUrl>", '<license type="expression">%s</license>\n    <licenseUrl>' % expr, 1)
            text = text.replace("</description>", "</description>\n    <readme>README.md</readme>", 1)
            data = text.encode("utf-8")
        zout.writestr(item, data)
os.replace(tmp, path)
PY
echo "$ROOT/build/nuget/Findity.Auth.$VERSION.nupkg"
