package cni

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/ipam"
)

// addrRequest is what a pod asks IPAM for, after applying its annotations, its namespace's
// annotations, CNI_ARGS and the network configuration.
type addrRequest struct {
	// IPv4Pools and IPv6Pools restrict auto-assignment (pod > namespace > netconf).
	IPv4Pools, IPv6Pools []string
	// PoolsFrom says where the pools came from, for messages.
	PoolsFrom string
	// Specific addresses (ipAddrs annotation, else CNI_ARGS IP=) are assigned through IPAM instead of
	// auto-assigning.
	Specific     []netip.Addr
	SpecificFrom string
	// NoIPAM addresses (ipAddrsNoIpam, when feature_control.ip_addrs_no_ipam is on) bypass IPAM.
	NoIPAM []netip.Addr
	// MAC is the pod interface's MAC (hwAddr annotation).
	MAC net.HardwareAddr
}

// addrRequestFor applies, in Calico's precedence, the pod's and its namespace's annotations (pod may
// be nil: etcd datastore without Kubernetes access), CNI_ARGS and the network configuration. Errors
// are *ipam.AnnotationError (or code-7 errors for CNI_ARGS).
func addrRequestFor(conf *NetConf, pod *PodInfo, args Args) (addrRequest, error) {
	r := addrRequest{IPv4Pools: conf.IPAM.IPv4Pools, IPv6Pools: conf.IPAM.IPv6Pools, PoolsFrom: "the network configuration"}
	if pod != nil {
		// ipv4pools/ipv6pools (pod over namespace, per family) and ipAddrs (pod only) are common/ipam's.
		sel, err := ipam.ParsePoolAnnotations(pod.Annotations, pod.NamespaceAnnotations)
		if err != nil {
			return r, err
		}
		if sel.IPv4Pools != nil {
			r.IPv4Pools = sel.IPv4Pools
		}
		if sel.IPv6Pools != nil {
			r.IPv6Pools = sel.IPv6Pools
		}
		if src := sel.Sources[api.AnnotationIPv4Pools] + sel.Sources[api.AnnotationIPv6Pools]; src != "" {
			r.PoolsFrom = "the " + strings.Join(slices.Compact(slices.Sorted(maps.Values(sel.Sources))), " and ") + " pool annotations"
		}
		if len(sel.IPAddrs) > 0 {
			r.Specific, r.SpecificFrom = sel.IPAddrs, "the pod's "+api.AnnotationIPAddrs+" annotation"
		}

		noIPAM, okNo, err := parseAddrList("pod", pod.Annotations, api.AnnotationIPAddrsNoIpam)
		if err != nil {
			return r, err
		}
		switch {
		case okNo && len(sel.IPAddrs) > 0:
			return r, &ipam.AnnotationError{Annotation: api.AnnotationIPAddrs, Source: "pod", Value: pod.Annotations[api.AnnotationIPAddrs],
				Reason: "cannot be used together with " + api.AnnotationIPAddrsNoIpam + "; remove one of them"}
		case okNo && !conf.FeatureControl.IPAddrsNoIPAM:
			return r, &ipam.AnnotationError{Annotation: api.AnnotationIPAddrsNoIpam, Source: "pod", Value: pod.Annotations[api.AnnotationIPAddrsNoIpam],
				Reason: "is disabled: set \"feature_control\": {\"ip_addrs_no_ipam\": true} in the network configuration to allow it"}
		case okNo:
			r.NoIPAM = noIPAM
		}
		if mac := strings.TrimSpace(pod.Annotations[api.AnnotationHwAddr]); mac != "" {
			hw, err := net.ParseMAC(mac)
			if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
				return r, &ipam.AnnotationError{Annotation: api.AnnotationHwAddr, Source: "pod", Value: mac,
					Reason: "is not a unicast Ethernet MAC address (write it as 02:00:00:00:00:01)"}
			}
			r.MAC = hw
		}
	}
	if len(r.Specific) == 0 && len(r.NoIPAM) == 0 && len(args.IPs) > 0 {
		for _, s := range args.IPs {
			a, err := parseAddr(s)
			if err != nil {
				return r, Errorf(CodeInvalidEnvironment, "CNI_ARGS: IP=%s: %q is not an IP address", strings.Join(args.IPs, ","), s)
			}
			r.Specific = append(r.Specific, a)
		}
		r.SpecificFrom = "CNI_ARGS IP="
	}
	return r, nil
}

// parseAddrList reads a JSON list of addresses. ok is false when the annotation is absent.
func parseAddrList(source string, ann map[string]string, key string) ([]netip.Addr, bool, error) {
	raw, ok := ann[key]
	if !ok {
		return nil, false, nil
	}
	bad := func(reason string) error {
		return &ipam.AnnotationError{Annotation: key, Source: source, Value: raw, Reason: reason}
	}
	var list []string
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, false, bad(`must be a JSON list of IP addresses, e.g. ["10.1.2.3"] or ["10.1.2.3", "fd00::3"]`)
	}
	if len(list) == 0 {
		return nil, false, bad("is an empty list")
	}
	var out []netip.Addr
	var v4, v6 int
	for _, s := range list {
		a, err := parseAddr(s)
		if err != nil {
			return nil, false, bad(fmt.Sprintf("has %q, which is not an IP address", s))
		}
		for _, o := range out {
			if o == a {
				return nil, false, bad(fmt.Sprintf("lists %s twice", a))
			}
		}
		if a.Is4() {
			v4++
		} else {
			v6++
		}
		out = append(out, a)
	}
	if v4 > 1 || v6 > 1 {
		return nil, false, bad("lists more than one address of a family: a pod gets at most one IPv4 and one IPv6 address")
	}
	return out, true, nil
}

// parseAddr accepts an address, or a CIDR whose address is taken.
func parseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %s has a zone", s)
	}
	return a.Unmap(), nil
}
