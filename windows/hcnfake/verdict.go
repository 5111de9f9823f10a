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

// evaluate runs the Switch (VFP) and Host (WFP) layers of e in direction; both must allow.
func (h *HNS) evaluate(e *hcn.Endpoint, direction string, p Packet) Verdict {
	local, remote := p.Dst, p.Src
	localPort, remotePort := p.DstPort, p.SrcPort
	if direction == hcn.DirectionOut {
		local, remote = p.Src, p.Dst
		localPort, remotePort = p.SrcPort, p.DstPort
	}
	sets := h.sets(e.HostComputeNetwork)
	var reasons []string
	for _, layer := range []string{hcn.RuleTypeSwitch, hcn.RuleTypeHost} {
		var rules []hcn.ACLSetting
		for _, a := range acls(e) {
			rt := a.RuleType
			if rt == "" {
				rt = hcn.RuleTypeSwitch
			}
			if a.Direction == direction && rt == layer {
				rules = append(rules, a)
			}
		}
		if len(rules) == 0 {
			continue
		}
		var win *hcn.ACLSetting
		for i := range rules {
			a := &rules[i]
			if !aclMatches(a, sets, local, remote, p.Protocol, localPort, remotePort) {
				continue
			}
			// Lowest priority number first; at equal priority Block beats Allow.
			if win == nil || a.Priority < win.Priority || (a.Priority == win.Priority && a.Action == hcn.ActionBlock) {
				win = a
			}
		}
		switch {
		case win == nil && h.opts.NoMatchAllows:
			reasons = append(reasons, fmt.Sprintf("%s %s: no rule matched (allowed on this HNS version)", layer, direction))
		case win == nil:
			return Verdict{Reason: fmt.Sprintf("%s %s %s: no rule matched: default deny", e.Name, layer, direction)}
		case win.Action == hcn.ActionBlock:
			return Verdict{Reason: fmt.Sprintf("%s %s %s: blocked by %q at priority %d", e.Name, layer, direction, win.Id, win.Priority)}
		default:
			reasons = append(reasons, fmt.Sprintf("%s %s: allowed by %q at priority %d", layer, direction, win.Id, win.Priority))
		}
	}
	if len(reasons) == 0 {
		return Verdict{Allowed: true, Reason: fmt.Sprintf("%s %s: no ACLs", e.Name, direction)}
	}
	return Verdict{Allowed: true, Reason: e.Name + " " + reasons[0]}
}

func aclMatches(a *hcn.ACLSetting, sets map[string][]netip.Prefix, local, remote netip.Addr, proto uint8, localPort, remotePort uint16) bool {
	protos, err := parseProtocols(a.Protocols)
	if err != nil {
		return false
	}
	if protos != nil && !slices.Contains(protos, proto) {
		return false
	}
	if !addrMatches(a.LocalAddresses, sets, local) || !addrMatches(a.RemoteAddresses, sets, remote) {
		return false
	}
	if a.LocalPorts != "" || a.RemotePorts != "" {
		if proto != 6 && proto != 17 {
			return false
		}
		if !portMatches(a.LocalPorts, localPort) || !portMatches(a.RemotePorts, remotePort) {
			return false
		}
	}
	return true
}

func addrMatches(field string, sets map[string][]netip.Prefix, a netip.Addr) bool {
	if field == "" {
		return true
	}
	for _, v := range splitList(field) {
		if p, ok := parseAddrOrPrefix(v); ok {
			if p.Contains(a) {
				return true
			}
			continue
		}
		for _, p := range sets[v] {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func portMatches(field string, port uint16) bool {
	if field == "" {
		return true
	}
	rs, err := parsePorts(field, true)
	if err != nil {
		return false
	}
	for _, r := range rs {
		if port >= r.lo && port <= r.hi {
			return true
		}
	}
	return false
}
