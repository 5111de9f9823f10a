package mtu

import (
	"fmt"
	"regexp"

	"github.com/tortie-net/tortie/common/startup/autodetect"
)

// DefaultIfacePattern is Calico's default FelixConfiguration mtuIfacePattern: the names of typical uplink
// interfaces (systemd predictable names en*/wl*/ww*/sl*/ib* followed by a type letter, and the classic
// eth*/wlan*/wwan*). Bonds, bridges and VLAN devices with other names are not matched; set the pattern
// to include them.
const DefaultIfacePattern = `^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)`

// FallbackHostMTU is the host MTU assumed when no UP interface matches the pattern: the smallest among
// common cloud providers (Calico's choice).
const FallbackHostMTU = 1460

// Encapsulation overheads in bytes.
const (
	OverheadIPIP        = 20
	OverheadVXLAN       = 50
	OverheadVXLANV6     = 70
	OverheadWireGuard   = 60
	OverheadWireGuardV6 = 80
)

var defaultPattern = regexp.MustCompile(DefaultIfacePattern)

// Encap is the set of enabled encapsulations and their configured device MTUs. A configured MTU of 0
// means "derive it from the host MTU"; a non-zero one wins (FelixConfiguration ipipMTU, vxlanMTU,
// vxlanMTUV6, wireguardMTU, wireguardMTUV6, or FELIX_IPINIPMTU etc., see FromEnv).
type Encap struct {
	IPIP, VXLAN, VXLANV6, WireGuard, WireGuardV6 bool

	IPIPMTU, VXLANMTU, VXLANMTUV6, WireGuardMTU, WireGuardMTUV6 int
}

// Result is the full MTU calculation.
type Result struct {
	// Host is the smallest MTU among the UP interfaces matching the pattern, or FallbackHostMTU.
	Host int
	// HostDetected is false when no interface matched and Host is the fallback.
	HostDetected bool
	// Device MTUs for each tunnel type: the configured value or Host minus the overhead. They are
	// computed whether or not the encapsulation is enabled, so a dataplane can size a device it is
	// about to enable.
	IPIP, VXLAN, VXLANV6, WireGuard, WireGuardV6 int
	// Pod is the MTU for workload interfaces: the smallest device MTU among the enabled
	// encapsulations, or Host when none is enabled. This is what goes into the MTU file.
	Pod int
	// Warning is set when a configured device MTU is larger than the host MTU (packets will be
	// fragmented or dropped), or when the host MTU was not detected.
	Warning string
}

// HostMTU returns the smallest MTU among interfaces that are Up and whose name matches pattern (nil
// means DefaultIfacePattern), and whether any matched; FallbackHostMTU if none did.
func HostMTU(ifaces []autodetect.Interface, pattern *regexp.Regexp) (int, bool) {
	if pattern == nil {
		pattern = defaultPattern
	}
	smallest := 0
	for _, ifc := range ifaces {
		if !ifc.Up || ifc.MTU <= 0 || !pattern.MatchString(ifc.Name) {
			continue
		}
		if smallest == 0 || ifc.MTU < smallest {
			smallest = ifc.MTU
		}
	}
	if smallest == 0 {
		return FallbackHostMTU, false
	}
	return smallest, true
}

// Compute derives the tunnel and pod MTUs from a host MTU.
func Compute(host int, e Encap) Result {
	r := Result{
		Host:         host,
		HostDetected: true,
		IPIP:         orDerived(e.IPIPMTU, host, OverheadIPIP),
		VXLAN:        orDerived(e.VXLANMTU, host, OverheadVXLAN),
		VXLANV6:      orDerived(e.VXLANMTUV6, host, OverheadVXLANV6),
		WireGuard:    orDerived(e.WireGuardMTU, host, OverheadWireGuard),
		WireGuardV6:  orDerived(e.WireGuardMTUV6, host, OverheadWireGuardV6),
	}
	for _, s := range []struct {
		on  bool
		mtu int
	}{
		{e.IPIP, r.IPIP}, {e.VXLAN, r.VXLAN}, {e.VXLANV6, r.VXLANV6}, {e.WireGuard, r.WireGuard}, {e.WireGuardV6, r.WireGuardV6},
	} {
		if s.on && (r.Pod == 0 || s.mtu < r.Pod) {
			r.Pod = s.mtu
		}
	}
	if r.Pod == 0 {
		r.Pod = host
	} else if r.Pod > host {
		r.Warning = fmt.Sprintf("the configured tunnel MTU %d is larger than the host MTU %d; lower it in the FelixConfiguration (ipipMTU, vxlanMTU, wireguardMTU, …) or unset it to derive it", r.Pod, host)
	}
	return r
}

// Calculate is HostMTU followed by Compute.
func Calculate(ifaces []autodetect.Interface, pattern *regexp.Regexp, e Encap) Result {
	host, found := HostMTU(ifaces, pattern)
	r := Compute(host, e)
	if !found {
		r.HostDetected = false
		p := DefaultIfacePattern
		if pattern != nil {
			p = pattern.String()
		}
		w := fmt.Sprintf("no UP interface matches the MTU interface pattern %q; assuming a host MTU of %d (set FelixConfiguration mtuIfacePattern or %s to match this host's uplinks)",
			p, FallbackHostMTU, EnvIfacePattern)
		if r.Warning != "" {
			w += "; " + r.Warning
		}
		r.Warning = w
	}
	return r
}

// Detect returns the pod MTU: the smallest MTU among UP interfaces matching pattern (nil =
// DefaultIfacePattern; FallbackHostMTU if none) minus the largest overhead of the enabled
// encapsulations, with configured device MTUs taking precedence. See Calculate for the details.
func Detect(ifaces []autodetect.Interface, pattern *regexp.Regexp, e Encap) int {
	return Calculate(ifaces, pattern, e).Pod
}

func orDerived(configured, host, overhead int) int {
	if configured != 0 {
		return configured
	}
	return host - overhead
}
