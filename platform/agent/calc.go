package agent

import (
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
)

// Calculator turns the datastore's stream into dataplane updates: the seam where common/calc plugs in.
// Its methods are called from one goroutine (the syncer's callbacks), never concurrently, and the
// updates each returns respect dpmodel's ordering contract given everything returned before.
type Calculator interface {
	// Kinds are the resource kinds the calculation needs the syncer to stream (the agent adds
	// FelixConfiguration, which it reads itself, when missing).
	Kinds() []datastore.ListOptions
	// OnConfig receives the agent's settings, first before any other call and again when a live setting
	// changes; it returns at least the ConfigUpdate.
	OnConfig(config.Agent) []dpmodel.Update
	// OnStatus receives the syncer's status.
	OnStatus(datastore.Status)
	// OnUpdates receives one batch of datastore updates.
	OnUpdates([]datastore.Update) []dpmodel.Update
}

// PassThrough is the calculation until common/calc lands: no policy. It turns IP pools into pools,
// Nodes into host addresses and (for other nodes with a VXLAN tunnel address and MAC) VTEPs, and this
// node's WorkloadEndpoints into endpoints with their profiles (as profiles without rules) and their
// local routes. Objects that do not parse are logged and treated as deleted, as Felix's validation
// filter does.
type PassThrough struct {
	node string
	log  *slog.Logger

	settings config.Agent
	pools    map[string]poolInfo                         // by IPPool name
	nodes    map[string]bool                             // nodes with a HostUpdate sent
	vteps    map[string]bool                             // nodes with a VTEPUpdate sent
	weps     map[datastore.Key]*dpmodel.WorkloadEndpoint // local endpoints sent
	profRefs map[string]int
	lastCfg  *dpmodel.Config
}

type poolInfo struct {
	cidr netip.Prefix
	pool dpmodel.Pool
}

// NewPassThrough returns the pass-through calculation for node.
func NewPassThrough(node string, log *slog.Logger) *PassThrough {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PassThrough{node: node, log: log, pools: map[string]poolInfo{}, nodes: map[string]bool{}, vteps: map[string]bool{},
		weps: map[datastore.Key]*dpmodel.WorkloadEndpoint{}, profRefs: map[string]int{}}
}

// Kinds implements Calculator.
func (p *PassThrough) Kinds() []datastore.ListOptions {
	return []datastore.ListOptions{{Kind: "FelixConfiguration"}, {Kind: "IPPool"}, {Kind: "Node"}, {Kind: "WorkloadEndpoint"}}
}

// OnStatus implements Calculator.
func (p *PassThrough) OnStatus(datastore.Status) {}

// OnConfig implements Calculator.
func (p *PassThrough) OnConfig(a config.Agent) []dpmodel.Update {
	p.settings = a
	return p.config(true)
}

// config returns a ConfigUpdate when the dataplane configuration changed (always when force).
func (p *PassThrough) config(force bool) []dpmodel.Update {
	var vxlan, ipip bool
	for _, pi := range p.pools {
		vxlan = vxlan || (!pi.pool.Disabled && pi.pool.VXLANMode != dpmodel.EncapNever)
		ipip = ipip || (!pi.pool.Disabled && pi.pool.IPIPMode != dpmodel.EncapNever)
	}
	cfg := p.settings.Dataplane(p.node, vxlan, ipip)
	if !force && p.lastCfg != nil && equalConfig(*p.lastCfg, cfg) {
		return nil
	}
	p.lastCfg = &cfg
	return []dpmodel.Update{dpmodel.ConfigUpdate{Config: cfg}}
}

func equalConfig(a, b dpmodel.Config) bool { return reflect.DeepEqual(a, b) }

// OnUpdates implements Calculator.
func (p *PassThrough) OnUpdates(us []datastore.Update) []dpmodel.Update {
	var out []dpmodel.Update
	poolsChanged := false
	for _, u := range us {
		switch u.Key.Kind {
		case "IPPool":
			out = append(out, p.onPool(u)...)
			poolsChanged = true
		case "Node":
			out = append(out, p.onNode(u)...)
		case "WorkloadEndpoint":
			out = append(out, p.onWEP(u)...)
		}
	}
	if poolsChanged {
		// Encapsulation is on when a pool uses it: a pool change can change the configuration, which
		// goes first in the batch, before routes that may need it.
		out = append(p.config(false), out...)
		// Local routes carry their pool and its natOutgoing (the agent drops the unchanged ones).
		for _, ep := range p.weps {
			for _, n := range slices.Concat(ep.IPv4Nets, ep.IPv6Nets) {
				out = append(out, dpmodel.RouteUpdate{Dst: n, Route: p.route(ep, n)})
			}
		}
	}
	return out
}

func encapMode(m api.EncapMode) dpmodel.EncapMode {
	switch m {
	case api.EncapAlways:
		return dpmodel.EncapAlways
	case api.EncapCrossSubnet:
		return dpmodel.EncapCrossSubnet
	}
	return dpmodel.EncapNever
}

func (p *PassThrough) onPool(u datastore.Update) []dpmodel.Update {
	var out []dpmodel.Update
	old, had := p.pools[u.Key.Name]
	var next *poolInfo
	if pool, ok := u.Value.(*api.IPPool); ok && u.Type != datastore.UpdateDeleted {
		cidr, err := netip.ParsePrefix(pool.Spec.CIDR)
		if err != nil {
			p.log.Warn("ignoring IPPool with a bad CIDR", "pool", u.Key.Name, "cidr", pool.Spec.CIDR, "error", err.Error())
		} else {
			next = &poolInfo{cidr: cidr.Masked(), pool: dpmodel.Pool{IPIPMode: encapMode(pool.Spec.IPIPMode),
				VXLANMode: encapMode(pool.Spec.VXLANMode), NATOutgoing: pool.Spec.NATOutgoing, Disabled: pool.Spec.Disabled}}
		}
	}
	if had && (next == nil || next.cidr != old.cidr) {
		out = append(out, dpmodel.PoolRemove{CIDR: old.cidr})
		delete(p.pools, u.Key.Name)
	}
	if next != nil {
		p.pools[u.Key.Name] = *next
		out = append(out, dpmodel.PoolUpdate{CIDR: next.cidr, Pool: next.pool})
	}
	return out
}

// hostPrefix parses a Node's "10.0.0.5/24" (or a bare address) address.
func hostPrefix(s string) netip.Prefix {
	if s == "" {
		return netip.Prefix{}
	}
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return netip.Prefix{}
}

func (p *PassThrough) onNode(u datastore.Update) []dpmodel.Update {
	name := u.Key.Name
	n, ok := u.Value.(*api.Node)
	if !ok || u.Type == datastore.UpdateDeleted {
		var out []dpmodel.Update
		if p.vteps[name] {
			delete(p.vteps, name)
			out = append(out, dpmodel.VTEPRemove{Node: name})
		}
		if p.nodes[name] {
			delete(p.nodes, name)
			out = append(out, dpmodel.HostRemove{Node: name})
		}
		return out
	}
	var h dpmodel.Host
	if n.Spec.BGP != nil {
		h.IPv4, h.IPv6 = hostPrefix(n.Spec.BGP.IPv4Address), hostPrefix(n.Spec.BGP.IPv6Address)
	}
	out := []dpmodel.Update{dpmodel.HostUpdate{Node: name, Host: h}}
	p.nodes[name] = true
	var vtep dpmodel.VTEP
	hasVTEP := false
	if name != p.node {
		if a, err := netip.ParseAddr(n.Spec.IPv4VXLANTunnelAddr); err == nil && n.Spec.VXLANTunnelMACAddr != "" {
			vtep.TunnelIPv4, vtep.MACv4, vtep.ParentIPv4 = a, n.Spec.VXLANTunnelMACAddr, h.IPv4.Addr()
			hasVTEP = true
		}
		if a, err := netip.ParseAddr(n.Spec.IPv6VXLANTunnelAddr); err == nil && n.Spec.VXLANTunnelMACAddrV6 != "" {
			vtep.TunnelIPv6, vtep.MACv6, vtep.ParentIPv6 = a, n.Spec.VXLANTunnelMACAddrV6, h.IPv6.Addr()
			hasVTEP = true
		}
	}
	switch {
	case hasVTEP:
		p.vteps[name] = true
		out = append(out, dpmodel.VTEPUpdate{Node: name, VTEP: vtep})
	case p.vteps[name]:
		delete(p.vteps, name)
		out = append(out, dpmodel.VTEPRemove{Node: name})
	}
	return out
}

// localEndpoint converts a WorkloadEndpoint of this node; nil when it is another node's or invalid.
func (p *PassThrough) localEndpoint(u datastore.Update) *dpmodel.WorkloadEndpoint {
	w, ok := u.Value.(*api.WorkloadEndpoint)
	if !ok || u.Type == datastore.UpdateDeleted || w.Spec.Node != p.node {
		return nil
	}
	ep := &dpmodel.WorkloadEndpoint{Pod: w.Spec.Pod, InterfaceName: w.Spec.InterfaceName, MAC: w.Spec.MAC,
		ProfileIDs: slices.Clone(w.Spec.Profiles)}
	for _, s := range w.Spec.IPNetworks {
		pfx := hostPrefix(s)
		if !pfx.IsValid() {
			p.log.Warn("ignoring WorkloadEndpoint with a bad address", "workload_endpoint", u.Key.String(), "address", s)
			return nil
		}
		if pfx.Addr().Is4() {
			ep.IPv4Nets = append(ep.IPv4Nets, pfx.Masked())
		} else {
			ep.IPv6Nets = append(ep.IPv6Nets, pfx.Masked())
		}
	}
	for _, s := range w.Spec.AllowSpoofedSourcePrefixes {
		if pfx := hostPrefix(s); pfx.IsValid() {
			ep.AllowSpoofedSourcePrefixes = append(ep.AllowSpoofedSourcePrefixes, pfx.Masked())
		}
	}
	return ep
}

func (p *PassThrough) route(ep *dpmodel.WorkloadEndpoint, dst netip.Prefix) dpmodel.Route {
	r := dpmodel.Route{Type: dpmodel.RouteLocalWorkload, InterfaceName: ep.InterfaceName}
	for _, pi := range p.pools {
		if pi.cidr.Contains(dst.Addr()) && (!r.PoolCIDR.IsValid() || pi.cidr.Bits() > r.PoolCIDR.Bits()) {
			r.PoolCIDR, r.NATOutgoing = pi.cidr, pi.pool.NATOutgoing
		}
	}
	return r
}

func (p *PassThrough) onWEP(u datastore.Update) []dpmodel.Update {
	id := dpmodel.WorkloadEndpointID{Namespace: u.Key.Namespace, Name: u.Key.Name}
	old := p.weps[u.Key]
	next := p.localEndpoint(u)
	if old == nil && next == nil {
		return nil
	}
	var out []dpmodel.Update
	// Profiles first (contract: they exist before an endpoint lists them), as empty profiles: their
	// rules come with the calculation.
	if next != nil {
		for _, prof := range next.ProfileIDs {
			if p.profRefs[prof] == 0 {
				out = append(out, dpmodel.ProfileUpdate{ID: prof})
			}
			p.profRefs[prof]++
		}
		p.weps[u.Key] = next
		out = append(out, dpmodel.WorkloadEndpointUpdate{ID: id, Endpoint: *next})
	} else {
		delete(p.weps, u.Key)
		out = append(out, dpmodel.WorkloadEndpointRemove{ID: id})
	}
	oldRoutes, newRoutes := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	if old != nil {
		for _, n := range slices.Concat(old.IPv4Nets, old.IPv6Nets) {
			oldRoutes[n] = true
		}
		for _, prof := range old.ProfileIDs {
			p.profRefs[prof]--
			if p.profRefs[prof] == 0 {
				delete(p.profRefs, prof)
				out = append(out, dpmodel.ProfileRemove{ID: prof})
			}
		}
	}
	if next != nil {
		for _, n := range slices.Concat(next.IPv4Nets, next.IPv6Nets) {
			newRoutes[n] = true
			out = append(out, dpmodel.RouteUpdate{Dst: n, Route: p.route(next, n)})
		}
	}
	for n := range oldRoutes {
		if !newRoutes[n] {
			out = append(out, dpmodel.RouteRemove{Dst: n})
		}
	}
	return out
}

// isFelixConfiguration reports whether u is a FelixConfiguration the agent layers.
func isFelixConfiguration(u datastore.Update) bool {
	return u.Key.Kind == "FelixConfiguration" && (u.Key.Name == "default" || strings.HasPrefix(u.Key.Name, "node."))
}
