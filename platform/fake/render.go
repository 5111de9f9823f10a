package fake

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// Render renders a state as stable text: one block per object kind in dependency order (config, IP
// sets, profiles, policies, workload endpoints, host endpoints, pools, hosts, VTEPs, routes), each
// sorted by ID, one object per line (rules indented below their policy). Empty fields are left out, so
// a golden file changes only where the state does. An empty state renders as "".
func Render(s *dpmodel.State) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	if c := s.Config; c != nil {
		line("config%s", fields(
			"node", c.NodeName, "interface-prefixes", strings.Join(c.InterfacePrefixes, ","),
			"endpoint-to-host", c.DefaultEndpointToHostAction,
			"failsafe-in", joinStrings(c.FailsafeInbound), "failsafe-out", joinStrings(c.FailsafeOutbound),
			"ipv6", c.IPv6Enabled, "ipip", c.IPIPEnabled, "vxlan", c.VXLANEnabled, "vxlan-v6", c.VXLANEnabledV6,
			"vxlan-port", c.VXLANPort, "vxlan-vni", c.VXLANVNI, "ipip-mtu", c.IPIPMTU, "vxlan-mtu", c.VXLANMTU,
			"vxlan-mtu-v6", c.VXLANMTUV6, "nat-outgoing-address", addrString(c.NATOutgoingAddress),
			"log-prefix", c.LogPrefix, "deny-action", c.DenyAction))
	}
	for _, id := range sorted(s.IPSets, cmp.Compare[string]) {
		set := s.IPSets[id]
		line("ipset %s %s%s", id, set.Type, fields("members", joinStrings(set.Members)))
	}
	for _, id := range sorted(s.Profiles, cmp.Compare[string]) {
		p := s.Profiles[id]
		line("profile %s", id)
		rules(&b, p.Inbound, p.Outbound)
	}
	for _, id := range sorted(s.Policies, dpmodel.PolicyID.Compare) {
		p := s.Policies[id]
		line("policy %s%s", id, fields("untracked", p.Untracked, "pre-dnat", p.PreDNAT, "apply-on-forward", p.ApplyOnForward,
			"invalid", p.Invalid, "reason", p.Reason))
		rules(&b, p.Inbound, p.Outbound)
	}
	for _, id := range sorted(s.Workloads, func(a, b dpmodel.WorkloadEndpointID) int { return cmp.Compare(a.String(), b.String()) }) {
		w := s.Workloads[id]
		line("workload %s%s", id, fields("pod", w.Pod, "iface", w.InterfaceName, "mac", w.MAC,
			"ipv4", joinStrings(w.IPv4Nets), "ipv6", joinStrings(w.IPv6Nets), "tiers", tiers(w.Tiers),
			"profiles", strings.Join(w.ProfileIDs, ","), "allow-spoofed", joinStrings(w.AllowSpoofedSourcePrefixes)))
	}
	for _, id := range sorted(s.HostEndpoints, cmp.Compare[string]) {
		h := s.HostEndpoints[id]
		line("hostendpoint %s%s", id, fields("iface", h.InterfaceName, "expected-ips", joinStrings(h.ExpectedIPs),
			"tiers", tiers(h.Tiers), "untracked-tiers", tiers(h.UntrackedTiers), "pre-dnat-tiers", tiers(h.PreDNATTiers),
			"forward-tiers", tiers(h.ForwardTiers), "profiles", strings.Join(h.ProfileIDs, ",")))
	}
	for _, c := range sorted(s.Pools, comparePrefix) {
		p := s.Pools[c]
		line("pool %s%s", c, fields("ipip", p.IPIPMode, "vxlan", p.VXLANMode, "nat-outgoing", p.NATOutgoing, "disabled", p.Disabled))
	}
	for _, n := range sorted(s.Hosts, cmp.Compare[string]) {
		h := s.Hosts[n]
		line("host %s%s", n, fields("ipv4", prefixString(h.IPv4), "ipv6", prefixString(h.IPv6)))
	}
	for _, n := range sorted(s.VTEPs, cmp.Compare[string]) {
		v := s.VTEPs[n]
		line("vtep %s%s", n, fields("tunnel-ipv4", addrString(v.TunnelIPv4), "mac-v4", v.MACv4, "parent-ipv4", addrString(v.ParentIPv4),
			"tunnel-ipv6", addrString(v.TunnelIPv6), "mac-v6", v.MACv6, "parent-ipv6", addrString(v.ParentIPv6)))
	}
	for _, dst := range sorted(s.Routes, comparePrefix) {
		r := s.Routes[dst]
		line("route %s %s%s", dst, r.Type, fields("encap", r.Encap, "node", r.DstNode, "node-ip", addrString(r.DstNodeIP),
			"iface", r.InterfaceName, "same-subnet", r.SameSubnet, "borrowed", r.Borrowed, "pool", prefixString(r.PoolCIDR),
			"nat-outgoing", r.NATOutgoing))
	}
	return b.String()
}

func rules(b *strings.Builder, in, out []dpmodel.Rule) {
	for dir, rs := range [][]dpmodel.Rule{in, out} {
		name := [...]string{"in", "out"}[dir]
		for i := range rs {
			fmt.Fprintf(b, "  %s %s\n", name, RuleString(&rs[i]))
		}
	}
}

// RuleString renders a rule on one line: its action, then every non-empty match in a fixed order.
func RuleString(r *dpmodel.Rule) string {
	icmp := func(m *dpmodel.ICMPMatch) string {
		if m == nil {
			return ""
		}
		if m.Code == nil {
			return fmt.Sprint(m.Type)
		}
		return fmt.Sprintf("%d/%d", m.Type, *m.Code)
	}
	proto := func(p uint8) string {
		if p == 0 {
			return ""
		}
		return dpmodel.ProtoName(p)
	}
	var annotations []string
	for _, k := range slices.Sorted(maps.Keys(r.Annotations)) {
		annotations = append(annotations, k+"="+r.Annotations[k])
	}
	return r.Action.String() + fields("ipv", r.IPVersion, "proto", proto(r.Protocol), "!proto", proto(r.NotProtocol),
		"src-nets", joinStrings(r.SrcNets), "!src-nets", joinStrings(r.NotSrcNets),
		"src-sets", strings.Join(r.SrcIPSetIDs, ","), "!src-sets", strings.Join(r.NotSrcIPSetIDs, ","),
		"src-ports", joinStrings(r.SrcPorts), "!src-ports", joinStrings(r.NotSrcPorts),
		"src-named-ports", strings.Join(r.SrcNamedPortIPSetIDs, ","), "!src-named-ports", strings.Join(r.NotSrcNamedPortIPSetIDs, ","),
		"dst-nets", joinStrings(r.DstNets), "!dst-nets", joinStrings(r.NotDstNets),
		"dst-sets", strings.Join(r.DstIPSetIDs, ","), "!dst-sets", strings.Join(r.NotDstIPSetIDs, ","),
		"dst-ports", joinStrings(r.DstPorts), "!dst-ports", joinStrings(r.NotDstPorts),
		"dst-named-ports", strings.Join(r.DstNamedPortIPSetIDs, ","), "!dst-named-ports", strings.Join(r.NotDstNamedPortIPSetIDs, ","),
		"icmp", icmp(r.ICMP), "!icmp", icmp(r.NotICMP), "log-prefix", r.LogPrefix, "id", r.ID,
		"annotations", strings.Join(annotations, ","))
}

func tiers(ts []dpmodel.TierInfo) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s[default=%s in=%s out=%s]", t.Name, t.DefaultAction,
			joinStrings(t.Ingress), joinStrings(t.Egress)))
	}
	return strings.Join(parts, ";")
}

// fields renders name/value pairs as " name=value", leaving out zero values.
func fields(kv ...any) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		var s string
		switch v := kv[i+1].(type) {
		case string:
			s = v
		case bool:
			if v {
				s = "true"
			}
		case int:
			if v != 0 {
				s = fmt.Sprint(v)
			}
		case fmt.Stringer:
			s = v.String()
		default:
			s = fmt.Sprint(v)
		}
		if s == "" {
			continue
		}
		fmt.Fprintf(&b, " %s=%s", kv[i], s)
	}
	return b.String()
}

func joinStrings[T fmt.Stringer](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func sorted[K comparable, V any](m map[K]V, f func(a, b K) int) []K {
	return slices.SortedFunc(maps.Keys(m), f)
}
