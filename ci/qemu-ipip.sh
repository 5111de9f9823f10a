#!/usr/bin/env bash
# Runs linux/routing's TestKernelIPIP in a Debian kernel under qemu. The development and CI machine's
# kernel has no ipip module (TestKernelIPIP skips there); Debian's stock kernel has it. The VM boots an
# initramfs holding busybox, the modules (veth, tunnel4, ip_tunnel, ipip), and the static test binary;
# /init loads the modules, runs the one test and powers off. TCG only (KVM hangs here); about a minute.
#
#   bash ci/qemu-ipip.sh            (root; installs qemu-system-x86, busybox-static, cpio)
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/deps.sh qemu-system-x86 busybox-static cpio xz-utils

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt-get download runs as _apt
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tortie/qemu-kernel"

# The kernel image package linux-image-amd64 currently depends on, cached by name.
pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
[[ -n "$pkg" ]] || { echo "qemu-ipip: cannot find the kernel package linux-image-amd64 depends on (apt-get update?)" >&2; exit 1; }
kdir="$cache/$pkg"
mods=(veth tunnel4 ip_tunnel ipip)
if [[ ! -f "$kdir/vmlinuz" ]]; then
	echo "qemu-ipip: downloading $pkg" >&2
	(cd "$work" && apt-get download "$pkg" >/dev/null)
	dpkg-deb -x "$work"/"$pkg"_*.deb "$work/k"
	mkdir -p "$kdir.tmp"
	cp "$work"/k/boot/vmlinuz-* "$kdir.tmp/vmlinuz"
	for m in "${mods[@]}"; do
		f="$(find "$work/k/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" | head -n1)"
		[[ -n "$f" ]] || { echo "qemu-ipip: $m.ko not in $pkg" >&2; exit 1; }
		case "$f" in
		*.xz) xz -dc "$f" >"$kdir.tmp/$m.ko" ;;
		*) cp "$f" "$kdir.tmp/$m.ko" ;;
		esac
	done
	rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
	rm -rf "$work/k" "$work"/*.deb
fi

root="$work/root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,run,var,mods}
ln -s /run "$root/var/run"
cp /bin/busybox "$root/bin/busybox"
for m in "${mods[@]}"; do cp "$kdir/$m.ko" "$root/mods/"; done
echo "qemu-ipip: building the test binary" >&2
CGO_ENABLED=0 go test -c -o "$root/routing.test" ./linux/routing
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
for m in veth tunnel4 ip_tunnel ipip; do insmod /mods/$m.ko || echo "qemu-ipip: insmod $m failed"; done
cd /tmp
if HOME=/tmp TMPDIR=/tmp /routing.test -test.run '^TestKernelIPIP$' -test.v -test.count=1; then
	echo "QEMU-IPIP-RESULT: ok"
else
	echo "QEMU-IPIP-RESULT: failed"
fi
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

echo "qemu-ipip: booting $pkg" >&2
timeout 900 qemu-system-x86_64 -m 1024 -smp 1 -nographic -no-reboot -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet" </dev/null | tee "$work/console.log" | grep -v '^\s*$' >&2 || true
if grep -q '^--- PASS: TestKernelIPIP' "$work/console.log" && grep -q 'QEMU-IPIP-RESULT: ok' "$work/console.log"; then
	echo "qemu-ipip: TestKernelIPIP passed in $pkg" >&2
	exit 0
fi
echo "qemu-ipip: TestKernelIPIP did not pass in $pkg (console above)" >&2
exit 1
