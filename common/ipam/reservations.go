package ipam

import (
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
)

// reservations are the CIDRs of every IPReservation, merged so that none contains another.
type reservations struct {
	prefixes []netip.Prefix
}

// parseReservations collects the reserved CIDRs (plain addresses count as /32 or /128). Entries that
// do not parse are returned as messages and otherwise ignored: validation rejects them on write, and a
// bad entry must not stop allocation.
func parseReservations(objs []*api.IPReservation) (reservations, []string) {
	var ps []netip.Prefix
	var bad []string
	for _, o := range objs {
		for _, s := range o.Spec.ReservedCIDRs {
			p, err := parsePrefixOrAddr(s)
			if err != nil {
				bad = append(bad, "IPReservation "+o.Name+": ignoring "+s+": "+err.Error())
				continue
			}
			ps = append(ps, p)
		}
	}
	return reservations{prefixes: mergePrefixes(ps)}, bad
}

// parsePrefixOrAddr parses "10.0.0.0/24" (masked) or "10.0.0.1" (as a /32).
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// mergePrefixes drops prefixes contained in another one and sorts the rest (two CIDRs either nest or
// are disjoint, so the result is a disjoint set).
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits() // shorter (larger) first
	})
	var out []netip.Prefix
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Contains(p.Addr()) && out[n-1].Bits() <= p.Bits() {
			continue
		}
		out = append(out, p)
	}
	return out
}

// contains reports whether a is reserved.
func (r reservations) contains(a netip.Addr) bool {
	for _, p := range r.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// within returns the reservations that overlap p, so that per-address checks in one block scan few.
func (r reservations) within(p netip.Prefix) reservations {
	var out []netip.Prefix
	for _, q := range r.prefixes {
		if q.Overlaps(p) {
			out = append(out, q)
		}
	}
	return reservations{prefixes: out}
}

// covering returns the reservation that contains all of p, if any.
func (r reservations) covering(p netip.Prefix) (netip.Prefix, bool) {
	for _, q := range r.prefixes {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return q, true
		}
	}
	return netip.Prefix{}, false
}

// fullyReserves reports whether every address of the block p is reserved (by one reservation or
// several together).
func (r reservations) fullyReserves(p netip.Prefix) bool {
	in := r.within(p)
	if len(in.prefixes) == 0 {
		return false
	}
	if _, ok := in.covering(p); ok {
		return true
	}
	n := new(big.Int)
	for _, q := range in.prefixes {
		n.Add(n, prefixSize(q)) // disjoint and inside p
	}
	return n.Cmp(prefixSize(p)) == 0
}

// skipFunc returns a per-address predicate for block.free, or nil when nothing in p is reserved.
func (r reservations) skipFunc(p netip.Prefix) func(netip.Addr) bool {
	in := r.within(p)
	if len(in.prefixes) == 0 {
		return nil
	}
	return in.contains
}

// countIn returns how many addresses of p are reserved.
func (r reservations) countIn(p netip.Prefix) *big.Int {
	n := new(big.Int)
	for _, q := range r.prefixes {
		switch {
		case !q.Overlaps(p):
		case q.Bits() <= p.Bits():
			return prefixSize(p) // q covers p (the set is disjoint, so nothing else counts)
		default:
			n.Add(n, prefixSize(q))
		}
	}
	return n
}

// prefixSize is the number of addresses in p.
func prefixSize(p netip.Prefix) *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}
