//go:build linux

package cni

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// sysctl is one /proc/sys setting. Path is relative to /proc/sys and built
// from components, not from a dotted name: interface names may contain dots.
type sysctl struct {
	path  string
	value string
}

func (s sysctl) String() string { return s.path + "=" + s.value }

// procSys is where sysctls are read and written. /proc/sys/net shows the
// network namespace of the thread that opens the file, which is why every
// read and write happens on a thread known to be in the right namespace.
const procSys = "/proc/sys"

func netConf(family, ifName, key, value string) sysctl {
	return sysctl{path: filepath.Join("net", family, "conf", ifName, key), value: value}
}

// hostSysctls are the settings on the host end of a pod's veth (Calico's set,
// plus addr_gen_mode; see doc.go). Order matters: disable_ipv6 first, because
// the other IPv6 keys are meaningless while IPv6 is off on the device.
func hostSysctls(ifName string, v4, v6 bool) []sysctl {
	var out []sysctl
	if v4 {
		out = append(out,
			netConf("ipv4", ifName, "route_localnet", "1"),
			sysctl{path: filepath.Join("net", "ipv4", "neigh", ifName, "proxy_delay"), value: "0"},
			netConf("ipv4", ifName, "proxy_arp", "1"),
			netConf("ipv4", ifName, "forwarding", "1"),
		)
	}
	if v6 {
		out = append(out,
			netConf("ipv6", ifName, "disable_ipv6", "0"),
			netConf("ipv6", ifName, "accept_dad", "0"),
			// The pod's IPv6 default route names fe80::ecee:eeff:feee:eeee,
			// the EUI-64 address of ee:ee:ee:ee:ee:ee. Pin EUI-64 so a node
			// default of stable_privacy (mode 2/3) cannot give the host end
			// a different link-local address and black-hole the pod.
			netConf("ipv6", ifName, "addr_gen_mode", "0"),
			netConf("ipv6", ifName, "proxy_ndp", "1"),
			netConf("ipv6", ifName, "forwarding", "1"),
			netConf("ipv6", ifName, "accept_ra", "0"),
		)
	}
	return out
}

// containerSysctls are written inside the pod namespace when it gets IPv6:
// IPv6 on (the runtime may have created the namespace with it off, and then
// no address or route can be added) and DAD off on the pod interface, so its
// link-local address is usable without the ~1 s DAD delay.
func containerSysctls(ifName string) []sysctl {
	return []sysctl{
		{path: "net/ipv6/conf/all/disable_ipv6", value: "0"},
		{path: "net/ipv6/conf/default/disable_ipv6", value: "0"},
		{path: "net/ipv6/conf/lo/disable_ipv6", value: "0"},
		netConf("ipv6", ifName, "accept_dad", "0"),
	}
}

// writeSysctls writes each setting in order on the calling thread, whose
// network namespace is described by where (for errors).
func writeSysctls(where string, list []sysctl) error {
	for _, s := range list {
		p := filepath.Join(procSys, s.path)
		if err := os.WriteFile(p, []byte(s.value), 0); err != nil {
			return fmt.Errorf("setting %s in %s: %w", s, where, err)
		}
	}
	return nil
}

// checkSysctls reads each setting on the calling thread and describes every
// one that differs.
func checkSysctls(where string, list []sysctl) []error {
	var errs []error
	for _, s := range list {
		b, err := os.ReadFile(filepath.Join(procSys, s.path))
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s in %s: %w", s.path, where, err))
			continue
		}
		if got := string(bytes.TrimSpace(b)); got != s.value {
			errs = append(errs, fmt.Errorf("%s is %s in %s, want %s", s.path, got, where, s.value))
		}
	}
	return errs
}
