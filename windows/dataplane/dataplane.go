package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/platform"
	"github.com/tortie-net/tortie/windows/hcn"
)

// Options configure the Windows dataplane.
type Options struct {
	// API is HNS (hcn.New() on Windows, a hcnfake.HNS in tests). Required.
	API hcn.API
	// Logger receives warnings (gaps, missing endpoints); nil discards.
	Logger *slog.Logger
	// ServiceCIDRs are the cluster's service ranges: exceptions of OutBoundNAT and SDNRoutes with
	// NeedEncap, so that service traffic is handled by kube-proxy's load balancers.
	ServiceCIDRs []netip.Prefix
	// AdapterName binds the networks to a host adapter (Calico's VXLAN_ADAPTER); empty lets HNS choose.
	AdapterName string
	// HostMTU is the host adapter's MTU (default 1500); with Config.VXLANMTU it gives the endpoints'
	// EncapOverhead.
	HostMTU int
	// ChunkSize is the most addresses or ports one ACL lists (default 4000, the size Microsoft advised
	// for Calico).
	ChunkSize int
	// MaxRules bounds one direction's rules after flattening tiers and Pass (default 20000); an
	// endpoint over it gets a deny-all in that direction and Apply reports an error.
	MaxRules int
	// DisableSetPolicy renders selectors as address lists even where HNS has SetPolicy IP sets.
	DisableSetPolicy bool
	// OnVTEP, when set, receives this node's VXLAN tunnel endpoint once the overlay network exists and
	// whenever it changes (a new block, or a network recreated after a reboot with another router MAC).
	// It is called on Apply's goroutine and must not block: the agent hands the value to a goroutine
	// that writes it to the Node (cmd/tortie-node). SetVTEPHandler sets it after New.
	OnVTEP func(VTEP)
}

// VTEP is this node's VXLAN tunnel endpoint as other nodes must address it: Linux nodes route this
// node's block via TunnelAddress, with a neighbour entry TunnelAddress → MAC and a forwarding entry MAC →
// the node's address. HNS answers only to its overlay network's distributed router MAC, so that is the
// MAC, and the tunnel address is the network's gateway, the block's first address (Calico for Windows
// publishes the same pair).
type VTEP struct {
	TunnelAddress netip.Addr
	// MAC is the network's DrMacAddress in Linux form ("00:15:5d:0a:0b:0c").
	MAC string
}

// Status is what the last Apply found and did, for health, metrics and `tortiectl node status`.
type Status struct {
	HNSVersion hcn.Version
	NetworkID  string
	// VTEPMAC is the overlay network's distributed router MAC ("aa:bb:cc:dd:ee:ff"), which the agent
	// publishes as the Node's VXLAN tunnel MAC so that Linux nodes address this node's pods to it;
	// TunnelAddress is the block's first address (its gateway), published as the tunnel address.
	VTEPMAC       string
	TunnelAddress netip.Addr
	// MissingEndpoints are local workloads whose HNS endpoint does not exist (not created yet by the
	// CNI, or lost in an HNS restart until the pod is recreated).
	MissingEndpoints []dpmodel.WorkloadEndpointID
	// Gaps counts the rules currently rendered inexactly, by kind ("deny widened", "allow narrowed",
	// "pass became deny", "log not rendered"): each errs towards deny. Host endpoints with policy are
	// counted too: "host endpoint not enforced" (the host's own traffic; open, HNS cannot see it) and
	// "host endpoint forward traffic denied" (pods' traffic through the host; errs towards deny).
	Gaps map[string]int
	// PolicyCalls counts ApplyEndpointPolicy calls since start; RemoteRoutes the routes programmed.
	PolicyCalls  int
	RemoteRoutes int
}

// Dataplane programs HNS from dpmodel state. Not safe for concurrent use (the agent calls it from one
// goroutine, see platform.Dataplane); Status may be called concurrently with nothing else either.
type Dataplane struct {
	api  hcn.API
	log  *slog.Logger
	opts Options

	state  *dpmodel.State
	dirty  bool
	resync bool

	version  *hcn.Version
	features hcn.Features
	status   Status
	logged   map[string]bool // gap and warning lines already logged
	vtep     VTEP            // the VTEP last handed to OnVTEP
}

var _ platform.Dataplane = (*Dataplane)(nil)

// New returns a Windows dataplane over opts.API. Nothing is read or written until the first Apply.
func New(opts Options) *Dataplane {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HostMTU == 0 {
		opts.HostMTU = 1500
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 4000
	}
	if opts.MaxRules == 0 {
		opts.MaxRules = 20000
	}
	return &Dataplane{api: opts.API, log: opts.Logger, opts: opts, state: dpmodel.NewState(), dirty: true, logged: map[string]bool{}}
}

// Capabilities: selectors, named ports, Pass, negations and port ranges are all handled here (expanded,
// flattened or approximated towards deny); Log and ICMP type/code are not expressible in HNS.
func (d *Dataplane) Capabilities() platform.Capabilities {
	return platform.Capabilities{
		Name: "windows", IPSets: true, NamedPorts: true, PassAction: true, NegatedMatches: true,
		PortRanges: true, VXLAN: true,
	}
}

// OnUpdate records u. An update that breaks dpmodel's contract is logged and skipped.
func (d *Dataplane) OnUpdate(u dpmodel.Update) {
	if err := d.state.Apply(u); err != nil {
		d.log.Error("skipping dataplane update", "kind", u.Kind(), "error", err)
		return
	}
	d.dirty = true
}

// SetVTEPHandler sets Options.OnVTEP. Call it before the first Apply (the agent's run path does, once
// it knows the node and the datastore); the next Apply reports the VTEP again.
func (d *Dataplane) SetVTEPHandler(f func(VTEP)) {
	d.opts.OnVTEP = f
	d.vtep = VTEP{}
}

// QueueResync makes the next Apply re-read HNS and repair it even if nothing changed.
func (d *Dataplane) QueueResync() { d.resync = true }

// Status returns what the last Apply found and did.
func (d *Dataplane) Status() Status {
	s := d.status
	s.MissingEndpoints = slices.Clone(s.MissingEndpoints)
	return s
}

// Apply reconciles HNS with the recorded state: the External and overlay networks, remote subnet
// routes and SetPolicy IP sets, the host endpoint, and each local pod endpoint's policies (one HNS call
// per endpoint whose policies changed, none otherwise). It reads HNS on every pass that has work, so it
// adopts what a previous instance left and repairs an HNS restart or reboot. Errors name the HNS call
// and object; the agent retries, and the retry re-reads HNS.
func (d *Dataplane) Apply(ctx context.Context) error {
	if !d.dirty && !d.resync {
		return nil
	}
	err := d.apply(ctx)
	if err != nil {
		d.resync = true // the host may hold part of the change: re-read it next time
		return err
	}
	d.dirty, d.resync = false, false
	return nil
}

// firstTime reports whether key is seen for the first time (warnings are logged once).
func (d *Dataplane) firstTime(key string) bool {
	if d.logged[key] {
		return false
	}
	d.logged[key] = true
	return true
}

func (d *Dataplane) apply(ctx context.Context) error {
	if d.version == nil {
		v, err := d.api.Version(ctx)
		if err != nil {
			return fmt.Errorf("reading the HNS version: %w", err)
		}
		d.version = &v
		d.features = hcn.FeaturesFor(v)
		d.status.HNSVersion = v
		if !d.features.RemoteSubnet {
			return fmt.Errorf("HNS %s has no RemoteSubnetRoute (it needs 9.2, Windows Server 2019 or later): the VXLAN overlay cannot be programmed", v)
		}
	}
	cfg := d.state.Config
	if cfg == nil {
		return nil // nothing to do before the first ConfigUpdate
	}
	vni, port := cfg.VXLANVNI, cfg.VXLANPort
	if vni == 0 {
		vni = 4096
	}
	if port == 0 {
		port = 4789
	}
	if vni < 4096 || vni > 0xffff {
		return fmt.Errorf("FelixConfiguration vxlanVNI %d: HNS overlay networks on Windows need a VNI from 4096 to 65535; set vxlanVNI (FELIX_VXLANVNI) to 4096 or more", vni)
	}
	if port != 4789 && !d.features.VxlanPort {
		return fmt.Errorf("FelixConfiguration vxlanPort %d: HNS %s takes only 4789 (the VxlanPort policy needs 10.3); set vxlanPort to 4789", port, *d.version)
	}
	block, ok := d.localBlock()
	if !ok {
		return nil // no block affine to this node yet: no overlay network to hold pods
	}

	networks, err := d.api.ListNetworks(ctx)
	if err != nil {
		return fmt.Errorf("listing HNS networks: %w", err)
	}
	if err := d.ensureExternal(ctx, networks, vni); err != nil {
		return err
	}
	network, err := d.ensureOverlay(ctx, networks, block, vni, port)
	if err != nil {
		return err
	}
	d.status.NetworkID = network.ID
	d.reportVTEP(network, block)

	var errs []error
	if err := d.syncRemoteRoutes(ctx, network, vni); err != nil {
		errs = append(errs, err)
	}
	endpoints, err := d.api.ListEndpoints(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing HNS endpoints: %w", err))...)
	}
	if err := d.ensureHostEndpoint(ctx, network, endpoints, block); err != nil {
		errs = append(errs, err)
	}
	rendered, err := d.render(network, block)
	if err != nil {
		errs = append(errs, err)
	}
	// IP sets before the ACLs that refer to them; removed after the ACLs stop referring to them.
	if err := d.syncSets(ctx, network, rendered.sets, false); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := d.syncEndpoints(ctx, network, endpoints, rendered); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := d.syncSets(ctx, network, rendered.sets, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reportVTEP records the overlay network's VTEP in Status and hands it to OnVTEP when it differs from
// the last one handed over. A network without a valid router MAC (HNS always adds one to an Overlay
// network) has no VTEP to publish: peers keep the last one, and the problem is logged.
func (d *Dataplane) reportVTEP(n *hcn.Network, block netip.Prefix) {
	v := VTEP{TunnelAddress: block.Addr().Next()}
	for _, p := range n.Policies {
		var s hcn.DrMacAddressSetting
		if p.Type != hcn.NetworkPolicyDrMacAddress || hcn.DecodeSettings(string(p.Type), p.Settings, &s) != nil {
			continue
		}
		if mac, err := net.ParseMAC(strings.ReplaceAll(s.Address, "-", ":")); err == nil && len(mac) == 6 {
			v.MAC = mac.String()
		} else if d.firstTime("badmac:" + s.Address) {
			d.log.Warn("the HNS overlay network has an unparsable DrMacAddress; this node's VTEP is not published", "network", n.Name, "address", s.Address)
		}
	}
	d.status.TunnelAddress, d.status.VTEPMAC = v.TunnelAddress, v.MAC
	if v.MAC == "" {
		if d.firstTime("nomac:" + n.ID) {
			d.log.Warn("the HNS overlay network has no DrMacAddress policy; other nodes cannot reach this node's pods until it has one", "network", n.Name, "id", n.ID)
		}
		return
	}
	if v == d.vtep || d.opts.OnVTEP == nil {
		return
	}
	d.vtep = v
	d.opts.OnVTEP(v)
}

// localBlock returns this node's IPAM block (the lowest, if several: an HNS overlay network has one
// subnet per node, as kube-proxy on Windows expects).
func (d *Dataplane) localBlock() (netip.Prefix, bool) {
	var blocks []netip.Prefix
	for dst, r := range d.state.Routes {
		if r.Type == dpmodel.RouteLocalBlock && dst.Addr().Is4() {
			blocks = append(blocks, dst)
		}
	}
	if len(blocks) == 0 {
		return netip.Prefix{}, false
	}
	slices.SortFunc(blocks, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if len(blocks) > 1 {
		if d.firstTime("blocks:" + fmt.Sprint(blocks)) {
			d.log.Warn("this Windows node has several IPAM blocks; the HNS overlay network uses the first only (use strictAffinity so Windows nodes do not borrow)", "blocks", fmt.Sprint(blocks), "used", blocks[0].String())
		}
	}
	return blocks[0], true
}

func findNetwork(ns []hcn.Network, name string) *hcn.Network {
	for i := range ns {
		if ns[i].Name == name {
			return &ns[i]
		}
	}
	return nil
}

func overlayNetwork(name string, subnet netip.Prefix, vni int, adapter string) *hcn.Network {
	n := &hcn.Network{Name: name, Type: hcn.NetworkOverlay, Ipams: []hcn.Ipam{{Type: "Static", Subnets: []hcn.Subnet{{
		IpAddressPrefix: subnet.String(),
		Routes:          []hcn.Route{{NextHop: subnet.Addr().Next().String(), DestinationPrefix: "0.0.0.0/0"}},
		Policies:        []hcn.SubnetPolicy{hcn.NewSubnetPolicy(hcn.SubnetPolicyVSID, hcn.VSIDSetting{IsolationId: uint32(vni)})},
	}}}}}
	if adapter != "" {
		n.Policies = append(n.Policies, hcn.NewNetworkPolicy(hcn.NetworkPolicyNetAdapterName, hcn.NetAdapterNameSetting{NetworkAdapterName: adapter}))
	}
	return n
}

// ensureExternal creates the throwaway External network once: it makes HNS create the vSwitch (the
// host's one connectivity blip) so that the overlay network can later be deleted and recreated
// without cutting the node off. It is never deleted except by Cleanup.
func (d *Dataplane) ensureExternal(ctx context.Context, networks []hcn.Network, vni int) error {
	if findNetwork(networks, config.HNSExternalNetwork) != nil {
		return nil
	}
	vsid := 9999
	if vni == vsid {
		vsid = 9998
	}
	n := overlayNetwork(config.HNSExternalNetwork, netip.MustParsePrefix("192.168.255.0/30"), vsid, d.opts.AdapterName)
	if _, err := d.api.CreateNetwork(ctx, n); err != nil {
		return fmt.Errorf("creating the HNS network %s: %w", n.Name, err)
	}
	d.log.Info("created the HNS network that holds the vSwitch", "network", n.Name)
	return nil
}

// overlayMatches reports whether an existing network is the overlay network tortie wants: VNI and
// subnet cannot be changed in place.
func (d *Dataplane) overlayMatches(n *hcn.Network, block netip.Prefix, vni, port int) bool {
	if n.Type != hcn.NetworkOverlay || len(n.Ipams) != 1 || len(n.Ipams[0].Subnets) != 1 {
		return false
	}
	s := n.Ipams[0].Subnets[0]
	if p, err := netip.ParsePrefix(s.IpAddressPrefix); err != nil || p != block {
		return false
	}
	gotVNI := 0
	for _, p := range s.Policies {
		var v hcn.VSIDSetting
		if p.Type == hcn.SubnetPolicyVSID && hcn.DecodeSettings(string(p.Type), p.Settings, &v) == nil {
			gotVNI = int(v.IsolationId)
		}
	}
	gotPort := 4789
	for _, p := range n.Policies {
		var v hcn.VxlanPortSetting
		if p.Type == hcn.NetworkPolicyVxlanPort && hcn.DecodeSettings(string(p.Type), p.Settings, &v) == nil {
			gotPort = int(v.Port)
		}
	}
	return gotVNI == vni && gotPort == port
}

func (d *Dataplane) ensureOverlay(ctx context.Context, networks []hcn.Network, block netip.Prefix, vni, port int) (*hcn.Network, error) {
	name := config.HNSOverlayNetwork
	if n := findNetwork(networks, name); n != nil {
		if d.overlayMatches(n, block, vni, port) {
			return n, nil
		}
		d.log.Warn("recreating the HNS overlay network: its subnet, VNI or port changed (pods on it lose networking until recreated)", "network", name, "block", block.String(), "vni", vni, "port", port)
		if err := d.api.DeleteNetwork(ctx, n.ID); err != nil && !hcn.IsNotFound(err) {
			return nil, fmt.Errorf("deleting the HNS network %s (%s) to recreate it: %w", name, n.ID, err)
		}
	}
	n := overlayNetwork(name, block, vni, d.opts.AdapterName)
	if port != 4789 {
		n.Policies = append(n.Policies, hcn.NewNetworkPolicy(hcn.NetworkPolicyVxlanPort, hcn.VxlanPortSetting{Port: uint16(port)}))
	}
	if d.features.HostRoute {
		n.Policies = append(n.Policies, hcn.NewNetworkPolicy(hcn.NetworkPolicyHostRoute, struct{}{}))
	}
	created, err := d.api.CreateNetwork(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("creating the HNS network %s for block %s: %w", name, block, err)
	}
	d.log.Info("created the HNS overlay network", "network", name, "id", created.ID, "block", block.String(), "vni", vni)
	return created, nil
}

// syncRemoteRoutes makes the network's RemoteSubnetRoute policies one per remote block (and borrowed
// address) whose node has a VTEP: removals in one call, additions in another.
func (d *Dataplane) syncRemoteRoutes(ctx context.Context, n *hcn.Network, vni int) error {
	want := map[string]hcn.RemoteSubnetRouteSetting{}
	for dst, r := range d.state.Routes {
		if !dst.Addr().Is4() || (r.Type != dpmodel.RouteRemoteBlock && r.Type != dpmodel.RouteRemoteWorkload) {
			continue
		}
		vtep, ok := d.state.VTEPs[r.DstNode]
		if !ok || vtep.MACv4 == "" || !vtep.ParentIPv4.IsValid() {
			if d.firstTime("novtep:" + dst.String() + r.DstNode) {
				d.log.Warn("no VXLAN tunnel endpoint for a remote block's node: Windows reaches other nodes' pods only through VXLAN", "block", dst.String(), "node", r.DstNode)
			}
			continue
		}
		want[dst.Masked().String()] = hcn.RemoteSubnetRouteSetting{
			DestinationPrefix: dst.Masked().String(), IsolationId: uint16(vni), ProviderAddress: vtep.ParentIPv4.String(),
			DistributedRouterMacAddress: strings.ToLower(strings.ReplaceAll(vtep.MACv4, ":", "-")),
		}
	}
	var remove, add []hcn.NetworkPolicy
	have := map[string]bool{}
	for _, p := range n.Policies {
		if p.Type != hcn.NetworkPolicyRemoteSubnetRoute {
			continue
		}
		var s hcn.RemoteSubnetRouteSetting
		if err := hcn.DecodeSettings(string(p.Type), p.Settings, &s); err != nil {
			continue
		}
		if w, ok := want[s.DestinationPrefix]; ok && strings.EqualFold(w.DistributedRouterMacAddress, s.DistributedRouterMacAddress) &&
			w.ProviderAddress == s.ProviderAddress && w.IsolationId == s.IsolationId && !have[s.DestinationPrefix] {
			have[s.DestinationPrefix] = true
			continue
		}
		remove = append(remove, p)
	}
	for _, k := range sortedKeys(want) {
		if !have[k] {
			add = append(add, hcn.NewNetworkPolicy(hcn.NetworkPolicyRemoteSubnetRoute, want[k]))
		}
	}
	d.status.RemoteRoutes = len(want)
	if len(remove) > 0 {
		if err := d.api.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestRemove, remove); err != nil {
			return fmt.Errorf("removing %d remote subnet routes from HNS network %s: %w", len(remove), n.Name, err)
		}
	}
	if len(add) > 0 {
		if err := d.api.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestAdd, add); err != nil {
			return fmt.Errorf("adding %d remote subnet routes to HNS network %s: %w", len(add), n.Name, err)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func providerAddress(n *hcn.Network) string {
	for _, p := range n.Policies {
		var s hcn.ProviderAddressSetting
		if p.Type == hcn.NetworkPolicyProviderAddress && hcn.DecodeSettings(string(p.Type), p.Settings, &s) == nil {
			return s.ProviderAddress
		}
	}
	return ""
}

// macFor is the overlay MAC of an address: 0E-2A and the address's four bytes (Calico's scheme).
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("0E-2A-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3])
}

// ensureHostEndpoint keeps the remote endpoint at the block's third address that carries host → pod
// traffic (kube-proxy's source VIP), with the host's provider address.
func (d *Dataplane) ensureHostEndpoint(ctx context.Context, n *hcn.Network, eps []hcn.Endpoint, block netip.Prefix) error {
	ip := block.Addr().Next().Next()
	pa := providerAddress(n)
	for _, e := range eps {
		if e.Name != config.HNSHostEndpoint {
			continue
		}
		if e.HostComputeNetwork == n.ID && len(e.IpConfigurations) == 1 && e.IpConfigurations[0].IpAddress == ip.String() {
			return nil
		}
		if err := d.api.DeleteEndpoint(ctx, e.ID); err != nil && !hcn.IsNotFound(err) {
			return fmt.Errorf("deleting the outdated HNS host endpoint %s: %w", e.ID, err)
		}
	}
	ep := &hcn.Endpoint{
		Name: config.HNSHostEndpoint, HostComputeNetwork: n.ID, Flags: hcn.EndpointRemote, MacAddress: macFor(ip),
		IpConfigurations: []hcn.IPConfig{{IpAddress: ip.String(), PrefixLength: uint8(block.Bits())}},
	}
	if pa != "" {
		ep.Policies = []hcn.EndpointPolicy{hcn.NewEndpointPolicy(hcn.EndpointPolicyProviderAddress, hcn.ProviderAddressSetting{ProviderAddress: pa})}
	}
	if _, err := d.api.CreateEndpoint(ctx, ep); err != nil {
		return fmt.Errorf("creating the HNS host endpoint %s at %s: %w", ep.Name, ip, err)
	}
	return nil
}

// rendered is the desired policy of every local workload.
type rendered struct {
	byIP map[netip.Addr]*endpointPolicy
	sets map[string]bool // dpmodel IP set IDs referenced through SetPolicy
}

type endpointPolicy struct {
	id       dpmodel.WorkloadEndpointID
	policies []hcn.EndpointPolicy // the managed policies
}

func (d *Dataplane) hostAddrs(n *hcn.Network, block netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	if pa, err := netip.ParseAddr(providerAddress(n)); err == nil {
		out = append(out, netip.PrefixFrom(pa, 32))
	}
	out = append(out, netip.PrefixFrom(block.Addr().Next().Next(), 32))
	if h, ok := d.state.Hosts[d.state.Config.NodeName]; ok && h.IPv4.IsValid() {
		out = append(out, netip.PrefixFrom(h.IPv4.Addr(), 32))
	}
	return normNets(out)
}

func (d *Dataplane) render(n *hcn.Network, block netip.Prefix) (rendered, error) {
	out := rendered{byIP: map[netip.Addr]*endpointPolicy{}, sets: map[string]bool{}}
	c := newCompiler(d.state, d.features.SetPolicy && !d.opts.DisableSetPolicy, d.opts.MaxRules)
	host := d.hostAddrs(n, block)
	common := d.commonPolicies()
	gapRules := map[string]map[string]bool{}
	var errs []error
	type key struct{ tiers, profiles string }
	cache := map[key][]hcn.EndpointPolicy{}
	for _, id := range sortedWorkloads(d.state.Workloads) {
		w := d.state.Workloads[id]
		k := key{fmt.Sprint(w.Tiers), strings.Join(w.ProfileIDs, ",")}
		acls, ok := cache[k]
		if !ok {
			var err error
			acls, err = d.renderACLs(c, w, host, block, gapRules, out.sets)
			if err != nil {
				errs = append(errs, fmt.Errorf("workload %s: %w", id, err))
			}
			cache[k] = acls
		}
		for _, ipn := range w.IPv4Nets {
			pols := append(slices.Clone(common), natPolicies(d.state, d.opts.ServiceCIDRs, ipn.Addr())...)
			pols = append(pols, acls...)
			out.byIP[ipn.Addr()] = &endpointPolicy{id: id, policies: pols}
		}
	}
	d.status.Gaps = map[string]int{}
	for kind, rules := range gapRules {
		d.status.Gaps[kind] = len(rules)
	}
	for _, id := range sortedKeys(d.state.HostEndpoints) {
		h := d.state.HostEndpoints[id]
		// Policy for the host's own traffic (applyOnForward policy is only for traffic through it).
		hostPolicy := len(h.Tiers)+len(h.UntrackedTiers)+len(h.PreDNATTiers)+len(h.ProfileIDs) > 0
		if hostPolicy {
			d.status.Gaps[gapHostEndpoint]++
		}
		if hostPolicy && d.firstTime("hep:"+id) {
			d.log.Warn("host endpoint policy is not enforced on Windows: the host's own traffic crosses no HNS endpoint (protect the host with Windows Firewall); "+
				"pods' traffic to the host follows DefaultEndpointToHostAction", "host_endpoint", id, "interface", h.InterfaceName)
		}
		if len(h.PreDNATTiers)+len(h.UntrackedTiers) > 0 {
			d.status.Gaps[gapHostForward]++
			if d.firstTime("hepfwd:" + id) {
				d.log.Warn("host endpoint with preDNAT or doNotTrack policy on Windows: HNS cannot evaluate it, so pods' traffic through the host "+
					"(to and from anything but this node's pods and the host) is denied in the directions it has policy for; select only Linux nodes with it",
					"host_endpoint", id, "interface", h.InterfaceName)
			}
		}
		if len(h.ForwardTiers) > 0 && h.InterfaceName != "*" {
			d.status.Gaps[gapHostForwardWidened]++
			if d.firstTime("hepfwdw:" + id) {
				d.log.Warn("host endpoint with applyOnForward policy on a named interface on Windows: HNS cannot tell which interface traffic crosses, so the policy "+
					"applies to all pods' traffic through the host", "host_endpoint", id, "interface", h.InterfaceName)
			}
		}
	}
	return out, errors.Join(errs...)
}

func sortedWorkloads(m map[dpmodel.WorkloadEndpointID]dpmodel.WorkloadEndpoint) []dpmodel.WorkloadEndpointID {
	ids := make([]dpmodel.WorkloadEndpointID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b dpmodel.WorkloadEndpointID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

// commonPolicies are the endpoint policies every pod gets: the encapsulation overhead (its MTU).
func (d *Dataplane) commonPolicies() []hcn.EndpointPolicy {
	overhead := 50 // VXLAN over IPv4
	if m := d.state.Config.VXLANMTU; m > 0 && d.opts.HostMTU-m > overhead {
		overhead = d.opts.HostMTU - m
	}
	return []hcn.EndpointPolicy{hcn.NewEndpointPolicy(hcn.EndpointPolicyEncapOverhead, hcn.EncapOverheadSetting{Overhead: uint16(overhead)})}
}

// PodNATPolicies returns the OutBoundNAT and SDNRoute endpoint policies that Apply gives a pod at address
// a, given the IP pools and the service ranges: the CNI sets them when it creates the pod's endpoint, so
// that the pod's first packets are NATed and reach services before the agent's first pass.
func PodNATPolicies(pools map[netip.Prefix]dpmodel.Pool, services []netip.Prefix, a netip.Addr) []hcn.EndpointPolicy {
	return natPolicies(&dpmodel.State{Pools: pools}, services, a)
}

// natPolicies are a pod's OutBoundNAT (when its pool has natOutgoing; exceptions: every pool and the
// service ranges) and the SDNRoutes that send service traffic through the overlay.
func natPolicies(s *dpmodel.State, services []netip.Prefix, a netip.Addr) []hcn.EndpointPolicy {
	var out []hcn.EndpointPolicy
	nat := false
	var exceptions []string
	for cidr, p := range s.Pools {
		if !cidr.Addr().Is4() {
			continue
		}
		exceptions = append(exceptions, cidr.Masked().String())
		if cidr.Contains(a) && p.NATOutgoing && !p.Disabled {
			nat = true
		}
	}
	for _, svc := range services {
		if svc.Addr().Is4() {
			exceptions = append(exceptions, svc.Masked().String())
		}
	}
	slices.Sort(exceptions)
	exceptions = slices.Compact(exceptions)
	if nat {
		out = append(out, hcn.NewEndpointPolicy(hcn.EndpointPolicyOutBoundNAT, hcn.OutboundNATSetting{Exceptions: exceptions}))
	}
	for _, svc := range services {
		if svc.Addr().Is4() {
			out = append(out, hcn.NewEndpointPolicy(hcn.EndpointPolicySDNRoute, hcn.SDNRouteSetting{DestinationPrefix: svc.Masked().String(), NeedEncap: true}))
		}
	}
	return out
}

// renderACLs renders both directions of a workload's policy. Inbound traffic from the host's own
// addresses is allowed first, as on Linux where host → local pod traffic skips the pod's policy
// (kubelet probes).
func (d *Dataplane) renderACLs(c *compiler, w dpmodel.WorkloadEndpoint, host []netip.Prefix, block netip.Prefix, gapRules map[string]map[string]bool, sets map[string]bool) ([]hcn.EndpointPolicy, error) {
	var out []hcn.EndpointPolicy
	var errs []error
	// Everything but this node's pods and the host: where traffic crossing a host interface comes from
	// or goes to (a superset: remote pods' traffic arrives through the VXLAN device).
	outside := addrs{any: true}.minus(normNets(append([]netip.Prefix{block}, host...)))
	fwdIn, fwdOut := d.hostForwardPolicy()
	for _, ingress := range []bool{true, false} {
		gates := d.forwardGates(c, ingress)
		f := &flattener{c: c, stages: append(gates, c.stages(w.Tiers, w.ProfileIDs, ingress)...)}
		dir := hcn.DirectionOut
		if !ingress && d.endpointToHostDrop() {
			// Felix's workload-to-host chain: the pod's egress policy, then DefaultEndpointToHostAction;
			// Drop denies whatever the policy said, so the deny can come first.
			toHost := anyCube
			toHost.dst = addrs{nets: host}
			f.add(entry{c: toHost, allow: false, rule: "tortie/endpoint-to-host-drop"})
		}
		through := anyCube // traffic through the host
		if ingress {
			through.src = outside
		} else {
			through.dst = outside
		}
		if !ingress && fwdOut {
			f.add(entry{c: through, allow: false, rule: "tortie/host-endpoint-forward-egress"})
		}
		if ingress {
			dir = hcn.DirectionIn
			hostCube := anyCube
			hostCube.src = addrs{nets: host}
			f.add(entry{c: hostCube, allow: true, rule: "tortie/host-to-endpoint"})
			if fwdIn {
				f.add(entry{c: through, allow: false, rule: "tortie/host-endpoint-forward-ingress"})
			}
		}
		if len(gates) > 0 {
			// Traffic through the host: the host endpoints' forward policy, then the pod's. The
			// sub-list covers all of it; the rest of the list sees only local pods and the host.
			f.flatten(0, through)
		}
		f.flatten(len(gates), anyCube)
		entries := f.out
		var err error
		var acls []hcn.ACLSetting
		if !f.over {
			acls, err = render(entries, dir, 1000, d.opts.ChunkSize)
		}
		if f.over || err != nil {
			if err == nil {
				err = fmt.Errorf("%w: more than %d in direction %s", errTooManyRules, d.opts.MaxRules, dir)
			}
			errs = append(errs, fmt.Errorf("%w; the endpoint denies all in that direction until its policy is simplified (fewer tiers or Pass rules)", err))
			entries = []entry{{c: anyCube, allow: false, rule: "tortie/too-many-rules"}}
			acls, _ = render(entries, dir, 1000, d.opts.ChunkSize)
		}
		referencedSets(entries, sets)
		for _, g := range f.gaps {
			if gapRules[g.Effect] == nil {
				gapRules[g.Effect] = map[string]bool{}
			}
			gapRules[g.Effect][g.Rule] = true
			if d.firstTime("gap:" + g.Rule + g.Effect) {
				d.log.Warn("HNS cannot express a rule exactly; it is rendered to deny more, never less", "rule", g.Rule, "what", g.What, "effect", g.Effect)
			}
		}
		for _, a := range acls {
			out = append(out, hcn.NewEndpointPolicy(hcn.EndpointPolicyACL, a))
		}
	}
	return out, errors.Join(errs...)
}

// forwardGates returns the local host endpoints' applyOnForward tiers of one direction as gate stages to
// put in front of a pod's: a packet through the host must be allowed by each host endpoint's forward
// policy (in the order of their names) and then by the pod's, as Felix's FORWARD chain requires. Felix
// applies a host endpoint's policy only to traffic crossing its interfaces; here every host endpoint's
// applies to all traffic between the pod and anything but local pods and the host (more denies, never
// fewer, except for a `*` host endpoint, whose interfaces are all of the host's).
func (d *Dataplane) forwardGates(c *compiler, ingress bool) []stage {
	var out []stage
	var groups []int // where each host endpoint's stages end
	for _, id := range sortedKeys(d.state.HostEndpoints) {
		sts := c.stages(d.state.HostEndpoints[id].ForwardTiers, nil, ingress)
		if len(sts) == 0 {
			continue
		}
		for k := range sts {
			sts[k].gate = true
		}
		sts[len(sts)-1].last = true
		out = append(out, sts...)
		groups = append(groups, len(out))
	}
	start := 0
	for _, end := range groups {
		for k := start; k < end; k++ {
			out[k].allowTo = end
		}
		start = end
	}
	return out
}

// hostForwardPolicy reports whether a local host endpoint has policy HNS cannot evaluate for traffic
// that crosses it on its way into (in: preDNAT or doNotTrack ingress policies) or out of (out:
// doNotTrack egress policies) this node's pods: preDNAT policy matches the destination before the load
// balancer rewrote it, and a doNotTrack Allow bypasses all other policy. Such traffic is denied: more than
// Linux denies, never less (docs/dataplane-windows.md, "Host endpoints").
func (d *Dataplane) hostForwardPolicy() (in, out bool) {
	has := func(ts []dpmodel.TierInfo, ingress bool) bool {
		for _, t := range ts {
			if (ingress && len(t.Ingress) > 0) || (!ingress && len(t.Egress) > 0) {
				return true
			}
		}
		return false
	}
	for _, h := range d.state.HostEndpoints {
		in = in || has(h.PreDNATTiers, true) || has(h.UntrackedTiers, true)
		out = out || has(h.UntrackedTiers, false)
	}
	return in, out
}

// endpointToHostDrop reports whether pods' traffic to the host is dropped (DefaultEndpointToHostAction
// Drop, the default). Accept and Return leave it to the pod's egress policy: Return hands the packet to
// the host's own rules, which on Windows are Windows Firewall's, not HNS's.
func (d *Dataplane) endpointToHostDrop() bool {
	a := d.state.Config.DefaultEndpointToHostAction
	return a == "" || strings.EqualFold(a, "Drop")
}

// managed reports whether the agent owns an endpoint policy (others, such as the CNI's
// ProviderAddress and its loopback-DSR OutBoundNAT — the one with Destinations — are kept as they are).
func managed(p hcn.EndpointPolicy) bool {
	switch p.Type {
	case hcn.EndpointPolicyOutBoundNAT:
		var s hcn.OutboundNATSetting
		return hcn.DecodeSettings(string(p.Type), p.Settings, &s) != nil || len(s.Destinations) == 0
	case hcn.EndpointPolicyACL, hcn.EndpointPolicySDNRoute, hcn.EndpointPolicyEncapOverhead:
		return true
	}
	return false
}

// normalise re-encodes policies through tortie's types, so that a list read back from HNS compares
// equal to the one written whatever HNS's field order.
func normalise(ps []hcn.EndpointPolicy) []byte {
	var buf bytes.Buffer
	for _, p := range ps {
		var v any
		switch p.Type {
		case hcn.EndpointPolicyACL:
			v = &hcn.ACLSetting{}
		case hcn.EndpointPolicyOutBoundNAT:
			v = &hcn.OutboundNATSetting{}
		case hcn.EndpointPolicySDNRoute:
			v = &hcn.SDNRouteSetting{}
		case hcn.EndpointPolicyEncapOverhead:
			v = &hcn.EncapOverheadSetting{}
		case hcn.EndpointPolicyProviderAddress:
			v = &hcn.ProviderAddressSetting{}
		}
		buf.WriteString(string(p.Type))
		if v != nil && json.Unmarshal(p.Settings, v) == nil {
			b, _ := json.Marshal(v)
			buf.Write(b)
		} else {
			buf.Write(p.Settings)
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// syncEndpoints applies each local pod endpoint's policies when they differ from what HNS holds (one
// call per endpoint, none when unchanged: re-applying ACLs resets the endpoint's connections), and
// deletes endpoints of the overlay network that no pod uses (not attached to a namespace and not a
// local workload's): leaks of failed pod starts.
func (d *Dataplane) syncEndpoints(ctx context.Context, n *hcn.Network, eps []hcn.Endpoint, r rendered) error {
	var errs []error
	seen := map[netip.Addr]bool{}
	for _, e := range eps {
		if e.HostComputeNetwork != n.ID || e.Flags&hcn.EndpointRemote != 0 || e.Name == config.HNSHostEndpoint {
			continue
		}
		var want *endpointPolicy
		for _, ipc := range e.IpConfigurations {
			if a, err := netip.ParseAddr(ipc.IpAddress); err == nil && r.byIP[a] != nil {
				want = r.byIP[a]
				seen[a] = true
			}
		}
		if want == nil {
			if e.HostComputeNamespace == "" {
				if err := d.api.DeleteEndpoint(ctx, e.ID); err != nil && !hcn.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting the stale HNS endpoint %s (%s): %w", e.Name, e.ID, err))
				} else {
					d.log.Info("deleted a stale HNS endpoint", "endpoint", e.Name, "id", e.ID)
				}
			}
			continue
		}
		var next []hcn.EndpointPolicy
		for _, p := range e.Policies {
			if !managed(p) {
				next = append(next, p)
			}
		}
		next = append(next, want.policies...)
		if bytes.Equal(normalise(next), normalise(e.Policies)) {
			continue
		}
		d.status.PolicyCalls++
		if err := d.api.ApplyEndpointPolicy(ctx, e.ID, hcn.RequestUpdate, next); err != nil {
			errs = append(errs, fmt.Errorf("applying %d policies to the HNS endpoint %s of workload %s: %w", len(next), e.ID, want.id, err))
		}
	}
	d.status.MissingEndpoints = nil
	missing := map[dpmodel.WorkloadEndpointID]bool{}
	for a, p := range r.byIP {
		if !seen[a] && !missing[p.id] {
			missing[p.id] = true
			d.status.MissingEndpoints = append(d.status.MissingEndpoints, p.id)
		}
	}
	slices.SortFunc(d.status.MissingEndpoints, func(a, b dpmodel.WorkloadEndpointID) int { return strings.Compare(a.String(), b.String()) })
	return errors.Join(errs...)
}

// syncSets creates and updates the SetPolicy IP sets the ACLs refer to (removals=false, before the
// endpoints) or removes the ones no ACL refers to any more (removals=true, after them).
func (d *Dataplane) syncSets(ctx context.Context, n *hcn.Network, want map[string]bool, removals bool) error {
	if !d.features.SetPolicy {
		return nil
	}
	have := map[string]hcn.SetPolicySetting{}
	for _, p := range n.Policies {
		var s hcn.SetPolicySetting
		if p.Type == hcn.NetworkPolicySetPolicy && hcn.DecodeSettings(string(p.Type), p.Settings, &s) == nil && strings.HasPrefix(s.Id, "tortie-s-") {
			have[s.Id] = s
		}
	}
	wantByHNS := map[string]string{}
	for id := range want {
		wantByHNS[setPolicyID(id)] = id
	}
	if removals {
		var remove []hcn.NetworkPolicy
		for _, hid := range sortedKeys(have) {
			if _, ok := wantByHNS[hid]; !ok {
				remove = append(remove, hcn.NewNetworkPolicy(hcn.NetworkPolicySetPolicy, have[hid]))
			}
		}
		if len(remove) == 0 {
			return nil
		}
		if err := d.api.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestRemove, remove); err != nil {
			return fmt.Errorf("removing %d IP sets from HNS network %s: %w", len(remove), n.Name, err)
		}
		return nil
	}
	var add, update []hcn.NetworkPolicy
	for _, hid := range sortedKeys(wantByHNS) {
		id := wantByHNS[hid]
		members, _ := (&compiler{state: d.state}).setMembers(id)
		vals := make([]string, len(members))
		for i, m := range members {
			if m.IsSingleIP() {
				vals[i] = m.Addr().String()
			} else {
				vals[i] = m.String()
			}
		}
		s := hcn.SetPolicySetting{Id: hid, Name: id, PolicyType: hcn.SetPolicyIPSet, Values: strings.Join(vals, ",")}
		old, ok := have[hid]
		switch {
		case !ok:
			add = append(add, hcn.NewNetworkPolicy(hcn.NetworkPolicySetPolicy, s))
		case old != s:
			update = append(update, hcn.NewNetworkPolicy(hcn.NetworkPolicySetPolicy, s))
		}
		// Keep the in-memory view current for the removal pass.
		n.Policies = append(n.Policies, hcn.NewNetworkPolicy(hcn.NetworkPolicySetPolicy, s))
	}
	if len(add) > 0 {
		if err := d.api.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestAdd, add); err != nil {
			return fmt.Errorf("adding %d IP sets to HNS network %s: %w", len(add), n.Name, err)
		}
	}
	if len(update) > 0 {
		if err := d.api.ModifyNetworkPolicies(ctx, n.ID, hcn.RequestUpdate, update); err != nil {
			return fmt.Errorf("updating %d IP sets of HNS network %s: %w", len(update), n.Name, err)
		}
	}
	return nil
}

// Cleanup deletes the HNS objects tortie owns: the endpoints of its networks, then the overlay and the
// External network. A clean host stays clean.
func (d *Dataplane) Cleanup(ctx context.Context) error {
	networks, err := d.api.ListNetworks(ctx)
	if err != nil {
		return fmt.Errorf("listing HNS networks: %w", err)
	}
	eps, err := d.api.ListEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("listing HNS endpoints: %w", err)
	}
	var errs []error
	for _, name := range []string{config.HNSOverlayNetwork, config.HNSExternalNetwork} {
		n := findNetwork(networks, name)
		if n == nil {
			continue
		}
		for _, e := range eps {
			if e.HostComputeNetwork != n.ID {
				continue
			}
			if err := d.api.DeleteEndpoint(ctx, e.ID); err != nil && !hcn.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting HNS endpoint %s (%s): %w", e.Name, e.ID, err))
			}
		}
		if err := d.api.DeleteNetwork(ctx, n.ID); err != nil && !hcn.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting HNS network %s (%s): %w", name, n.ID, err))
		}
	}
	d.resync = true
	return errors.Join(errs...)
}
