#!/usr/bin/env bash
# make sign-windows: the Authenticode step, shown with a THROW-AWAY self-signed certificate made
# here (openssl), never with a real key. The signed copies go to build/native-signed/<rid>/;
# build/native/<rid>/ stays unsigned (its SHA256SUMS are of the unsigned files).
#
# What a release does instead (the signing key never sits on a build machine as a file):
#   - a code-signing certificate from a CA in Microsoft's root program (OV or EV; EV or an HSM /
#     cloud key is required for new certificates since 2023, e.g. Azure Trusted Signing, DigiCert
#     KeyLocker, a YubiKey/PKCS#11 token), used through osslsigncode's -pkcs11module/-key options
#     or signtool on Windows;
#   - SHA-256 digests (-h sha256) and an RFC 3161 timestamp from the CA's timestamp server
#     (-ts URL), so the signature stays valid after the certificate expires;
#   - findity.dll and findity-token.exe of win-x64 and win-x86 signed BEFORE they go into the
#     nupkg and the wheels (which are then built from the signed files), SHA256SUMS made of the
#     signed files, and `osslsigncode verify` (or signtool verify /pa) run on each.
#
#   bash scripts/windows/sign.sh [rid...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/windows/env.sh
need_debian_packages osslsigncode openssl

RIDS=("$@")
[ ${#RIDS[@]} -gt 0 ] || read -r -a RIDS <<<"$WIN_RIDS_ALL"
KEYS="$ROOT/build/sign-throwaway"
mkdir -p "$KEYS"
if [ ! -f "$KEYS/cert.pem" ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 7 -nodes -subj "/CN=libfindity THROW-AWAY test signer" \
        -addext "extendedKeyUsage=codeSigning" -keyout "$KEYS/key.pem" -out "$KEYS/cert.pem" 2>/dev/null
    echo "sign: a throw-away self-signed code-signing certificate in $KEYS (valid 7 days, trusted by nobody)"
fi
for rid in "${RIDS[@]}"; do
    src="$NATIVE_OUT/$rid" dst="$ROOT/build/native-signed/$rid"
    [ -f "$src/findity.dll" ] || { echo "sign: $src/findity.dll missing (make windows)"; continue; }
    rm -rf "$dst"
    mkdir -p "$dst"
    for f in findity.dll findity-token.exe; do
        t0=$SECONDS
        # A release adds: -ts http://timestamp.<ca>.com (RFC 3161), and -pkcs11module/-key for a
        # token or HSM instead of -key FILE.
        osslsigncode sign -certs "$KEYS/cert.pem" -key "$KEYS/key.pem" -h sha256 \
            -n "libfindity" -i "https://example.invalid/libfindity" \
            -in "$src/$f" -out "$dst/$f" >/dev/null
        # Verifies the signature's integrity; the chain is not trusted (self-signed), as expected.
        if osslsigncode verify -CAfile "$KEYS/cert.pem" -in "$dst/$f" >"$dst/$f.verify.txt" 2>&1; then
            echo "sign: $rid/$f signed and verified against the throw-away certificate ($((SECONDS - t0)) s)"
        else
            grep -E "Signature verification|Message digest|Calculated" "$dst/$f.verify.txt" | head -5
            echo "sign: $rid/$f: osslsigncode verify failed" >&2
            exit 1
        fi
    done
    (cd "$dst" && sha256sum findity.dll findity-token.exe > SHA256SUMS)
done
