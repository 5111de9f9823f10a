#!/usr/bin/env bash
# Prepares the environment for `go test` with real services:
#   1. ci/deps.sh installs the Debian packages (etcd-server, iptables, ...);
#   2. ci/build-kube-apiserver.sh builds or finds the cached kube-apiserver;
#   3. exports TORTIE_KUBE_APISERVER, TORTIE_ETCD, and, when CI=true,
#      TORTIE_REQUIRE_SERVICES=1 so no service test skips silently.
#
# Source it (bash) to get the variables in the current shell:
#   . ci/test-env.sh && go test ./...
# or run it and eval its output (any POSIX shell):
#   eval "$(ci/test-env.sh)"
#
#   TORTIE_SKIP_DEPS=1   do not run deps.sh (no root, or you manage packages)
#
# The work runs in a child bash with `set -euo pipefail`, so sourcing this file
# does not change the caller's shell options. Progress goes to stderr.

_tortie_test_env() (
	set -euo pipefail
	ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

	if [[ "${TORTIE_SKIP_DEPS:-0}" != 1 ]]; then
		"$ci/deps.sh" >&2
	fi

	etcd="${TORTIE_ETCD:-}"
	if [[ -z "$etcd" ]]; then
		etcd="$(command -v etcd || true)"
	fi
	if [[ -z "$etcd" || ! -x "$etcd" ]]; then
		echo "test-env: no etcd binary (install etcd-server: ci/deps.sh)" >&2
		exit 1
	fi

	kas="${TORTIE_KUBE_APISERVER:-}"
	if [[ -z "$kas" ]]; then
		kas="$("$ci/build-kube-apiserver.sh")"
	fi
	if [[ ! -x "$kas" ]]; then
		echo "test-env: kube-apiserver binary $kas is not executable" >&2
		exit 1
	fi

	printf 'export TORTIE_ETCD=%q\n' "$etcd"
	printf 'export TORTIE_KUBE_APISERVER=%q\n' "$kas"
	if [[ "${CI:-}" == true ]]; then
		echo "export TORTIE_REQUIRE_SERVICES=1"
	fi
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
	# Sourced: export into the caller's shell.
	# Run as a child: `set -e` would not apply to the function called
	# inside this `if`.
	if _tortie_env="$(bash "${BASH_SOURCE[0]}")"; then
		eval "$_tortie_env"
		unset -v _tortie_env
		unset -f _tortie_test_env
		echo "test-env: TORTIE_ETCD=$TORTIE_ETCD TORTIE_KUBE_APISERVER=$TORTIE_KUBE_APISERVER${TORTIE_REQUIRE_SERVICES:+ TORTIE_REQUIRE_SERVICES=$TORTIE_REQUIRE_SERVICES}" >&2
	else
		unset -v _tortie_env
		unset -f _tortie_test_env
		echo "test-env: FAILED" >&2
		return 1
	fi
else
	set -euo pipefail
	_tortie_test_env
fi
