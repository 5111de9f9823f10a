#!/usr/bin/env bash
# Builds a real kube-apiserver from the tools module in ci/kube-apiserver and
# caches it, keyed by the tools module's go.sum. Prints the binary's path on
# stdout (and nothing else); progress goes to stderr.
#
#   TORTIE_CACHE   cache root (default: $HOME/.cache/tortie)
#   FORCE=1        rebuild even if the cached binary exists
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/kube-apiserver"
cache="${TORTIE_CACHE:-${HOME:-/root}/.cache/tortie}"

if ! command -v go >/dev/null 2>&1; then
	echo "build-kube-apiserver: go is not on PATH" >&2
	exit 1
fi
if [[ ! -f "$mod/go.sum" ]]; then
	echo "build-kube-apiserver: $mod/go.sum is missing" >&2
	exit 1
fi

key="$(sha256sum "$mod/go.sum" | cut -c1-12)"
out="$cache/kube-apiserver-$key"

if [[ -x "$out" && "${FORCE:-0}" != 1 ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp "$cache/.kube-apiserver-$key.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

echo "build-kube-apiserver: building $out (takes several minutes on 2 cores)..." >&2
start=$SECONDS
# Stamp the version the way Kubernetes' own build does, so /version and
# client-go's ServerVersion report the real release.
kver="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$mod/go.mod")"
kmajor="${kver#v}"; kmajor="${kmajor%%.*}"
kminor="${kver#v*.}"; kminor="${kminor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$kmajor -X $pkg.gitMinor=$kminor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
# k8s.io/kubernetes is not in the checksum database; go.sum pins it instead.
# -mod=readonly: the committed go.mod/go.sum must be complete. -buildvcs=false:
# the binary needs no VCS stamp (and a checkout without commits cannot give one).
if ! (cd "$mod" && GOWORK=off GONOSUMDB=k8s.io/kubernetes GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
	go build -trimpath -ldflags="$ldflags" -o "$tmp" .); then
	echo "build-kube-apiserver: go build failed" >&2
	exit 1
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "build-kube-apiserver: built in $((SECONDS - start))s" >&2
echo "$out"
