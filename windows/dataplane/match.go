package dataplane

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// cube is a conjunction HNS can express in one ACL (before chunking): a protocol, a source and a
// destination address list, and source and destination port lists. A rule's match is a disjunction of
// cubes.
type cube struct {
	proto              uint8 // 0 = any
	src, dst           addrs
	srcPorts, dstPorts ports
}

// addrs is an address condition: any, or one of nets (IPv4 only). set, when non-empty, names the IP set
// whose members nets are, so that the ACL can refer to it by SetPolicy instead of listing them.
type addrs struct {
	any  bool
	nets []netip.Prefix
	set  string
}

// ports is a port condition: any, or one of ranges.
type ports struct {
	any    bool
	ranges []dpmodel.PortRange
}

var (
	anyAddrs = addrs{any: true}
	anyPorts = ports{any: true}
	anyCube  = cube{src: anyAddrs, dst: anyAddrs, srcPorts: anyPorts, dstPorts: anyPorts}
)

func (a addrs) empty() bool { return !a.any && len(a.nets) == 0 }
func (p ports) empty() bool { return !p.any && len(p.ranges) == 0 }

func (c cube) empty() bool {
	return c.src.empty() || c.dst.empty() || c.srcPorts.empty() || c.dstPorts.empty()
}

func (c cube) equal(o cube) bool {
	return c.proto == o.proto && c.src.equal(o.src) && c.dst.equal(o.dst) && c.srcPorts.equal(o.srcPorts) && c.dstPorts.equal(o.dstPorts)
}

func (a addrs) equal(o addrs) bool { return a.any == o.any && slices.Equal(a.nets, o.nets) }
func (p ports) equal(o ports) bool { return p.any == o.any && slices.Equal(p.ranges, o.ranges) }

// intersect returns the cube matching what both match. The result may be empty.
func (c cube) intersect(o cube) cube {
	out := cube{
		src: c.src.intersect(o.src), dst: c.dst.intersect(o.dst),
		srcPorts: c.srcPorts.intersect(o.srcPorts), dstPorts: c.dstPorts.intersect(o.dstPorts),
	}
	switch {
	case c.proto == 0:
		out.proto = o.proto
	case o.proto == 0 || o.proto == c.proto:
		out.proto = c.proto
	default:
		out.src = addrs{} // different protocols: nothing matches
	}
	return out
}

func v4Only(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return normNets(out)
}

// normNets sorts nets and drops those covered by another.
func normNets(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && out[len(out)-1].Contains(p.Addr()) && out[len(out)-1].Bits() <= p.Bits() {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (a addrs) intersect(o addrs) addrs {
	switch {
	case a.any:
		return o
	case o.any:
		return a
	}
	var out []netip.Prefix
	for _, x := range a.nets {
		for _, y := range o.nets {
			switch {
			case x.Contains(y.Addr()) && x.Bits() <= y.Bits():
				out = append(out, y)
			case y.Contains(x.Addr()) && y.Bits() <= x.Bits():
				out = append(out, x)
			}
		}
	}
	return addrs{nets: normNets(out)}
}

// minus returns the addresses of a that are in none of nets: exact, as the complement of a CIDR list is
// a CIDR list.
func (a addrs) minus(nets []netip.Prefix) addrs {
	nets = v4Only(nets)
	if len(nets) == 0 {
		return a
	}
	base := a.nets
	if a.any {
		base = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	}
	var out []netip.Prefix
	for _, b := range base {
		out = append(out, subtract(b, nets)...)
	}
	return addrs{nets: normNets(out)}
}

// subtract returns the parts of p not covered by any of nets.
func subtract(p netip.Prefix, nets []netip.Prefix) []netip.Prefix {
	for _, n := range nets {
		if n.Contains(p.Addr()) && n.Bits() <= p.Bits() {
			return nil // p is entirely removed
		}
	}
	inside := false
	for _, n := range nets {
		if p.Contains(n.Addr()) && p.Bits() < n.Bits() {
			inside = true
			break
		}
	}
	if !inside {
		return []netip.Prefix{p}
	}
	lo, hi := halves(p)
	return append(subtract(lo, nets), subtract(hi, nets)...)
}

func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().As4()
	i := p.Bits()
	b[i/8] |= 0x80 >> (i % 8)
	return lo, netip.PrefixFrom(netip.AddrFrom4(b), bits)
}

func normRanges(rs []dpmodel.PortRange) []dpmodel.PortRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b dpmodel.PortRange) int { return cmp.Compare(a.First, b.First) })
	var out []dpmodel.PortRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.First) <= uint32(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (p ports) intersect(o ports) ports {
	switch {
	case p.any:
		return o
	case o.any:
		return p
	}
	var out []dpmodel.PortRange
	for _, x := range p.ranges {
		for _, y := range o.ranges {
			lo, hi := max(x.First, y.First), min(x.Last, y.Last)
			if lo <= hi {
				out = append(out, dpmodel.PortRange{First: lo, Last: hi})
			}
		}
	}
	return ports{ranges: normRanges(out)}
}

// minus returns the ports of p in none of rs (exact).
func (p ports) minus(rs []dpmodel.PortRange) ports {
	if len(rs) == 0 {
		return p
	}
	rs = normRanges(rs)
	var comp []dpmodel.PortRange
	next := uint32(0)
	for _, r := range rs {
		if uint32(r.First) > next {
			comp = append(comp, dpmodel.PortRange{First: uint16(next), Last: r.First - 1})
		}
		next = uint32(r.Last) + 1
	}
	if next <= 65535 {
		comp = append(comp, dpmodel.PortRange{First: uint16(next), Last: 65535})
	}
	return p.intersect(ports{ranges: comp})
}
