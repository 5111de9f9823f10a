//go:build linux

package dataplane

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/ipsets"
)

// tableKey names one iptables table of one family.
type tableKey struct {
	Name   string
	Family int
}

func (k tableKey) String() string { return fmt.Sprintf("%s/ipv%d", k.Name, k.Family) }

// tableState is what tortie wants in one table: its owned chains and its hook rules in built-in chains.
type tableState struct {
	Chains map[string][]string
	Hooks  map[string][]string
}

// hostState is the whole rendering of a desired state: every table and IP set tortie wants.
type hostState struct {
	Tables map[tableKey]*tableState
	Sets   map[string]ipsets.Set
}

var (
	markAccept = fmt.Sprintf("%#x", config.MarkAccept)
	markPass   = fmt.Sprintf("%#x", config.MarkPass)
	markMask   = fmt.Sprintf("%#x", config.MarkMask)

	ifAccepted = "-m mark --mark " + markAccept + "/" + markAccept
	ifNoPass   = "-m mark --mark 0x0/" + markPass
	ifPassed   = "-m mark --mark " + markPass + "/" + markPass
	clearMarks = "-j MARK --set-xmark 0x0/" + markMask
	clearPass  = "-j MARK --set-xmark 0x0/" + markPass
	setAccept  = "-j MARK --set-xmark " + markAccept + "/" + markAccept
	setPass    = "-j MARK --set-xmark " + markPass + "/" + markPass
	ctAccept   = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
	ctDrop     = "-m conntrack --ctstate INVALID -j DROP"
)

// dispatchTreeMin is the number of endpoints above which dispatch chains become a tree (one level,
// by the character after the interface prefix), so a packet tests a few dozen interface names rather
// than every endpoint's.
const dispatchTreeMin = 32

// renderer renders one desired state.
type renderer struct {
	s   *dpmodel.State
	cfg dpmodel.Config
	out *hostState
}

// render turns a desired state into the tables and IP sets that enforce it.
func render(s *dpmodel.State) *hostState {
	r := &renderer{s: s, out: &hostState{Tables: map[tableKey]*tableState{}, Sets: map[string]ipsets.Set{}}}
	if s.Config != nil {
		r.cfg = *s.Config
	}
	if len(r.cfg.InterfacePrefixes) == 0 {
		r.cfg.InterfacePrefixes = []string{config.DefaultInterfacePrefix}
	}
	fams := []int{4}
	if r.cfg.IPv6Enabled {
		fams = append(fams, 6)
	}
	for _, fam := range fams {
		r.family(fam)
	}
	return r.out
}

func (r *renderer) table(name string, fam int) *tableState {
	k := tableKey{name, fam}
	t, ok := r.out.Tables[k]
	if !ok {
		t = &tableState{Chains: map[string][]string{}, Hooks: map[string][]string{}}
		r.out.Tables[k] = t
	}
	return t
}

func (r *renderer) wlIfaces(neg bool) []string {
	var out []string
	for _, p := range r.cfg.InterfacePrefixes {
		if neg {
			out = append(out, "! -i "+p+"+")
		} else {
			out = append(out, "-i "+p+"+")
		}
	}
	return out
}

func (r *renderer) denyTarget(table string) string {
	if table == "filter" && strings.EqualFold(r.cfg.DenyAction, "Reject") {
		return "-j REJECT"
	}
	return "-j DROP"
}

func (r *renderer) family(fam int) {
	raw, mangle, nat, filter := r.table("raw", fam), r.table("mangle", fam), r.table("nat", fam), r.table("filter", fam)
	raw.Hooks["PREROUTING"] = []string{"-j " + chainPrerouting}
	raw.Hooks["OUTPUT"] = []string{"-j " + chainOutput}
	mangle.Hooks["PREROUTING"] = []string{"-j " + chainPrerouting}
	nat.Hooks["POSTROUTING"] = []string{"-j " + chainPostrouting}
	filter.Hooks["INPUT"] = []string{"-j " + chainInput}
	filter.Hooks["FORWARD"] = []string{"-j " + chainForward}
	filter.Hooks["OUTPUT"] = []string{"-j " + chainOutput}

	// IP sets the rules refer to exist in every rendered family, empty when they have no member of it.
	for id, set := range r.s.IPSets {
		typ := ipsets.HashNet
		if set.Type == dpmodel.IPSetIPPort {
			typ = ipsets.HashIPPort
		}
		var members []string
		for _, m := range set.Members {
			if m.Net.Addr().Is4() == (fam == 4) {
				members = append(members, setMembers(m)...)
			}
		}
		r.out.Sets[setName(fam, id)] = ipsets.Set{Type: typ, Family: fam, Members: members}
	}

	// Policies and profiles: one chain per direction, shared by every endpoint, in each table that uses
	// them (filter always; raw for doNotTrack, mangle for preDNAT).
	for id, p := range r.s.Policies {
		tbl := filter
		name := "filter"
		switch {
		case p.Untracked:
			tbl, name = raw, "raw"
		case p.PreDNAT:
			tbl, name = mangle, "mangle"
		}
		tbl.Chains[policyChain(id, true)] = r.ruleChain(name, fam, p.Inbound)
		tbl.Chains[policyChain(id, false)] = r.ruleChain(name, fam, p.Outbound)
	}
	for id, p := range r.s.Profiles {
		filter.Chains[profileChain(id, true)] = r.ruleChain("filter", fam, p.Inbound)
		filter.Chains[profileChain(id, false)] = r.ruleChain("filter", fam, p.Outbound)
	}

	r.workloads(fam, raw, filter)
	r.hostEndpoints(fam, raw, mangle, filter)
	r.natOutgoing(fam, nat)
}

// renderSets renders the IP sets with the given IDs of a state whose rules did not change since the
// rendering that produced last (which gives each set's type). Only the selector sets that changed are
// rendered, so a label change costs the same whatever the size of the state.
func renderSets(s *dpmodel.State, last map[string]ipsets.Set, ids map[string]bool) map[string]ipsets.Set {
	out := make(map[string]ipsets.Set, len(ids))
	fams := []int{4}
	if s.Config != nil && s.Config.IPv6Enabled {
		fams = append(fams, 6)
	}
	for id := range ids {
		set := s.IPSets[id]
		for _, fam := range fams {
			name := setName(fam, id)
			old, ok := last[name]
			if !ok {
				continue
			}
			var members []string
			for _, m := range set.Members {
				if m.Net.Addr().Is4() == (fam == 4) {
					members = append(members, setMembers(m)...)
				}
			}
			out[name] = ipsets.Set{Type: old.Type, Family: fam, Members: members}
		}
	}
	return out
}

// deltaRenderable reports whether each member of a delta renders to members of its own, so that the
// delta can be applied to the rendered sets directly: not a /0 (split in two halves another member
// may also be) and no port on a network.
func deltaRenderable(d dpmodel.IPSetDelta) bool {
	for _, ms := range [][]dpmodel.Member{d.Added, d.Removed} {
		for _, m := range ms {
			if m.Net.Bits() == 0 || (m.Protocol != 0 && !m.Net.IsSingleIP()) {
				return false
			}
		}
	}
	return true
}

// renderDelta renders a delta as the members to add and delete per rendered set (by name; a family
// that is not rendered has no set in last and is skipped).
func renderDelta(d dpmodel.IPSetDelta, last map[string]ipsets.Set) map[string][2][]string {
	out := map[string][2][]string{}
	for k, ms := range [][]dpmodel.Member{d.Added, d.Removed} {
		for _, m := range ms {
			m.Net = m.Net.Masked()
			fam := 4
			if !m.Net.Addr().Is4() {
				fam = 6
			}
			name := setName(fam, d.ID)
			if _, ok := last[name]; !ok {
				continue
			}
			ad := out[name]
			ad[k] = append(ad[k], setMembers(m)...)
			out[name] = ad
		}
	}
	return out
}

// setMembers renders a member as `ipset save` prints it. hash:net cannot hold a /0: it is split in two
// halves, as Felix does.
func setMembers(m dpmodel.Member) []string {
	if m.Protocol != 0 {
		return []string{fmt.Sprintf("%s,%s:%d", m.Net.Addr(), dpmodel.ProtoName(m.Protocol), m.Port)}
	}
	if m.Net.Bits() == 0 {
		if m.Net.Addr().Is4() {
			return []string{"0.0.0.0/1", "128.0.0.0/1"}
		}
		return []string{"::/1", "8000::/1"}
	}
	if m.Net.IsSingleIP() {
		return []string{m.Net.Addr().String()}
	}
	return []string{m.Net.String()}
}

func (r *renderer) workloads(fam int, raw, filter *tableState) {
	type wl struct {
		id dpmodel.WorkloadEndpointID
		w  dpmodel.WorkloadEndpoint
	}
	var wls []wl
	for id, w := range r.s.Workloads {
		if w.InterfaceName != "" {
			wls = append(wls, wl{id, w})
		}
	}
	slices.SortFunc(wls, func(a, b wl) int { return cmp.Compare(a.w.InterfaceName, b.w.InterfaceName) })

	ifaces := make([]string, 0, len(wls))
	for _, e := range wls {
		ifaces = append(ifaces, e.w.InterfaceName)
		filter.Chains[endpointChain("tw", e.w.InterfaceName)] = r.endpointChain("filter", fam, e.w.Tiers, e.w.ProfileIDs, true, true, true)
		filter.Chains[endpointChain("fw", e.w.InterfaceName)] = r.endpointChain("filter", fam, e.w.Tiers, e.w.ProfileIDs, false, true, true)
	}
	r.dispatch(filter, chainFromWL, "-i", "fw", ifaces, "-j DROP")
	r.dispatch(filter, chainToWL, "-o", "tw", ifaces, "-j DROP")

	// raw PREROUTING: clear tortie's marks; workloads may send only from addresses routed back through
	// their own interface (strict reverse path), except the prefixes they are allowed to spoof.
	pre := []string{clearMarks}
	for _, e := range wls {
		for _, p := range e.w.AllowSpoofedSourcePrefixes {
			if p.Addr().Is4() == (fam == 4) {
				pre = append(pre, fmt.Sprintf("-i %s -s %s -j RETURN", e.w.InterfaceName, p))
			}
		}
	}
	for _, m := range r.wlIfaces(false) {
		pre = append(pre, m+" -m rpfilter --invert -j DROP")
	}
	raw.Chains[chainPrerouting] = pre

	fwd := []string{clearMarks}
	for _, p := range r.cfg.InterfacePrefixes {
		fwd = append(fwd, fmt.Sprintf("-i %s+ -j %s", p, chainFromWL))
	}
	for _, p := range r.cfg.InterfacePrefixes {
		fwd = append(fwd, fmt.Sprintf("-o %s+ -j %s", p, chainToWL))
	}
	filter.Chains[chainForward] = fwd // host endpoints append theirs; the final accept is added last

	var toHost []string
	toHost = append(toHost, "-j "+chainFromWL)
	switch strings.ToLower(r.cfg.DefaultEndpointToHostAction) {
	case "accept":
		toHost = append(toHost, "-j ACCEPT")
	case "return":
		toHost = append(toHost, "-j RETURN")
	default:
		toHost = append(toHost, r.denyTarget("filter"))
	}
	filter.Chains[chainWLToHost] = toHost
	var in []string
	for _, p := range r.cfg.InterfacePrefixes {
		in = append(in, fmt.Sprintf("-i %s+ -g %s", p, chainWLToHost))
	}
	filter.Chains[chainInput] = in
	var out []string
	for _, p := range r.cfg.InterfacePrefixes {
		out = append(out, fmt.Sprintf("-o %s+ -j RETURN", p))
	}
	filter.Chains[chainOutput] = out
}

// dispatch renders a dispatch chain: a goto per interface to its endpoint chain, then def (what
// happens to an interface with no endpoint). Above dispatchTreeMin interfaces the chain branches on the
// character after the longest common interface prefix.
func (r *renderer) dispatch(t *tableState, base, flag, kind string, ifaces []string, def string) {
	if len(ifaces) <= dispatchTreeMin {
		var rules []string
		for _, i := range ifaces {
			rules = append(rules, fmt.Sprintf("%s %s -g %s", flag, i, endpointChain(kind, i)))
		}
		t.Chains[base] = append(rules, def)
		return
	}
	common := ifaces[0]
	for _, i := range ifaces[1:] {
		for !strings.HasPrefix(i, common) {
			common = common[:len(common)-1]
		}
	}
	groups := map[byte][]string{}
	var top []string
	for _, i := range ifaces {
		if len(i) == len(common) {
			top = append(top, fmt.Sprintf("%s %s -g %s", flag, i, endpointChain(kind, i)))
			continue
		}
		groups[i[len(common)]] = append(groups[i[len(common)]], i)
	}
	for _, c := range slices.Sorted(maps.Keys(groups)) {
		sub := dispatchSubchain(base, c)
		top = append(top, fmt.Sprintf("%s %s%c+ -g %s", flag, common, c, sub))
		var rules []string
		for _, i := range groups[c] {
			rules = append(rules, fmt.Sprintf("%s %s -g %s", flag, i, endpointChain(kind, i)))
		}
		t.Chains[sub] = append(rules, def)
	}
	t.Chains[base] = append(top, def)
}

// endpointChain renders one endpoint's policy for one direction: conntrack fast path (when tracked),
// then each tier's policies while no Pass, the tier's default action, then the profiles, then def.
// With profiles false (forward, preDNAT and untracked host endpoint chains) a packet no tier decided
// returns undecided.
func (r *renderer) endpointChain(table string, fam int, tiers []dpmodel.TierInfo, profiles []string, inbound, withProfiles, tracked bool) []string {
	var rules []string
	if tracked {
		rules = append(rules, ctAccept, ctDrop)
	}
	rules = append(rules, clearMarks)
	if !inbound && table == "filter" && withProfiles {
		// Workloads may not send tunnel packets of their own: they would bypass policy at the far end.
		if r.cfg.IPIPEnabled && fam == 4 {
			rules = append(rules, "-p 4 "+r.denyTarget(table))
		}
		if r.cfg.VXLANEnabled || r.cfg.VXLANEnabledV6 {
			port := r.cfg.VXLANPort
			if port == 0 {
				port = 4789
			}
			rules = append(rules, fmt.Sprintf("-p udp -m udp --dport %d %s", port, r.denyTarget(table)))
		}
	}
	for _, t := range tiers {
		ids := t.Egress
		if inbound {
			ids = t.Ingress
		}
		if len(ids) == 0 {
			continue
		}
		rules = append(rules, clearPass)
		for _, id := range ids {
			rules = append(rules, ifNoPass+" -j "+policyChain(id, inbound), ifAccepted+" -j RETURN")
		}
		if t.DefaultAction != dpmodel.Pass {
			rules = append(rules, ifNoPass+" "+r.denyTarget(table))
		}
	}
	if !withProfiles {
		return append(rules, "-j RETURN")
	}
	for _, p := range profiles {
		rules = append(rules, clearPass, "-j "+profileChain(p, inbound), ifAccepted+" -j RETURN")
	}
	return append(rules, r.denyTarget(table))
}

func (r *renderer) hostEndpoints(fam int, raw, mangle, filter *tableState) {
	type hep struct {
		id string
		h  dpmodel.HostEndpoint
	}
	var heps []hep
	for id, h := range r.s.HostEndpoints {
		if h.InterfaceName != "" {
			heps = append(heps, hep{id, h})
		}
	}
	// Named interfaces first (sorted), "*" last: a named host endpoint takes its interface's traffic.
	slices.SortFunc(heps, func(a, b hep) int {
		if (a.h.InterfaceName == "*") != (b.h.InterfaceName == "*") {
			if a.h.InterfaceName == "*" {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.h.InterfaceName, b.h.InterfaceName), cmp.Compare(a.id, b.id))
	})
	match := func(flag, iface string) string {
		if iface == "*" {
			return ""
		}
		return flag + " " + iface + " "
	}
	var fromH, toH, fromFwd, toFwd, fromRaw, toRaw, fromMangle []string
	seen := map[string]bool{}
	for _, e := range heps {
		i := e.h.InterfaceName
		if seen[i] {
			continue // two host endpoints on one interface: the first by name wins
		}
		seen[i] = true
		filter.Chains[endpointChain("fh", i)] = r.endpointChain("filter", fam, e.h.Tiers, e.h.ProfileIDs, true, true, true)
		filter.Chains[endpointChain("th", i)] = r.endpointChain("filter", fam, e.h.Tiers, e.h.ProfileIDs, false, true, true)
		fromH = append(fromH, match("-i", i)+"-g "+endpointChain("fh", i))
		toH = append(toH, match("-o", i)+"-g "+endpointChain("th", i))
		if hasTiers(e.h.ForwardTiers) {
			filter.Chains[endpointChain("fhfw", i)] = r.endpointChain("filter", fam, e.h.ForwardTiers, nil, true, false, true)
			filter.Chains[endpointChain("thfw", i)] = r.endpointChain("filter", fam, e.h.ForwardTiers, nil, false, false, true)
			fromFwd = append(fromFwd, match("-i", i)+"-g "+endpointChain("fhfw", i))
			toFwd = append(toFwd, match("-o", i)+"-g "+endpointChain("thfw", i))
		}
		if hasTiers(e.h.UntrackedTiers) {
			raw.Chains[endpointChain("fh", i)] = r.endpointChain("raw", fam, e.h.UntrackedTiers, nil, true, false, false)
			raw.Chains[endpointChain("th", i)] = r.endpointChain("raw", fam, e.h.UntrackedTiers, nil, false, false, false)
			fromRaw = append(fromRaw, match("-i", i)+"-g "+endpointChain("fh", i))
			toRaw = append(toRaw, match("-o", i)+"-g "+endpointChain("th", i))
		}
		if hasTiers(e.h.PreDNATTiers) {
			mangle.Chains[endpointChain("fh", i)] = r.endpointChain("mangle", fam, e.h.PreDNATTiers, nil, true, false, false)
			fromMangle = append(fromMangle, match("-i", i)+"-g "+endpointChain("fh", i))
		}
	}

	// filter: host endpoint policy for the host's own traffic, failsafe ports first.
	if len(heps) > 0 {
		filter.Chains[chainFromHEP] = append(fromH, "-j RETURN")
		filter.Chains[chainToHEP] = append(toH, "-j RETURN")
		filter.Chains[chainFailsafeIn] = failsafe(r.cfg.FailsafeInbound, fam, "--dport", "-s")
		filter.Chains[chainFailsafeOut] = failsafe(r.cfg.FailsafeOutbound, fam, "--dport", "-d")
		// Loopback is the host talking to itself: no host endpoint policy applies to it. Tunnel packets
		// between nodes carry pod traffic, which workload policy judges: host endpoint policy must not.
		tunIn, tunOut := r.tunnelFromHosts(fam)
		filter.Chains[chainInput] = append(append(filter.Chains[chainInput], "-i lo -j RETURN"), tunIn...)
		filter.Chains[chainInput] = append(filter.Chains[chainInput], clearMarks, "-j "+chainFailsafeIn,
			"-j "+chainFromHEP, ifAccepted+" -j ACCEPT")
		filter.Chains[chainOutput] = append(append(filter.Chains[chainOutput], "-o lo -j RETURN"), tunOut...)
		filter.Chains[chainOutput] = append(filter.Chains[chainOutput], clearMarks, "-j "+chainFailsafeOut,
			"-j "+chainToHEP, ifAccepted+" -j ACCEPT")
	}
	fwd := filter.Chains[chainForward]
	if len(fromFwd) > 0 {
		filter.Chains[chainFromHEPFwd] = append(fromFwd, "-j RETURN")
		filter.Chains[chainToHEPFwd] = append(toFwd, "-j RETURN")
		var notWL []string
		for _, p := range r.cfg.InterfacePrefixes {
			notWL = append(notWL, "! -i "+p+"+")
		}
		fwd = append(fwd, strings.Join(notWL, " ")+" -j "+chainFromHEPFwd)
		notWL = notWL[:0]
		for _, p := range r.cfg.InterfacePrefixes {
			notWL = append(notWL, "! -o "+p+"+")
		}
		fwd = append(fwd, strings.Join(notWL, " ")+" -j "+chainToHEPFwd)
	}
	filter.Chains[chainForward] = append(fwd, ifAccepted+" -j ACCEPT")

	// raw: untracked (doNotTrack) policy; an allowed packet is not tracked and skips the rest.
	rawOut := []string{clearMarks}
	if len(fromRaw) > 0 {
		raw.Chains[chainFromHEP] = append(fromRaw, "-j RETURN")
		raw.Chains[chainToHEP] = append(toRaw, "-j RETURN")
		var notWL []string
		for _, p := range r.cfg.InterfacePrefixes {
			notWL = append(notWL, "! -i "+p+"+")
		}
		raw.Chains[chainPrerouting] = append(raw.Chains[chainPrerouting], "-i lo -j RETURN", strings.Join(notWL, " ")+" -j "+chainFromHEP,
			ifAccepted+" -j NOTRACK", ifAccepted+" -j ACCEPT")
		rawOut = append(rawOut, "-o lo -j RETURN", "-j "+chainToHEP, ifAccepted+" -j NOTRACK", ifAccepted+" -j ACCEPT")
	}
	raw.Chains[chainOutput] = rawOut

	// mangle: preDNAT policy, for new flows arriving on host endpoints, before DNAT.
	// Without preDNAT policy the chain is empty: accepting here would skip other software's mangle rules.
	var pre []string
	if len(fromMangle) > 0 {
		pre = append(pre, ctAccept)
		mangle.Chains[chainFromHEP] = append(fromMangle, "-j RETURN")
		var notWL []string
		for _, p := range r.cfg.InterfacePrefixes {
			notWL = append(notWL, "! -i "+p+"+")
		}
		pre = append(pre, clearMarks, strings.Join(notWL, " ")+" -j "+chainFromHEP, ifAccepted+" -j ACCEPT")
	}
	mangle.Chains[chainPrerouting] = pre
}

// tunnelFromHosts renders the rules that accept the overlay's packets (VXLAN, IPIP) between this node
// and the other nodes ahead of host endpoint policy, as Felix does ("allow VXLAN packets from allowed
// hosts"): the set hostsSetName holds every node's underlay address and every VTEP's parent address.
func (r *renderer) tunnelFromHosts(fam int) (in, out []string) {
	vxlan := (fam == 4 && r.cfg.VXLANEnabled) || (fam == 6 && r.cfg.VXLANEnabledV6)
	ipip := fam == 4 && r.cfg.IPIPEnabled
	if !vxlan && !ipip {
		return nil, nil
	}
	var members []string
	add := func(a netip.Addr) {
		if a.IsValid() && a.Is4() == (fam == 4) {
			members = append(members, setMembers(dpmodel.Member{Net: netip.PrefixFrom(a, a.BitLen())})...)
		}
	}
	for _, h := range r.s.Hosts {
		add(h.IPv4.Addr())
		add(h.IPv6.Addr())
	}
	for _, v := range r.s.VTEPs {
		add(v.ParentIPv4)
		add(v.ParentIPv6)
	}
	slices.Sort(members)
	members = slices.Compact(members)
	set := hostsSetName(fam)
	r.out.Sets[set] = ipsets.Set{Type: ipsets.HashNet, Family: fam, Members: members}
	if vxlan {
		port := r.cfg.VXLANPort
		if port == 0 {
			port = 4789
		}
		in = append(in, fmt.Sprintf("-p udp -m udp --dport %d -m set --match-set %s src -m addrtype --dst-type LOCAL -j ACCEPT", port, set))
		out = append(out, fmt.Sprintf("-p udp -m udp --dport %d -m set --match-set %s dst -m addrtype --src-type LOCAL -j ACCEPT", port, set))
	}
	if ipip {
		in = append(in, fmt.Sprintf("-p 4 -m set --match-set %s src -m addrtype --dst-type LOCAL -j ACCEPT", set))
		out = append(out, fmt.Sprintf("-p 4 -m set --match-set %s dst -m addrtype --src-type LOCAL -j ACCEPT", set))
	}
	return in, out
}

func hasTiers(ts []dpmodel.TierInfo) bool {
	for _, t := range ts {
		if len(t.Ingress)+len(t.Egress) > 0 {
			return true
		}
	}
	return false
}

// failsafe renders failsafe ports: always accepted to and from the host, whatever host endpoint policy
// says, so a policy mistake cannot cut the node off (Felix's defaults: ssh, BGP, etcd, kube-apiserver).
func failsafe(ports []dpmodel.ProtoPort, fam int, portFlag, netFlag string) []string {
	var out []string
	for _, p := range ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		net := ""
		if p.Net.IsValid() {
			if p.Net.Addr().Is4() != (fam == 4) {
				continue
			}
			if p.Net.Bits() > 0 {
				net = netFlag + " " + p.Net.String() + " "
			}
		}
		out = append(out, fmt.Sprintf("-p %s %s-m %s %s %d -j ACCEPT", proto, net, proto, portFlag, p.Port))
	}
	return out
}

func (r *renderer) natOutgoing(fam int, nat *tableState) {
	nat.Chains[chainPostrouting] = []string{"-j " + chainNATOutgoing}
	var pools, masq []string
	for cidr, p := range r.s.Pools {
		if cidr.Addr().Is4() != (fam == 4) {
			continue
		}
		pools = append(pools, setMembers(dpmodel.Member{Net: cidr})...)
		if p.NATOutgoing && !p.Disabled {
			masq = append(masq, setMembers(dpmodel.Member{Net: cidr})...)
		}
	}
	slices.Sort(pools)
	slices.Sort(masq)
	if len(masq) == 0 {
		nat.Chains[chainNATOutgoing] = nil
		return
	}
	r.out.Sets[poolsSetName(fam)] = ipsets.Set{Type: ipsets.HashNet, Family: fam, Members: pools}
	r.out.Sets[masqSetName(fam)] = ipsets.Set{Type: ipsets.HashNet, Family: fam, Members: masq}
	target := "-j MASQUERADE --random-fully"
	if a := r.cfg.NATOutgoingAddress; a.IsValid() && a.Is4() == (fam == 4) {
		target = "-j SNAT --to-source " + a.String()
	}
	nat.Chains[chainNATOutgoing] = []string{fmt.Sprintf("-m set --match-set %s src -m set ! --match-set %s dst %s",
		masqSetName(fam), poolsSetName(fam), target)}
}

// ---- rules ----

// ruleChain renders a policy's or profile's rules for one direction.
func (r *renderer) ruleChain(table string, fam int, rules []dpmodel.Rule) []string {
	out := []string{}
	for i := range rules {
		rule := &rules[i]
		matches := r.ruleMatches(fam, rule)
		if len(matches) == 0 {
			continue
		}
		switch rule.Action {
		case dpmodel.Allow:
			for _, m := range matches {
				out = append(out, join(m, setAccept))
			}
			out = append(out, ifAccepted+" -j RETURN")
		case dpmodel.Pass:
			for _, m := range matches {
				out = append(out, join(m, setPass))
			}
			out = append(out, ifPassed+" -j RETURN")
		case dpmodel.Deny:
			for _, m := range matches {
				out = append(out, join(m, r.denyTarget(table)))
			}
		case dpmodel.Log:
			prefix := rule.LogPrefix
			if prefix == "" {
				prefix = r.cfg.LogPrefix
			}
			if prefix == "" {
				prefix = "tortie-packet"
			}
			if len(prefix) > 28 {
				prefix = prefix[:28]
			}
			prefix = strings.NewReplacer(`"`, "", `\`, "").Replace(prefix)
			for _, m := range matches {
				out = append(out, join(m, fmt.Sprintf("-j LOG --log-prefix \"%s \" --log-level 5", strings.TrimSpace(prefix))))
			}
		}
	}
	return out
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	return a + " " + b
}

// protoAlt is one protocol alternative of a rule: its match text and the protocol number (0: any).
type protoAlt struct {
	match string
	num   uint8
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	}
	return fmt.Sprint(p)
}

func portProto(p uint8) bool { return p == 6 || p == 17 || p == 132 }

// ruleMatches renders a rule's matches for one family as alternatives (the rule matches when any
// does); none when it cannot match in this family. Lists of CIDRs become IP sets; ORs that one
// iptables rule cannot express (port ranges or named ports, several protocols) become several rules.
func (r *renderer) ruleMatches(fam int, rule *dpmodel.Rule) []string {
	if rule.IPVersion != 0 && rule.IPVersion != fam {
		return nil
	}
	icmp := uint8(1)
	if fam == 6 {
		icmp = 58
	}
	wrongICMP := uint8(58)
	if fam == 6 {
		wrongICMP = 1
	}
	if rule.Protocol == wrongICMP {
		return nil
	}
	// Protocol alternatives.
	var alts []protoAlt
	switch {
	case rule.Protocol != 0:
		if rule.NotProtocol == rule.Protocol {
			return nil
		}
		alts = []protoAlt{{"-p " + protoName(rule.Protocol), rule.Protocol}}
	case rule.NotProtocol != 0:
		alts = []protoAlt{{"! -p " + protoName(rule.NotProtocol), 0}}
	default:
		alts = []protoAlt{{"", 0}}
	}
	needPorts := len(rule.SrcPorts)+len(rule.DstPorts)+len(rule.NotSrcPorts)+len(rule.NotDstPorts) > 0
	if needPorts {
		var next []protoAlt
		for _, a := range alts {
			if a.num != 0 {
				if portProto(a.num) {
					next = append(next, a)
				}
				continue
			}
			for _, p := range []uint8{6, 17, 132} {
				if p != rule.NotProtocol {
					next = append(next, protoAlt{"-p " + protoName(p), p})
				}
			}
		}
		alts = next
	}
	if rule.ICMP != nil {
		var next []protoAlt
		for _, a := range alts {
			if a.num == icmp || (a.num == 0 && rule.NotProtocol != icmp) {
				next = append(next, protoAlt{fmt.Sprintf("-p %s %s", protoName(icmp), icmpMatch(fam, rule.ICMP, false)), icmp})
			}
		}
		alts = next
	}
	if rule.NotICMP != nil {
		var next []protoAlt
		for _, a := range alts {
			switch {
			case a.num == icmp:
				next = append(next, protoAlt{a.match + " " + icmpMatch(fam, rule.NotICMP, true), icmp})
			case a.num == 0 && a.match == "":
				next = append(next, protoAlt{"! -p " + protoName(icmp), 0},
					protoAlt{fmt.Sprintf("-p %s %s", protoName(icmp), icmpMatch(fam, rule.NotICMP, true)), icmp})
			default:
				// Another protocol, or "not protocol X" (which cannot also say "not icmp" in one rule):
				// ICMP packets with the excluded type are rare enough that Felix, too, only renders
				// notICMP with an ICMP protocol.
				next = append(next, a)
			}
		}
		alts = next
	}
	if len(alts) == 0 {
		return nil
	}

	src, ok := r.addrMatches(fam, "-s", "src", rule.SrcNets, rule.NotSrcNets, rule.SrcIPSetIDs, rule.NotSrcIPSetIDs)
	if !ok {
		return nil
	}
	dst, ok := r.addrMatches(fam, "-d", "dst", rule.DstNets, rule.NotDstNets, rule.DstIPSetIDs, rule.NotDstIPSetIDs)
	if !ok {
		return nil
	}
	var out []string
	for _, a := range alts {
		srcPorts := r.portMatches(fam, a.num, "--sports", "src,src", rule.SrcPorts, rule.NotSrcPorts, rule.SrcNamedPortIPSetIDs, rule.NotSrcNamedPortIPSetIDs)
		dstPorts := r.portMatches(fam, a.num, "--dports", "dst,dst", rule.DstPorts, rule.NotDstPorts, rule.DstNamedPortIPSetIDs, rule.NotDstNamedPortIPSetIDs)
		for _, sp := range srcPorts {
			for _, dp := range dstPorts {
				var parts []string
				for _, p := range []string{a.match, src, dst, sp, dp} {
					if p != "" {
						parts = append(parts, p)
					}
				}
				out = append(out, strings.Join(parts, " "))
			}
		}
	}
	return out
}

func icmpMatch(fam int, m *dpmodel.ICMPMatch, neg bool) string {
	tc := fmt.Sprint(m.Type)
	if m.Code != nil {
		tc += fmt.Sprintf("/%d", *m.Code)
	}
	not := ""
	if neg {
		not = "! "
	}
	if fam == 6 {
		return fmt.Sprintf("-m icmp6 %s--icmpv6-type %s", not, tc)
	}
	return fmt.Sprintf("-m icmp %s--icmp-type %s", not, tc)
}

// addrMatches renders one side's address conditions (all AND-ed); ok is false when they cannot match
// in this family.
func (r *renderer) addrMatches(fam int, flag, dir string, nets, notNets []netip.Prefix, sets, notSets []string) (string, bool) {
	var parts []string
	pos := famNets(fam, nets)
	if len(nets) > 0 {
		if len(pos) == 0 {
			return "", false
		}
		if !slices.ContainsFunc(pos, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
			if len(pos) == 1 {
				parts = append(parts, flag+" "+pos[0].String())
			} else {
				parts = append(parts, fmt.Sprintf("-m set --match-set %s %s", r.netsSet(fam, pos), dir))
			}
		}
	}
	neg := famNets(fam, notNets)
	if slices.ContainsFunc(neg, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		return "", false
	}
	if len(neg) == 1 && len(parts) == 0 {
		parts = append(parts, "! "+flag+" "+neg[0].String())
	} else if len(neg) > 0 {
		parts = append(parts, fmt.Sprintf("-m set ! --match-set %s %s", r.netsSet(fam, neg), dir))
	}
	for _, id := range sets {
		parts = append(parts, fmt.Sprintf("-m set --match-set %s %s", setName(fam, id), dir))
	}
	for _, id := range notSets {
		parts = append(parts, fmt.Sprintf("-m set ! --match-set %s %s", setName(fam, id), dir))
	}
	return strings.Join(parts, " "), true
}

func famNets(fam int, nets []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		if n.Addr().Is4() == (fam == 4) {
			out = append(out, n.Masked())
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return cmp.Or(a.Addr().Compare(b.Addr()), a.Bits()-b.Bits()) })
	return slices.Compact(out)
}

// netsSet registers the IP set holding a rule's CIDR list and returns its name.
func (r *renderer) netsSet(fam int, nets []netip.Prefix) string {
	name := netsSetName(fam, nets)
	var members []string
	for _, n := range nets {
		members = append(members, setMembers(dpmodel.Member{Net: n})...)
	}
	r.out.Sets[name] = ipsets.Set{Type: ipsets.HashNet, Family: fam, Members: members}
	return name
}

// portMatches renders one side's port conditions as alternatives: the positive ranges (multiport, 15
// ports per match) or any positive named-port set; every negative condition is AND-ed to each.
func (r *renderer) portMatches(fam int, proto uint8, flag, dir string, ports, notPorts []dpmodel.PortRange, named, notNamed []string) []string {
	var neg []string
	if len(notPorts) > 0 && portProto(proto) {
		for _, chunk := range portChunks(notPorts) {
			neg = append(neg, fmt.Sprintf("-m multiport ! %s %s", flag, chunk))
		}
	}
	for _, id := range notNamed {
		neg = append(neg, fmt.Sprintf("-m set ! --match-set %s %s", setName(fam, id), dir))
	}
	negText := strings.Join(neg, " ")
	if len(ports) == 0 && len(named) == 0 {
		return []string{negText}
	}
	var alts []string
	if len(ports) > 0 && portProto(proto) {
		for _, chunk := range portChunks(ports) {
			alts = append(alts, join(fmt.Sprintf("-m multiport %s %s", flag, chunk), negText))
		}
	}
	for _, id := range named {
		alts = append(alts, join(fmt.Sprintf("-m set --match-set %s %s", setName(fam, id), dir), negText))
	}
	return alts
}

// portChunks splits port ranges into multiport lists of at most 15 ports (a range counts twice).
func portChunks(ports []dpmodel.PortRange) []string {
	var out []string
	var cur []string
	n := 0
	for _, p := range ports {
		w := 1
		if p.First != p.Last {
			w = 2
		}
		if n+w > 15 {
			out = append(out, strings.Join(cur, ","))
			cur, n = nil, 0
		}
		cur = append(cur, p.String())
		n += w
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, ","))
	}
	return out
}
