#!/usr/bin/env bash
# Runs the windows/amd64 test binaries under wine (the body of `make wine-test`).
# Idempotent, for a fresh Debian 12 machine:
#   1. installs wine64 and gcc-mingw-w64-x86-64 (apt-get only when one is missing);
#   2. creates a dedicated wine prefix, WINEPREFIX=${TORTIE_CACHE:-$HOME/.cache/tortie}/wine;
#   3. builds ci/wine/bcryptprimitives.c into a stand-in bcryptprimitives.dll (Go >= 1.22's
#      Windows runtime needs its ProcessPrng; Wine 8 has no such DLL) and installs it into the
#      prefix's system32 (rebuilt only when the source changes);
#   4. runs `GOOS=windows go test -count=1 -exec ci/wine/exec.sh` on every package that has
#      tests for windows, except those in `excluded` below, or on the packages given:
#
#   ci/wine.sh [go-test-flag...] [package...]      e.g. ci/wine.sh -v -run TestX ./windows/...
#
# Every windows/, platform/ and common/ package with tests runs (cmd/ and linux/ ones too); the one
# exclusion is below with its reason. Skipped tests are listed at the end with their reasons.
#
# Tests that need real services (etcd or kube-apiserver processes), root or network namespaces
# skip: TORTIE_REQUIRE_SERVICES, TORTIE_ETCD and TORTIE_KUBE_APISERVER are unset for the run
# (ci/test.sh exports them for the Linux suites). Embedded etcd (testenv.Etcd) works under wine.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# Packages with windows tests that do not run under wine, with the reason.
declare -A excluded=(
	[github.com/tortie-net/tortie/common]="its only test (the layering check) runs 'go list' over the source tree for both GOOS values; wine has no Go toolchain, and it runs on Linux"
)

log() { echo "wine: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# --- 1. packages -------------------------------------------------------------------------------
packages=(wine64 gcc-mingw-w64-x86-64)
t0="$(now)"
installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null | awk '$2 ~ /^ii/ { print $1 }' || true)"
missing=()
for p in "${packages[@]}"; do
	grep -qxF -- "$p" <<<"$installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
	sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
		sudo=(sudo)
	fi
	log "installing ${missing[*]} (apt-get update + install --no-install-recommends)"
	out="$(mktemp)"
	trap 'rm -f "$out"' EXIT
	export DEBIAN_FRONTEND=noninteractive
	apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
	"${sudo[@]}" apt-get "${apt_opts[@]}" update >"$out" 2>&1 || {
		cat "$out" >&2
		die "apt-get update failed"
	}
	"${sudo[@]}" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >"$out" 2>&1 || {
		cat "$out" >&2
		die "apt-get install failed for: ${missing[*]}"
	}
	log "installed in $(since "$t0")"
fi

wine="$(command -v wine64 || true)"
[[ -n "$wine" ]] || wine=/usr/lib/wine/wine64 # Debian's wine64 puts it here, off PATH
wineserver="$(dirname "$wine")/wineserver"
cc=x86_64-w64-mingw32-gcc
[[ -x "$wine" && -x "$wineserver" ]] || die "no wine64/wineserver in $(dirname "$wine") after installing wine64"
command -v "$cc" >/dev/null 2>&1 || die "no $cc after installing gcc-mingw-w64-x86-64"

# --- 2. wine prefix ----------------------------------------------------------------------------
cache="${TORTIE_CACHE:-$HOME/.cache/tortie}"
export WINEPREFIX="$cache/wine"
export WINEDEBUG=-all
wine_version="$("$wine" --version)"
stamp="$WINEPREFIX/.tortie-prefix" # the wine version that initialised the prefix
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wine_version" ]]; then
	t0="$(now)"
	if [[ -e "$WINEPREFIX" && ! -f "$stamp" ]]; then
		log "removing $WINEPREFIX (not fully initialised)"
		rm -rf "$WINEPREFIX"
	fi
	mkdir -p "$cache"
	log "initialising wine prefix $WINEPREFIX ($wine_version)"
	out="$(mktemp)"
	# No Mono or Gecko: Go test binaries need neither, and the installers would ask.
	if ! WINEDLLOVERRIDES="mscoree,mshtml=" "$wine" wineboot -i >"$out" 2>&1; then
		cat "$out" >&2
		rm -f "$out"
		die "wineboot -i failed"
	fi
	"$wineserver" -w # let the prefix's registry be written out
	rm -f "$out"
	[[ -d "$WINEPREFIX/drive_c/windows/system32" ]] || die "wineboot left no $WINEPREFIX/drive_c/windows/system32"
	echo "$wine_version" >"$stamp"
	log "prefix ready in $(since "$t0")"
fi

# --- 3. stand-in bcryptprimitives.dll ----------------------------------------------------------
src=ci/wine/bcryptprimitives.c
dll_dir="$cache/wine-dll"
dll="$dll_dir/bcryptprimitives.dll"
sum="$(sha256sum "$src" | cut -c1-64)"
if [[ "$(cat "$dll.sha256" 2>/dev/null || true)" != "$sum" || ! -f "$dll" ]]; then
	log "building $dll from $src"
	mkdir -p "$dll_dir"
	"$cc" -O2 -Wall -Werror -shared -o "$dll.tmp" "$src" -ladvapi32 -Wl,--kill-at
	mv "$dll.tmp" "$dll"
	echo "$sum" >"$dll.sha256"
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
if ! cmp -s "$dll" "$sys32/bcryptprimitives.dll"; then
	cp "$dll" "$sys32/bcryptprimitives.dll"
fi

# --- 4. Go's os.RemoveAll under Wine 8 ---------------------------------------------------------
# Go's os.RemoveAll on Windows (os/removeall_at.go, Go 1.26) deletes through
# internal/syscall/windows.Deleteat: NtSetInformationFile with FileDispositionInformationEx, falling
# back to the older class only for the status codes Windows returns when it lacks that one. Wine 8
# answers STATUS_NOT_IMPLEMENTED ("unlinkat ...: Invalid function."), so every t.TempDir clean-up
# fails. For these runs only, a go -overlay adds that status to the fallback case (as MSVC's STL
# does; Go's own Renameat falls back on any error). Nothing changes where the call succeeds.
overlay_args=()
goroot="$(go env GOROOT)"
at="$goroot/src/internal/syscall/windows/at_windows.go"
ov_dir="$cache/wine-overlay"
mkdir -p "$ov_dir"
pattern='^([[:space:]]+STATUS_NOT_SUPPORTED):([[:space:]]*// the file system doesn.t support FILE_DISPOSITION_INFORMATION_EX.*)$'
if [[ -f "$at" ]] && grep -Eq "$pattern" "$at"; then
	sed -E "s#$pattern#\\1, NTStatus(0xC0000002) /* STATUS_NOT_IMPLEMENTED: wine */:\\2#" "$at" >"$ov_dir/at_windows.go.tmp"
	if ! cmp -s "$ov_dir/at_windows.go.tmp" "$ov_dir/at_windows.go"; then
		mv "$ov_dir/at_windows.go.tmp" "$ov_dir/at_windows.go" # keep the mtime stable otherwise
	else
		rm -f "$ov_dir/at_windows.go.tmp"
	fi
	printf '{"Replace":{"%s":"%s"}}\n' "$at" "$ov_dir/at_windows.go" >"$ov_dir/overlay.json"
	overlay_args=(-overlay "$ov_dir/overlay.json")
else
	log "WARNING: $at has no Deleteat fallback case to patch ($(go env GOVERSION));" \
		"t.TempDir clean-ups may fail under wine with 'Invalid function'"
fi

# --- 5. the tests ------------------------------------------------------------------------------
export GOOS=windows GOARCH=amd64
flags=()
while (($# > 0)) && [[ "$1" == -* ]]; do
	flags+=("$1")
	shift
	# Flags that take a value as the next argument.
	if [[ "${flags[-1]}" =~ ^-(run|skip|timeout|count|parallel|bench|benchtime)$ ]] && (($# > 0)); then
		flags+=("$1")
		shift
	fi
done
if (($# > 0)); then
	pkgs=("$@")
else
	pkgs=()
	while read -r p; do
		if [[ -n "${excluded[$p]+x}" ]]; then
			log "not run under wine: $p: ${excluded[$p]}"
		else
			pkgs+=("$p")
		fi
	done < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
	((${#pkgs[@]} > 0)) || die "go list found no package with windows tests"
fi

log "go test under wine: ${#pkgs[@]} package(s)"
t0="$(now)"
rc=0
# gotestsum (ci/tools, built for this host) runs `go test -json` and ends with the list of skipped
# tests and their reasons, so that what wine does not cover is visible in every run.
gotestsum="$cache/bin/gotestsum"
GOOS= GOARCH= go build -modfile=ci/tools/go.mod -o "$gotestsum" gotest.tools/gotestsum
env -u TORTIE_REQUIRE_SERVICES -u TORTIE_ETCD -u TORTIE_KUBE_APISERVER \
	"$gotestsum" --format pkgname --format-hide-empty-pkg -- \
	-count=1 -timeout 10m "${overlay_args[@]}" -exec "$root/ci/wine/exec.sh" "${flags[@]}" "${pkgs[@]}" || rc=$?
log "go test under wine took $(since "$t0") (exit $rc)"
exit "$rc"
