#!/usr/bin/env bash
# Builds the x64 MSI for Windows nodes from tortie.wxs with wixl (Debian's msitools), on Linux.
#
#   installer/windows/build-msi.sh [-o OUT.msi] BIN_DIR
#
# BIN_DIR holds the windows/amd64 tortie-node.exe, tortiectl.exe and tortie-cni.exe (`make msi` builds
# them into bin/windows-amd64 and calls this). Installs wixl and msitools (and osslsigncode when signing)
# through ci/deps.sh when they are missing.
#
# Environment:
#   GIT_DESCRIBE     the version text (default: git describe --tags --always --dirty)
#   MSI_VERSION      the MSI ProductVersion X.Y.Z (default: mapped from GIT_DESCRIBE by ./msiversion;
#                    docs/install-windows.md explains the mapping)
#   SIGN_CERT, SIGN_KEY        PEM certificate (chain) and key: sign the .exe files and the MSI
#   SIGN_PKCS12, SIGN_PASSWORD a .pfx instead of SIGN_CERT/SIGN_KEY
#   SIGN_TIMESTAMP_URL         an RFC 3161 time-stamping server (optional; needs the network)
# Without a key the MSI is built unsigned, and the last line says so.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/bin/tortie-x64.msi"

usage() {
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while getopts "o:h" opt; do
	case "$opt" in
	o) out="$OPTARG" ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
(($# == 1)) || usage
bin="$(cd "$1" && pwd)"

die() {
	echo "build-msi: ERROR: $*" >&2
	exit 1
}

for exe in tortie-node tortiectl tortie-cni; do
	[[ -f "$bin/$exe.exe" ]] || die "$bin/$exe.exe is missing; build it with GOOS=windows GOARCH=amd64 (make msi does)"
done

signing=""
if [[ -n "${SIGN_PKCS12:-}" ]]; then
	[[ -f "$SIGN_PKCS12" ]] || die "SIGN_PKCS12=$SIGN_PKCS12: no such file"
	signing=pkcs12
elif [[ -n "${SIGN_CERT:-}${SIGN_KEY:-}" ]]; then
	[[ -f "${SIGN_CERT:-}" && -f "${SIGN_KEY:-}" ]] || die "set both SIGN_CERT and SIGN_KEY to existing PEM files (got SIGN_CERT=${SIGN_CERT:-} SIGN_KEY=${SIGN_KEY:-})"
	signing=pem
fi

tools=(wixl msitools)
[[ -z "$signing" ]] || tools+=(osslsigncode)
if ! command -v wixl >/dev/null || ! command -v msiinfo >/dev/null || { [[ -n "$signing" ]] && ! command -v osslsigncode >/dev/null; }; then
	"$root/ci/deps.sh" "${tools[@]}"
fi

describe="${GIT_DESCRIBE:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}"
version="${MSI_VERSION:-}"
if [[ -z "$version" ]]; then
	commits="$(git -C "$root" rev-list --count HEAD 2>/dev/null || echo 0)"
	version="$(cd "$root" && go run ./installer/windows/msiversion "$describe" "$commits")"
fi
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "MSI_VERSION=$version: want MAJOR.MINOR.BUILD"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/src/powershell"
cp "$here/tortie.wxs" "$here/10-tortie.conflist" "$stage/src/"
cp "$here/powershell/Tortie.psd1" "$here/powershell/Tortie.psm1" "$stage/src/powershell/"

sign() { # in out
	local args=(sign -h sha256 -n "tortie" -in "$1" -out "$2")
	if [[ "$signing" == pkcs12 ]]; then
		args+=(-pkcs12 "$SIGN_PKCS12" -pass "${SIGN_PASSWORD:-}")
	else
		args+=(-certs "$SIGN_CERT" -key "$SIGN_KEY")
	fi
	[[ -z "${SIGN_TIMESTAMP_URL:-}" ]] || args+=(-ts "$SIGN_TIMESTAMP_URL")
	osslsigncode "${args[@]}" >/dev/null
}

# Sign the programs first, so the MSI carries signed files, then the MSI itself.
for exe in tortie-node tortiectl tortie-cni; do
	if [[ -n "$signing" ]]; then
		sign "$bin/$exe.exe" "$stage/bin/$exe.exe"
	else
		cp "$bin/$exe.exe" "$stage/bin/"
	fi
done

# wixl resolves Source paths relative to the working directory (absolute ones fail).
mkdir -p "$(dirname "$out")"
unsigned="$stage/tortie-unsigned.msi"
(cd "$stage" && wixl -a x64 -D "Version=$version" -D "GitDescribe=$describe" -D BinDir=bin -D SrcDir=src \
	-o "$unsigned" src/tortie.wxs)
if [[ -n "$signing" ]]; then
	sign "$unsigned" "$out"
	echo "build-msi: built $out (ProductVersion $version, tortie $describe), signed"
else
	cp "$unsigned" "$out"
	echo "build-msi: built $out (ProductVersion $version, tortie $describe), UNSIGNED (set SIGN_CERT and SIGN_KEY, or SIGN_PKCS12, to sign)"
fi
