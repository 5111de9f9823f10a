#!/usr/bin/env bash
# Installs the Debian 12 packages that tortie's tests need. Idempotent: when
# every package is already installed it runs only dpkg-query and exits in a
# fraction of a second; otherwise it runs `apt-get update` once and installs
# the missing packages. Extra package names may be given as arguments.
#
#   ci/deps.sh [extra-package...]
set -euo pipefail

packages=(
	etcd-server                 # /usr/bin/etcd (3.4): testenv.EtcdProcess, KubeAPIServer
	etcd-client                 # etcdctl, for debugging the above
	iproute2                    # ip netns/link/route/rule
	iptables                    # iptables-{nft,legacy}, iptables-restore
	ipset
	nftables                    # nft
	conntrack                   # conntrack -D after policy changes
	containernetworking-plugins # reference CNI plugins in /usr/lib/cni (baseline)
	procps                      # ps, pkill, sysctl
	iputils-ping                # ping between namespaces
	kmod                        # modprobe/lsmod
	ca-certificates
)
packages+=("$@")

log() { echo "deps: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

if [[ "$(uname -s)" != Linux ]] || ! command -v dpkg-query >/dev/null 2>&1; then
	die "this script installs Debian packages; run it on Debian 12 (found $(uname -s) without dpkg)"
fi

# missing_packages prints the names among its arguments that are not fully
# installed, one per line (a single dpkg-query call: this is the fast path).
missing_packages() {
	local installed
	installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null | awk '$2 ~ /^ii/ { print $1 }' || true)"
	local p
	for p in "$@"; do
		grep -qxF -- "$p" <<<"$installed" || echo "$p"
	done
}

mapfile -t missing < <(missing_packages "${packages[@]}")

if ((${#missing[@]} == 0)); then
	exit 0
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
	command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
	sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)

log "installing: ${missing[*]}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! "${sudo[@]}" apt-get "${apt_opts[@]}" update >"$out" 2>&1; then
	cat "$out" >&2
	die "apt-get update failed"
fi
if ! "${sudo[@]}" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >"$out" 2>&1; then
	cat "$out" >&2
	die "apt-get install failed for: ${missing[*]}"
fi

# Verify: a package can be "installed" yet unusable if dpkg was interrupted.
mapfile -t still < <(missing_packages "${missing[@]}")
((${#still[@]} == 0)) || die "still not installed after apt-get install: ${still[*]}"
for bin in etcd ip iptables ipset nft; do
	[[ -x /usr/bin/$bin || -x /usr/sbin/$bin || -x /sbin/$bin || -x /bin/$bin ]] ||
		die "$bin not found after installing packages"
done
log "done"
