//go:build linux

package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
	"github.com/tortie-net/tortie/linux/iptables"
)

// flow is one conntrack entry's original direction.
type flow struct {
	proto              uint8
	src, dst           netip.Addr
	sport, dport       uint16
	icmpType, icmpCode uint8
	line               string
}

// localAddrs is the set of addresses of some local endpoints: exact addresses (a workload's /32 or /128,
// a host endpoint's expected IPs) in a map, wider workload prefixes in a list.
type localAddrs struct {
	hosts map[netip.Addr]bool
	nets  []netip.Prefix
	v4    bool // an IPv4 address or prefix is present
	v6    bool
}

func (l *localAddrs) addPrefix(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	if p.Addr().Is4() {
		l.v4 = true
	} else {
		l.v6 = true
	}
	if p.IsSingleIP() {
		l.hosts[p.Addr()] = true
		return
	}
	l.nets = append(l.nets, p.Masked())
}

func (l *localAddrs) contains(a netip.Addr) bool {
	if l.hosts[a] {
		return true
	}
	for _, p := range l.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *localAddrs) empty() bool { return !l.v4 && !l.v6 }

// affectedAddrs returns the addresses of the local endpoints whose verdicts can differ between prev and
// next: an endpoint added, changed (addresses, policy or profile lists) or removed, or one that lists a
// policy or profile that was added, changed or removed or whose rules use an IP set that changed. A
// flow's verdict (dpeval.Side on both ends) depends only on the endpoints owning its source and
// destination, their policies and profiles, and those rules' IP sets, so a flow with neither end in the
// result keeps its verdict and cannot be newly denied. Addresses of both states are included: an
// endpoint whose address moved is judged at the old and the new one.
func affectedAddrs(prev, next *dpmodel.State) *localAddrs {
	out := &localAddrs{hosts: map[netip.Addr]bool{}}
	sets := map[string]bool{}
	for id, s := range next.IPSets {
		if o, ok := prev.IPSets[id]; !ok || !reflect.DeepEqual(o, s) {
			sets[id] = true
		}
	}
	for id := range prev.IPSets {
		if _, ok := next.IPSets[id]; !ok {
			sets[id] = true
		}
	}
	usesChangedSet := func(lists ...[]dpmodel.Rule) bool {
		for _, rules := range lists {
			for i := range rules {
				if slices.ContainsFunc(rules[i].IPSetRefs(), func(id string) bool { return sets[id] }) {
					return true
				}
			}
		}
		return false
	}
	policies := changedOwners(prev.Policies, next.Policies, func(p dpmodel.Policy) bool { return usesChangedSet(p.Inbound, p.Outbound) })
	profiles := changedOwners(prev.Profiles, next.Profiles, func(p dpmodel.Profile) bool { return usesChangedSet(p.Inbound, p.Outbound) })
	listsChanged := func(profileIDs []string, tierLists ...[]dpmodel.TierInfo) bool {
		if slices.ContainsFunc(profileIDs, func(id string) bool { return profiles[id] }) {
			return true
		}
		for _, tiers := range tierLists {
			for _, t := range tiers {
				if slices.ContainsFunc(slices.Concat(t.Ingress, t.Egress), func(id dpmodel.PolicyID) bool { return policies[id] }) {
					return true
				}
			}
		}
		return false
	}

	for _, pair := range [][2]*dpmodel.State{{prev, next}, {next, prev}} {
		s, other := pair[0], pair[1]
		for id, w := range s.Workloads {
			if o, ok := other.Workloads[id]; ok && reflect.DeepEqual(o, w) && !listsChanged(w.ProfileIDs, w.Tiers) {
				continue
			}
			for _, p := range slices.Concat(w.IPv4Nets, w.IPv6Nets) {
				out.addPrefix(p)
			}
		}
		for id, h := range s.HostEndpoints {
			if o, ok := other.HostEndpoints[id]; ok && reflect.DeepEqual(o, h) &&
				!listsChanged(h.ProfileIDs, h.Tiers, h.UntrackedTiers, h.PreDNATTiers, h.ForwardTiers) {
				continue
			}
			for _, a := range h.ExpectedIPs {
				out.addPrefix(netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	return out
}

// changedOwners returns the IDs of the policies (or profiles) added, removed or changed between prev and
// next, or whose rules in either state use a changed IP set (usesChangedSet).
func changedOwners[K comparable, V any](prev, next map[K]V, usesChangedSet func(V) bool) map[K]bool {
	out := map[K]bool{}
	for id, v := range next {
		if o, ok := prev[id]; !ok || !reflect.DeepEqual(o, v) || usesChangedSet(v) {
			out[id] = true
		}
	}
	for id, v := range prev {
		if _, ok := next[id]; !ok || usesChangedSet(v) {
			out[id] = true
		}
	}
	return out
}

// deleteDeniedFlows removes the conntrack entries of flows that next denies and prev allowed, at a
// local endpoint: without it an established connection a new policy forbids would live on through the
// conntrack fast path (RELATED,ESTABLISHED accepted before policy). Verdicts come from dpeval, the
// reference interpreter of the same desired state the rules were rendered from. A flow whose next packet
// then arrives is new to conntrack and meets the new policy.
//
// The work is bounded by what changed: nothing runs unless some local endpoint's verdicts can differ
// (affectedAddrs); conntrack is listed only for the families of those endpoints' addresses; only
// entries with an end at one of them are parsed and judged; and the deletions take one netlink dump
// per family, not one `conntrack -D` (itself a dump of the whole table) per entry (deleteFlows).
func (d *Dataplane) deleteDeniedFlows(ctx context.Context, prev, next *dpmodel.State) error {
	addrs := affectedAddrs(prev, next)
	if addrs.empty() {
		return nil
	}
	var errs []error
	for _, fam := range []struct {
		name string
		on   bool
	}{{"ipv4", addrs.v4}, {"ipv6", addrs.v6}} {
		if !fam.on {
			continue
		}
		out, err := d.opts.Runner.Run(ctx, "conntrack", []string{"-L", "-f", fam.name}, nil)
		if err != nil {
			return fmt.Errorf("listing %s conntrack entries: %w", fam.name, err)
		}
		var denied []flow
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if !touches(line, addrs) {
				continue
			}
			if f, ok := parseFlow(line); ok && deniedNow(prev, next, f) {
				denied = append(denied, f)
			}
		}
		if len(denied) > 0 {
			errs = append(errs, d.deleteFlows(ctx, fam.name, denied))
		}
	}
	return errors.Join(errs...)
}

// touches reports whether a `conntrack -L` line's original source or destination is in addrs, reading
// only those two fields (most lines of a large table are for other endpoints).
func touches(line string, addrs *localAddrs) bool {
	for _, key := range []string{" src=", " dst="} {
		i := strings.Index(line, key)
		if i < 0 {
			return false
		}
		v := line[i+len(key):]
		if j := strings.IndexByte(v, ' '); j >= 0 {
			v = v[:j]
		}
		if a, err := netip.ParseAddr(v); err == nil && addrs.contains(a) {
			return true
		}
	}
	return false
}

// deleteArgs is the conntrack -D command line that deletes f's entry.
func deleteArgs(f flow) []string {
	args := []string{"-D", "-s", f.src.String(), "-d", f.dst.String(), "-p", strconv.Itoa(int(f.proto))}
	switch f.proto {
	case 6, 17, 132:
		args = append(args, "--sport", strconv.Itoa(int(f.sport)), "--dport", strconv.Itoa(int(f.dport)))
	}
	return args
}

// tupleKey is what identifies a flow to delete: protocol, addresses and (TCP, UDP) ports of the original
// direction. ICMP entries of the same pair of addresses share a key (as `conntrack -D -p icmp` matches
// them): a deleted echo flow that is still allowed is simply created again by its next request.
type tupleKey struct {
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
}

// tupleFilter matches the conntrack entries whose original tuple is one of its keys.
type tupleFilter map[tupleKey]bool

func (f tupleFilter) MatchConntrackFlow(c *netlink.ConntrackFlow) bool {
	src, ok1 := netip.AddrFromSlice(c.Forward.SrcIP)
	dst, ok2 := netip.AddrFromSlice(c.Forward.DstIP)
	if !ok1 || !ok2 {
		return false
	}
	k := tupleKey{proto: c.Forward.Protocol, src: src.Unmap(), dst: dst.Unmap()}
	if k.proto == 6 || k.proto == 17 {
		k.sport, k.dport = c.Forward.SrcPort, c.Forward.DstPort
	}
	return f[k]
}

// deleteFlows deletes the entries of fs. Where the runner can run Go in its namespace
// (iptables.InNamespace), one netlink dump of the family's table and one delete message per matching
// entry, in this process: `conntrack -D` dumps the whole table for every entry it deletes, which on a
// large table costs a dump per deleted flow. SCTP entries (whose ports the netlink library does not
// read) and any runner without a namespace hook get one `conntrack -D` each; an entry already gone
// is no error.
func (d *Dataplane) deleteFlows(ctx context.Context, family string, fs []flow) error {
	var byExec []flow
	filter := tupleFilter{}
	in, nl := d.opts.Runner.(iptables.InNamespace)
	for _, f := range fs {
		if !nl || f.proto == 132 {
			byExec = append(byExec, f)
			continue
		}
		k := tupleKey{proto: f.proto, src: f.src, dst: f.dst}
		if f.proto == 6 || f.proto == 17 {
			k.sport, k.dport = f.sport, f.dport
		}
		filter[k] = true
	}
	var errs []error
	if len(filter) > 0 {
		fam := netlink.InetFamily(unix.AF_INET)
		if family == "ipv6" {
			fam = unix.AF_INET6
		}
		var n uint
		err := in.InNamespace(func() error {
			h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
			if err != nil {
				return err
			}
			defer h.Close()
			n, err = h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, filter)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting the %s conntrack entries of %d newly denied flows: %w", family, len(filter), err))
		}
		d.log.Debug("conntrack entries of newly denied flows deleted", "family", family, "flows", len(filter), "entries", n)
	}
	for _, f := range byExec {
		if _, err := d.opts.Runner.Run(ctx, "conntrack", deleteArgs(f), nil); err != nil && !strings.Contains(err.Error(), "0 flow entries") {
			errs = append(errs, fmt.Errorf("deleting the conntrack entry %q: %w", f.line, err))
			continue
		}
		d.log.Debug("conntrack entry of a newly denied flow deleted", "flow", f.line)
	}
	return errors.Join(errs...)
}

func deniedNow(prev, next *dpmodel.State, f flow) bool {
	p := dpeval.Packet{Src: f.src, Dst: f.dst, Protocol: f.proto, SrcPort: f.sport, DstPort: f.dport, ICMPType: f.icmpType, ICMPCode: f.icmpCode}
	allowed := func(s *dpmodel.State) bool {
		eg, _ := dpeval.Side(s, dpeval.Egress, p)
		in, _ := dpeval.Side(s, dpeval.Ingress, p)
		return eg.Verdict == dpmodel.Allow && in.Verdict == dpmodel.Allow
	}
	return !allowed(next) && allowed(prev)
}

// parseFlow reads `conntrack -L` output: "tcp 6 431999 ESTABLISHED src=… dst=… sport=… dport=… src=…".
// Only the first (original direction) tuple is read.
func parseFlow(line string) (flow, bool) {
	f := flow{line: line}
	fields := strings.Fields(line)
	if len(fields) < 3 {
		return f, false
	}
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		return f, false
	}
	f.proto = uint8(n)
	seen := map[string]bool{}
	for _, kv := range fields[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case "src":
			f.src, err = netip.ParseAddr(v)
		case "dst":
			f.dst, err = netip.ParseAddr(v)
		case "sport", "dport", "type", "code":
			var x int
			x, err = strconv.Atoi(v)
			switch k {
			case "sport":
				f.sport = uint16(x)
			case "dport":
				f.dport = uint16(x)
			case "type":
				f.icmpType = uint8(x)
			case "code":
				f.icmpCode = uint8(x)
			}
		}
		if err != nil {
			return f, false
		}
	}
	return f, f.src.IsValid() && f.dst.IsValid()
}
