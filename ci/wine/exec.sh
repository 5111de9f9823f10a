#!/usr/bin/env bash
# `go test -exec` wrapper that runs a windows/amd64 test binary under wine:
#
#   GOOS=windows go test -exec ci/wine/exec.sh ./pkg/...
#
# Uses the wine prefix that ci/wine.sh prepares (WINEPREFIX, default
# ${TORTIE_CACHE:-$HOME/.cache/tortie}/wine); run ci/wine.sh once first.
set -euo pipefail

die() {
	echo "ci/wine/exec.sh: $*" >&2
	exit 127
}

wine="$(command -v wine64 || true)"
if [[ -z "$wine" && -x /usr/lib/wine/wine64 ]]; then
	wine=/usr/lib/wine/wine64 # Debian's wine64 package puts it here, not on PATH
fi
[[ -n "$wine" ]] || die "wine64 not found: run ci/wine.sh (installs the wine64 package and sets up the prefix)"

export WINEPREFIX="${WINEPREFIX:-${TORTIE_CACHE:-$HOME/.cache/tortie}/wine}"
[[ -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]] ||
	die "wine prefix $WINEPREFIX is not set up (no system32/bcryptprimitives.dll, which Go binaries need): run ci/wine.sh"
(($# > 0)) || die "usage: exec.sh program.exe [args...]"

export WINEDEBUG=-all
exec "$wine" "$@"
