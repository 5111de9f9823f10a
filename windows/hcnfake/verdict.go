package hcnfake

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tortie-net/tortie/windows/hcn"
)

// Packet is the first packet of a flow, as HNS's ACL layers see it.
type Packet struct {
	Src, Dst         netip.Addr
	Protocol         uint8
	SrcPort, DstPort uint16
}

func (p Packet) String() string {
	return fmt.Sprintf("%s:%d -> %s:%d proto %d", p.Src, p.SrcPort, p.Dst, p.DstPort, p.Protocol)
}

// Verdict is what HNS does with a packet, and why.
type Verdict struct {
	Allowed bool
	// Reason names the deciding rule (its Id and priority), the default, or the route.
	Reason string
}

// Verdict evaluates p through HNS: the egress ACLs of the local endpoint holding the source address (if
// any), then either the ingress ACLs of the local endpoint holding the destination, or a
// RemoteSubnetRoute of the source's network covering the destination (forwarded into the overlay; the
// remote node decides its own ingress), or — for a destination outside every local subnet — the host
// (allowed: it leaves through the NIC). A destination inside a local subnet with no endpoint is dropped.
func (h *HNS) Verdict(p Packet) Verdict {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	src := h.localEndpoint(p.Src)
	dst := h.localEndpoint(p.Dst)
	if src != nil {
		if v := h.evaluate(src, hcn.DirectionOut, p); !v.Allowed {
			return v
		}
	}
	if dst != nil {
		return h.evaluate(dst, hcn.DirectionIn, p)
	}
	if src != nil {
		n := h.networks[src.HostComputeNetwork]
		if r, ok := remoteRoute(n, p.Dst); ok {
			return Verdict{Allowed: true, Reason: fmt.Sprintf("RemoteSubnetRoute %s via %s (%s)", r.DestinationPrefix, r.ProviderAddress, r.DistributedRouterMacAddress)}
		}
	}
	for _, n := range h.networks {
		if inSubnets(n, p.Dst) {
			return Verdict{Reason: fmt.Sprintf("%s is in network %s but no endpoint has it", p.Dst, n.Name)}
		}
	}
	if src == nil {
		return Verdict{Reason: "neither address is a local endpoint"}
	}
	return Verdict{Allowed: true, Reason: "leaves the overlay through the host"}
}

// EndpointVerdict evaluates p against the ACLs of the local endpoint holding addr in direction
// (hcn.DirectionIn or hcn.DirectionOut) only.
func (h *HNS) EndpointVerdict(addr netip.Addr, direction string, p Packet) (Verdict, error) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.localEndpoint(addr)
	if e == nil {
		return Verdict{}, fmt.Errorf("%s: %w", addr, errNoEndpoint)
	}
	return h.evaluate(e, direction, p), nil
}

// RemoteRoute returns the RemoteSubnetRoute of network that covers dst (longest prefix).
func (h *HNS) RemoteRoute(networkName string, dst netip.Addr) (hcn.RemoteSubnetRouteSetting, bool) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.networks {
		if n.Name == networkName {
			return remoteRoute(n, dst)
		}
	}
	return hcn.RemoteSubnetRouteSetting{}, false
}

func remoteRoute(n *hcn.Network, dst netip.Addr) (hcn.RemoteSubnetRouteSetting, bool) {
	var best hcn.RemoteSubnetRouteSetting
	bits := -1
	if n == nil {
		return best, false
	}
	for _, p := range n.Policies {
		if p.Type != hcn.NetworkPolicyRemoteSubnetRoute {
			continue
		}
		var s hcn.RemoteSubnetRouteSetting
		if hcn.DecodeSettings(string(p.Type), p.Settings, &s) != nil {
			continue
		}
		pfx, err := netip.ParsePrefix(s.DestinationPrefix)
		if err == nil && pfx.Contains(dst) && pfx.Bits() > bits {
			best, bits = s, pfx.Bits()
		}
	}
	return best, bits >= 0
}

func (h *HNS) localEndpoint(a netip.Addr) *hcn.Endpoint {
	for _, e := range h.endpoints {
		if e.Flags&hcn.EndpointRemote != 0 {
			continue
		}
		for _, c := range e.IpConfigurations {
			if c.IpAddress == a.String() {
				return e
			}
		}
	}
	return nil
}

// compiledACL is an ACL parsed once per state generation, with set references resolved.
type compiledACL struct {
	id                      string
	block                   bool
	priority                uint16
	protos                  []uint8
	local, remote           []netip.Prefix // nil = any
	localPorts, remotePorts []portRange    // nil = any
	hasPorts                bool
}

type compiledEndpoint struct {
	gen   int
	rules map[[2]string][]compiledACL // [direction, layer]
}

func resolveAddrs(field string, sets map[string][]netip.Prefix) []netip.Prefix {
	if field == "" {
		return nil
	}
	out := []netip.Prefix{}
	for _, v := range splitList(field) {
		if p, ok := parseAddrOrPrefix(v); ok {
			out = append(out, p)
			continue
		}
		out = append(out, sets[v]...)
	}
	return out
}

func (h *HNS) compiledRules(e *hcn.Endpoint) *compiledEndpoint {
	if h.compiled == nil {
		h.compiled = map[string]*compiledEndpoint{}
	}
	if c, ok := h.compiled[e.ID]; ok && c.gen == h.gen {
		return c
	}
	sets := h.sets(e.HostComputeNetwork)
	c := &compiledEndpoint{gen: h.gen, rules: map[[2]string][]compiledACL{}}
	for _, a := range acls(e) {
		layer := a.RuleType
		if layer == "" {
			layer = hcn.RuleTypeSwitch
		}
		protos, err := parseProtocols(a.Protocols)
		if err != nil {
			continue
		}
		ca := compiledACL{id: a.Id, block: a.Action == hcn.ActionBlock, priority: a.Priority, protos: protos,
			local: resolveAddrs(a.LocalAddresses, sets), remote: resolveAddrs(a.RemoteAddresses, sets),
			hasPorts: a.LocalPorts != "" || a.RemotePorts != ""}
		if a.LocalPorts != "" {
			ca.localPorts, _ = parsePorts(a.LocalPorts, true)
		}
		if a.RemotePorts != "" {
			ca.remotePorts, _ = parsePorts(a.RemotePorts, true)
		}
		k := [2]string{a.Direction, layer}
		c.rules[k] = append(c.rules[k], ca)
	}
	h.compiled[e.ID] = c
	return c
}

// evaluate runs the Switch (VFP) and Host (WFP) layers of e in direction; both must allow.
func (h *HNS) evaluate(e *hcn.Endpoint, direction string, p Packet) Verdict {
	local, remote := p.Dst, p.Src
	localPort, remotePort := p.DstPort, p.SrcPort
	if direction == hcn.DirectionOut {
		local, remote = p.Src, p.Dst
		localPort, remotePort = p.SrcPort, p.DstPort
	}
	ce := h.compiledRules(e)
	var reasons []string
	for _, layer := range []string{hcn.RuleTypeSwitch, hcn.RuleTypeHost} {
		rules := ce.rules[[2]string{direction, layer}]
		if len(rules) == 0 {
			continue
		}
		var win *compiledACL
		for i := range rules {
			a := &rules[i]
			if !a.matches(local, remote, p.Protocol, localPort, remotePort) {
				continue
			}
			// Lowest priority number first; at equal priority Block beats Allow.
			if win == nil || a.priority < win.priority || (a.priority == win.priority && a.block) {
				win = a
			}
		}
		switch {
		case win == nil && h.opts.NoMatchAllows:
			reasons = append(reasons, fmt.Sprintf("%s %s: no rule matched (allowed on this HNS version)", layer, direction))
		case win == nil:
			return Verdict{Reason: fmt.Sprintf("%s %s %s: no rule matched: default deny", e.Name, layer, direction)}
		case win.block:
			return Verdict{Reason: fmt.Sprintf("%s %s %s: blocked by %q at priority %d", e.Name, layer, direction, win.id, win.priority)}
		default:
			reasons = append(reasons, fmt.Sprintf("%s %s: allowed by %q at priority %d", layer, direction, win.id, win.priority))
		}
	}
	if len(reasons) == 0 {
		return Verdict{Allowed: true, Reason: fmt.Sprintf("%s %s: no ACLs", e.Name, direction)}
	}
	return Verdict{Allowed: true, Reason: e.Name + " " + reasons[0]}
}

func (a *compiledACL) matches(local, remote netip.Addr, proto uint8, localPort, remotePort uint16) bool {
	if a.protos != nil && !slices.Contains(a.protos, proto) {
		return false
	}
	if !prefixesContain(a.local, local) || !prefixesContain(a.remote, remote) {
		return false
	}
	if a.hasPorts {
		if proto != 6 && proto != 17 {
			return false
		}
		if !rangesContain(a.localPorts, localPort) || !rangesContain(a.remotePorts, remotePort) {
			return false
		}
	}
	return true
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	if ps == nil {
		return true
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func rangesContain(rs []portRange, port uint16) bool {
	if rs == nil {
		return true
	}
	for _, r := range rs {
		if port >= r.lo && port <= r.hi {
			return true
		}
	}
	return false
}
