package hcnfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tortie-net/tortie/windows/hcn"
)

// Options configure a fake HNS.
type Options struct {
	// Version is the HNS version the fake reports and gates features on (default 15.1, Windows Server
	// 2025).
	Version hcn.Version
	// ProviderAddress is the host's management address, which HNS reports as an Overlay network's
	// ProviderAddress policy (default 192.0.2.10).
	ProviderAddress netip.Addr
	// NoMatchAllows models HNS builds before Windows Server 2025, where a packet that no ACL matches is
	// allowed even though ACLs are attached.
	NoMatchAllows bool
}

// HNS is the fake. The zero value is not usable: call New. Safe for concurrent use.
type HNS struct {
	mu   sync.Mutex
	opts Options
	feat hcn.Features

	networks   map[string]*hcn.Network
	endpoints  map[string]*hcn.Endpoint
	namespaces map[string]*hcn.Namespace
	containers map[string]*container
	nextID     int
	macs       int

	vswitch bool
	blips   int

	calls   map[string]int
	failing []failure
	latency time.Duration

	// gen counts state changes; the evaluator's compiled ACLs are valid for one generation.
	gen       int
	compiled  map[string]*compiledEndpoint
	setsCache map[string]setsAt

	// file is the state file of a fake made by Open (nil for New).
	file *fileStore
}

// container is a running container of the Docker flow (a pod's infra container), which HNS endpoints
// are hot-attached to. Its network compartment is an HNS namespace (Namespace), created with it.
type container struct {
	Namespace string
	Endpoints []string
}

type setsAt struct {
	gen  int
	sets map[string][]netip.Prefix
}

type failure struct {
	call string // "" = any
	err  error
	when func(call, object string) bool
	once bool
}

// New returns an empty fake HNS.
func New(opts Options) *HNS {
	if opts.Version == (hcn.Version{}) {
		opts.Version = hcn.Version{Major: 15, Minor: 1}
	}
	if !opts.ProviderAddress.IsValid() {
		opts.ProviderAddress = netip.MustParseAddr("192.0.2.10")
	}
	return &HNS{
		opts:       opts,
		feat:       hcn.FeaturesFor(opts.Version),
		networks:   map[string]*hcn.Network{},
		endpoints:  map[string]*hcn.Endpoint{},
		namespaces: map[string]*hcn.Namespace{},
		containers: map[string]*container{},
		calls:      map[string]int{},
	}
}

var (
	_ hcn.API          = (*HNS)(nil)
	_ hcn.ContainerAPI = (*HNS)(nil)
)

// ---- fault injection and counters ----

// FailNext makes the next call named call ("CreateNetwork", "ApplyEndpointPolicy", ...; "" = any call)
// fail with err, changing nothing.
func (h *HNS) FailNext(call string, err error) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = append(h.failing, failure{call: call, err: err, once: true})
}

// FailWhen makes every call for which when(call, object) holds fail with err until ClearFailures.
func (h *HNS) FailWhen(when func(call, object string) bool, err error) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = append(h.failing, failure{when: when, err: err})
}

// ClearFailures removes every injected failure.
func (h *HNS) ClearFailures() {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = nil
}

// SetLatency makes every call take d (or until its context ends).
func (h *HNS) SetLatency(d time.Duration) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latency = d
}

// Calls returns how many times each call was made (failed ones included).
func (h *HNS) Calls() map[string]int {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.calls)
}

// ResetCalls zeroes the call counters.
func (h *HNS) ResetCalls() {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = map[string]int{}
}

// Blips returns how many times the host lost connectivity because HNS created or removed the vSwitch.
func (h *HNS) Blips() int {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.blips
}

// Restart models an HNS service restart: endpoints and namespaces are lost (pods keep running without
// networking), and so are networks created non-persistent.
func (h *HNS) Restart() {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.endpoints = map[string]*hcn.Endpoint{}
	h.namespaces = map[string]*hcn.Namespace{}
	// Containers belong to HCS and keep running, in their compartments, without their endpoints.
	for _, c := range h.containers {
		c.Endpoints = nil
		h.namespaces[c.Namespace] = &hcn.Namespace{ID: c.Namespace, Type: hcn.NamespaceGuest}
	}
	for id, n := range h.networks {
		if n.Flags&hcn.EnableNonPersistent != 0 {
			delete(h.networks, id)
		}
	}
	h.updateVSwitch()
}

// Reboot models a host reboot: everything but NAT networks is gone.
func (h *HNS) Reboot() {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.endpoints = map[string]*hcn.Endpoint{}
	h.namespaces = map[string]*hcn.Namespace{}
	h.containers = map[string]*container{}
	for id, n := range h.networks {
		if n.Type != hcn.NetworkNAT {
			delete(h.networks, id)
		}
	}
	h.vswitch = false // the reboot itself took the host down; no extra blip
}

// begin counts the call, waits the latency and returns an injected failure. It is called without the
// lock held and takes it for the bookkeeping.
func (h *HNS) begin(ctx context.Context, call, object string) error {
	h.mu.Lock()
	if err := h.fileErr(); err != nil {
		h.mu.Unlock()
		return fmt.Errorf("HNS %s %s: %w", call, object, err)
	}
	h.calls[call]++
	lat := h.latency
	var err error
	for i, f := range h.failing {
		if (f.when != nil && f.when(call, object)) || (f.when == nil && (f.call == "" || f.call == call)) {
			err = f.err
			if f.once {
				h.failing = slices.Delete(h.failing, i, i+1)
			}
			break
		}
	}
	h.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("HNS %s %s: %w", call, object, ctx.Err())
		case <-t.C:
		}
	}
	if err != nil {
		return fmt.Errorf("HNS %s %s: %w", call, object, err)
	}
	return nil
}

func (h *HNS) newID() string {
	h.nextID++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", h.nextID, h.nextID)
}

func notFound(call, kind, id string) error {
	return fmt.Errorf("HNS %s: %s %s: %w", call, kind, id, hcn.ErrNotFound)
}

func invalid(call, object, format string, args ...any) error {
	return fmt.Errorf("HNS %s %s: the parameter is incorrect: %s", call, object, fmt.Sprintf(format, args...))
}

// clonesByID returns copies of the objects of m, keyed by ID, in ID order (what HNS's list calls give).
func clonesByID[T any](m map[string]*T) []T {
	out := make([]T, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *clone(m[id]))
	}
	return out
}

func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

func (h *HNS) updateVSwitch() {
	want := false
	for _, n := range h.networks {
		if n.Type != hcn.NetworkNAT {
			want = true
		}
	}
	if want != h.vswitch {
		h.vswitch = want
		h.blips++
	}
}

// ---- version ----

func (h *HNS) Version(ctx context.Context) (hcn.Version, error) {
	defer h.txn()()
	if err := h.begin(ctx, "Version", ""); err != nil {
		return hcn.Version{}, err
	}
	return h.opts.Version, nil
}

// ---- networks ----

func (h *HNS) ListNetworks(ctx context.Context) ([]hcn.Network, error) {
	defer h.txn()()
	if err := h.begin(ctx, "ListNetworks", ""); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return clonesByID(h.networks), nil
}

func (h *HNS) GetNetworkByName(ctx context.Context, name string) (*hcn.Network, error) {
	defer h.txn()()
	if err := h.begin(ctx, "GetNetworkByName", name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.networks {
		if n.Name == name {
			return clone(n), nil
		}
	}
	return nil, notFound("GetNetworkByName", "network", name)
}

func (h *HNS) CreateNetwork(ctx context.Context, n *hcn.Network) (*hcn.Network, error) {
	defer h.txn()()
	const call = "CreateNetwork"
	if err := h.begin(ctx, call, n.Name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	for _, o := range h.networks {
		if o.Name == n.Name {
			return nil, fmt.Errorf("HNS %s %s: a network with this name already exists (%s)", call, n.Name, o.ID)
		}
	}
	nn := clone(n)
	switch nn.Type {
	case hcn.NetworkOverlay:
		if len(nn.Ipams) != 1 || nn.Ipams[0].Type != "Static" || len(nn.Ipams[0].Subnets) == 0 {
			return nil, invalid(call, n.Name, "an Overlay network needs one Static ipam with subnets")
		}
		for _, s := range nn.Ipams[0].Subnets {
			if _, err := netip.ParsePrefix(s.IpAddressPrefix); err != nil {
				return nil, invalid(call, n.Name, "subnet %q: %v", s.IpAddressPrefix, err)
			}
			vsid := -1
			for _, p := range s.Policies {
				if p.Type == hcn.SubnetPolicyVSID {
					var v hcn.VSIDSetting
					if err := hcn.DecodeSettings(string(p.Type), p.Settings, &v); err != nil {
						return nil, invalid(call, n.Name, "%v", err)
					}
					vsid = int(v.IsolationId)
				}
			}
			if vsid < 4096 {
				return nil, invalid(call, n.Name, "subnet %s: an Overlay subnet needs a VSID policy with IsolationId >= 4096", s.IpAddressPrefix)
			}
		}
	case hcn.NetworkNAT, hcn.NetworkL2Bridge:
	default:
		return nil, invalid(call, n.Name, "network type %q is not modelled", nn.Type)
	}
	for _, p := range nn.Policies {
		if err := h.checkNetworkPolicyType(call, n.Name, nn, p); err != nil {
			return nil, err
		}
	}
	nn.ID = h.newID()
	if nn.Type == hcn.NetworkOverlay {
		h.macs++
		nn.Policies = append(nn.Policies,
			hcn.NewNetworkPolicy(hcn.NetworkPolicyProviderAddress, hcn.ProviderAddressSetting{ProviderAddress: h.opts.ProviderAddress.String()}),
			hcn.NewNetworkPolicy(hcn.NetworkPolicyDrMacAddress, hcn.DrMacAddressSetting{Address: fmt.Sprintf("00-15-5D-%02X-%02X-%02X", (h.macs>>16)&0xff, (h.macs>>8)&0xff, h.macs&0xff)}))
	}
	h.networks[nn.ID] = nn
	h.updateVSwitch()
	return clone(nn), nil
}

func (h *HNS) checkNetworkPolicyType(call, object string, n *hcn.Network, p hcn.NetworkPolicy) error {
	switch p.Type {
	case hcn.NetworkPolicyHostRoute:
		if !h.feat.HostRoute {
			return invalid(call, object, "HostRoute needs HNS 9.2 (this is %s)", h.opts.Version)
		}
	case hcn.NetworkPolicyVxlanPort:
		if !h.feat.VxlanPort {
			return invalid(call, object, "VxlanPort needs HNS 10.3 (this is %s)", h.opts.Version)
		}
		var s hcn.VxlanPortSetting
		if err := hcn.DecodeSettings(string(p.Type), p.Settings, &s); err != nil || s.Port == 0 {
			return invalid(call, object, "VxlanPort: bad settings %s", p.Settings)
		}
	case hcn.NetworkPolicyNetAdapterName:
	case hcn.NetworkPolicyRemoteSubnetRoute:
		if !h.feat.RemoteSubnet {
			return invalid(call, object, "RemoteSubnetRoute needs HNS 9.2 (this is %s)", h.opts.Version)
		}
		if n.Type != hcn.NetworkOverlay {
			return invalid(call, object, "RemoteSubnetRoute on a %s network", n.Type)
		}
		var s hcn.RemoteSubnetRouteSetting
		if err := hcn.DecodeSettings(string(p.Type), p.Settings, &s); err != nil {
			return invalid(call, object, "%v", err)
		}
		if _, err := netip.ParsePrefix(s.DestinationPrefix); err != nil {
			return invalid(call, object, "RemoteSubnetRoute DestinationPrefix %q", s.DestinationPrefix)
		}
		if _, err := netip.ParseAddr(s.ProviderAddress); err != nil {
			return invalid(call, object, "RemoteSubnetRoute ProviderAddress %q", s.ProviderAddress)
		}
		if len(s.DistributedRouterMacAddress) != 17 || strings.Contains(s.DistributedRouterMacAddress, ":") {
			return invalid(call, object, "RemoteSubnetRoute DistributedRouterMacAddress %q is not aa-bb-cc-dd-ee-ff", s.DistributedRouterMacAddress)
		}
	case hcn.NetworkPolicySetPolicy:
		if !h.feat.SetPolicy {
			return invalid(call, object, "SetPolicy needs HNS 13.0 (this is %s)", h.opts.Version)
		}
		var s hcn.SetPolicySetting
		if err := hcn.DecodeSettings(string(p.Type), p.Settings, &s); err != nil {
			return invalid(call, object, "%v", err)
		}
		if s.Id == "" || s.PolicyType != hcn.SetPolicyIPSet {
			return invalid(call, object, "SetPolicy needs an Id and PolicyType IPSET (got %q, %q)", s.Id, s.PolicyType)
		}
		if s.Values != "" {
			for _, v := range strings.Split(s.Values, ",") {
				if _, ok := parseAddrOrPrefix(v); !ok {
					return invalid(call, object, "SetPolicy %s: value %q is not an address or CIDR", s.Id, v)
				}
			}
		}
	case hcn.NetworkPolicyProviderAddress, hcn.NetworkPolicyDrMacAddress:
		return invalid(call, object, "%s is set by HNS", p.Type)
	default:
		return invalid(call, object, "network policy type %q is not modelled", p.Type)
	}
	return nil
}

func (h *HNS) DeleteNetwork(ctx context.Context, id string) error {
	defer h.txn()()
	if err := h.begin(ctx, "DeleteNetwork", id); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	if _, ok := h.networks[id]; !ok {
		return notFound("DeleteNetwork", "network", id)
	}
	for eid, e := range h.endpoints {
		if e.HostComputeNetwork == id {
			delete(h.endpoints, eid)
		}
	}
	delete(h.networks, id)
	h.updateVSwitch()
	return nil
}

// policyKey identifies a network policy for Remove and duplicate checks: a RemoteSubnetRoute by its
// prefix, a SetPolicy by its Id, others by type.
func policyKey(p hcn.NetworkPolicy) string {
	switch p.Type {
	case hcn.NetworkPolicyRemoteSubnetRoute:
		var s hcn.RemoteSubnetRouteSetting
		_ = json.Unmarshal(p.Settings, &s)
		return string(p.Type) + "/" + s.DestinationPrefix
	case hcn.NetworkPolicySetPolicy:
		var s hcn.SetPolicySetting
		_ = json.Unmarshal(p.Settings, &s)
		return string(p.Type) + "/" + s.Id
	}
	return string(p.Type)
}

func (h *HNS) ModifyNetworkPolicies(ctx context.Context, networkID string, rt hcn.RequestType, ps []hcn.NetworkPolicy) error {
	defer h.txn()()
	call := "ModifyNetworkPolicies"
	if err := h.begin(ctx, call, networkID); err != nil {
		return err
	}
	call += " " + string(rt)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	n, ok := h.networks[networkID]
	if !ok {
		return notFound(call, "network", networkID)
	}
	// Validate everything first: a request is applied whole or not at all.
	next := slices.Clone(n.Policies)
	keys := make([]string, len(next))
	for i, q := range next {
		keys[i] = policyKey(q)
	}
	for _, p := range ps {
		k := policyKey(p)
		i := slices.Index(keys, k)
		switch rt {
		case hcn.RequestAdd, hcn.RequestUpdate:
			if err := h.checkNetworkPolicyType(call, networkID, n, p); err != nil {
				return err
			}
			if i >= 0 && (rt == hcn.RequestAdd || p.Type != hcn.NetworkPolicySetPolicy) {
				return fmt.Errorf("HNS %s %s: policy %s already exists", call, networkID, k)
			}
			if i >= 0 {
				next[i] = p
			} else if rt == hcn.RequestUpdate {
				return notFound(call, "policy", k)
			} else {
				next = append(next, p)
				keys = append(keys, k)
			}
		case hcn.RequestRemove:
			if i < 0 {
				return notFound(call, "policy", k)
			}
			if p.Type == hcn.NetworkPolicySetPolicy {
				var s hcn.SetPolicySetting
				_ = json.Unmarshal(p.Settings, &s)
				if ep := h.setReferrer(networkID, s.Id); ep != "" {
					return fmt.Errorf("HNS %s %s: SetPolicy %s is in use by an ACL of endpoint %s", call, networkID, s.Id, ep)
				}
			}
			if p.Type == hcn.NetworkPolicyProviderAddress || p.Type == hcn.NetworkPolicyDrMacAddress {
				return invalid(call, networkID, "%s is set by HNS", p.Type)
			}
			next = slices.Delete(next, i, i+1)
			keys = slices.Delete(keys, i, i+1)
		default:
			return invalid(call, networkID, "request type %q", rt)
		}
	}
	n.Policies = next
	return nil
}

// setReferrer returns an endpoint of network whose ACLs refer to set id, or "".
func (h *HNS) setReferrer(network, id string) string {
	for _, e := range h.endpoints {
		if e.HostComputeNetwork != network {
			continue
		}
		for _, a := range acls(e) {
			for _, f := range []string{a.LocalAddresses, a.RemoteAddresses} {
				if slices.Contains(splitList(f), id) {
					return e.ID
				}
			}
		}
	}
	return ""
}

// sets returns the SetPolicy sets of network: Id → members.
func (h *HNS) sets(network string) map[string][]netip.Prefix {
	n := h.networks[network]
	if n == nil {
		return nil
	}
	if c, ok := h.setsCache[network]; ok && c.gen == h.gen {
		return c.sets
	}
	out := map[string][]netip.Prefix{}
	defer func() {
		if h.setsCache == nil {
			h.setsCache = map[string]setsAt{}
		}
		h.setsCache[network] = setsAt{gen: h.gen, sets: out}
	}()
	for _, p := range n.Policies {
		if p.Type != hcn.NetworkPolicySetPolicy {
			continue
		}
		var s hcn.SetPolicySetting
		_ = json.Unmarshal(p.Settings, &s)
		var ms []netip.Prefix
		for _, v := range splitList(s.Values) {
			if pfx, ok := parseAddrOrPrefix(v); ok {
				ms = append(ms, pfx)
			}
		}
		out[s.Id] = ms
	}
	return out
}

// ---- endpoints ----

func (h *HNS) ListEndpoints(ctx context.Context) ([]hcn.Endpoint, error) {
	defer h.txn()()
	if err := h.begin(ctx, "ListEndpoints", ""); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return clonesByID(h.endpoints), nil
}

func (h *HNS) GetEndpointByID(ctx context.Context, id string) (*hcn.Endpoint, error) {
	defer h.txn()()
	if err := h.begin(ctx, "GetEndpointByID", id); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.endpoints[id]
	if !ok {
		return nil, notFound("GetEndpointByID", "endpoint", id)
	}
	return clone(e), nil
}

func (h *HNS) CreateEndpoint(ctx context.Context, ep *hcn.Endpoint) (*hcn.Endpoint, error) {
	defer h.txn()()
	const call = "CreateEndpoint"
	if err := h.begin(ctx, call, ep.Name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	n, ok := h.networks[ep.HostComputeNetwork]
	if !ok {
		return nil, notFound(call, "network", ep.HostComputeNetwork)
	}
	if len(ep.IpConfigurations) == 0 {
		return nil, invalid(call, ep.Name, "no IpConfigurations")
	}
	for _, ipc := range ep.IpConfigurations {
		a, err := netip.ParseAddr(ipc.IpAddress)
		if err != nil {
			return nil, invalid(call, ep.Name, "IpAddress %q", ipc.IpAddress)
		}
		if !inSubnets(n, a) {
			return nil, invalid(call, ep.Name, "address %s is outside the subnets of network %s", a, n.Name)
		}
		for _, o := range h.endpoints {
			if o.HostComputeNetwork == n.ID && slices.ContainsFunc(o.IpConfigurations, func(c hcn.IPConfig) bool { return c.IpAddress == ipc.IpAddress }) {
				return nil, fmt.Errorf("HNS %s %s: address %s is in use by endpoint %s (%s)", call, ep.Name, a, o.Name, o.ID)
			}
		}
	}
	ne := clone(ep)
	ne.ID = h.newID()
	ne.HostComputeNamespace = ""
	if err := h.checkEndpointPolicies(call, ne, ne.Policies); err != nil {
		return nil, err
	}
	h.endpoints[ne.ID] = ne
	return clone(ne), nil
}

func inSubnets(n *hcn.Network, a netip.Addr) bool {
	for _, ipam := range n.Ipams {
		for _, s := range ipam.Subnets {
			if p, err := netip.ParsePrefix(s.IpAddressPrefix); err == nil && p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func (h *HNS) DeleteEndpoint(ctx context.Context, id string) error {
	defer h.txn()()
	if err := h.begin(ctx, "DeleteEndpoint", id); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	if _, ok := h.endpoints[id]; !ok {
		return notFound("DeleteEndpoint", "endpoint", id)
	}
	delete(h.endpoints, id)
	for _, c := range h.containers {
		c.Endpoints = slices.DeleteFunc(c.Endpoints, func(e string) bool { return e == id })
	}
	return nil
}

func (h *HNS) ApplyEndpointPolicy(ctx context.Context, endpointID string, rt hcn.RequestType, ps []hcn.EndpointPolicy) error {
	defer h.txn()()
	call := "ApplyEndpointPolicy"
	if err := h.begin(ctx, call, endpointID); err != nil {
		return err
	}
	call += " " + string(rt)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	e, ok := h.endpoints[endpointID]
	if !ok {
		return notFound(call, "endpoint", endpointID)
	}
	if err := h.checkEndpointPolicies(call, e, ps); err != nil {
		return err
	}
	switch rt {
	case hcn.RequestUpdate:
		e.Policies = slices.Clone(ps)
	case hcn.RequestAdd:
		e.Policies = append(e.Policies, ps...)
	case hcn.RequestRemove:
		next := slices.Clone(e.Policies)
		for _, p := range ps {
			i := slices.IndexFunc(next, func(q hcn.EndpointPolicy) bool {
				return q.Type == p.Type && bytes.Equal(q.Settings, p.Settings)
			})
			if i < 0 {
				return notFound(call, "policy", string(p.Type)+" "+string(p.Settings))
			}
			next = slices.Delete(next, i, i+1)
		}
		e.Policies = next
	default:
		return invalid(call, endpointID, "request type %q", rt)
	}
	return nil
}

func (h *HNS) checkEndpointPolicies(call string, e *hcn.Endpoint, ps []hcn.EndpointPolicy) error {
	sets := h.sets(e.HostComputeNetwork)
	for i, p := range ps {
		object := fmt.Sprintf("%s policy %d (%s)", e.Name, i, p.Type)
		switch p.Type {
		case hcn.EndpointPolicyACL:
			var a hcn.ACLSetting
			if err := hcn.DecodeSettings(string(p.Type), p.Settings, &a); err != nil {
				return invalid(call, object, "%v", err)
			}
			if err := h.checkACL(a, sets); err != nil {
				return invalid(call, object, "%v", err)
			}
		case hcn.EndpointPolicyOutBoundNAT:
			var s hcn.OutboundNATSetting
			if err := hcn.DecodeSettings(string(p.Type), p.Settings, &s); err != nil {
				return invalid(call, object, "%v", err)
			}
			for _, x := range s.Exceptions {
				if _, ok := parseAddrOrPrefix(x); !ok {
					return invalid(call, object, "exception %q is not a CIDR", x)
				}
			}
			// Destinations are loopback DSR's: traffic to them (the pod's own address, through a
			// service's load balancer) is not SNATed, so the pod sees itself as the source.
			if len(s.Destinations) > 0 && !h.feat.DSR {
				return invalid(call, object, "OutBoundNAT Destinations (loopback DSR) need HNS 9.3-9.x or 10.2 or later; this is %d.%d", h.opts.Version.Major, h.opts.Version.Minor)
			}
			for _, x := range s.Destinations {
				if _, ok := parseAddrOrPrefix(x); !ok {
					return invalid(call, object, "destination %q is not an address", x)
				}
			}
		case hcn.EndpointPolicySDNRoute:
			var s hcn.SDNRouteSetting
			if err := hcn.DecodeSettings(string(p.Type), p.Settings, &s); err != nil {
				return invalid(call, object, "%v", err)
			}
			if _, err := netip.ParsePrefix(s.DestinationPrefix); err != nil {
				return invalid(call, object, "DestinationPrefix %q", s.DestinationPrefix)
			}
		case hcn.EndpointPolicyEncapOverhead, hcn.EndpointPolicyProviderAddress:
		default:
			return invalid(call, object, "endpoint policy type %q is not modelled", p.Type)
		}
	}
	return nil
}

func (h *HNS) checkACL(a hcn.ACLSetting, sets map[string][]netip.Prefix) error {
	if a.Action != hcn.ActionAllow && a.Action != hcn.ActionBlock {
		return fmt.Errorf("ACL action %q (Allow or Block)", a.Action)
	}
	if a.Direction != hcn.DirectionIn && a.Direction != hcn.DirectionOut {
		return fmt.Errorf("ACL direction %q (In or Out)", a.Direction)
	}
	if a.RuleType != "" && a.RuleType != hcn.RuleTypeSwitch && a.RuleType != hcn.RuleTypeHost {
		return fmt.Errorf("ACL rule type %q (Switch or Host)", a.RuleType)
	}
	protos, err := parseProtocols(a.Protocols)
	if err != nil {
		return err
	}
	for _, f := range []string{a.LocalAddresses, a.RemoteAddresses} {
		for _, v := range splitList(f) {
			if _, ok := parseAddrOrPrefix(v); ok {
				continue
			}
			if _, ok := sets[v]; ok {
				continue
			}
			if strings.EqualFold(v, "any") || v == "*" {
				return fmt.Errorf("ACL address %q: omit the field for any address", v)
			}
			if !h.feat.SetPolicy {
				return fmt.Errorf("ACL address %q is not an address or CIDR", v)
			}
			return fmt.Errorf("ACL address %q is neither an address, a CIDR nor a SetPolicy of the network", v)
		}
	}
	if a.LocalPorts != "" || a.RemotePorts != "" {
		if len(protos) != 1 || (protos[0] != 6 && protos[0] != 17) {
			return fmt.Errorf("ACL ports need protocol 6 or 17 (got %q)", a.Protocols)
		}
		for _, f := range []string{a.LocalPorts, a.RemotePorts} {
			if _, err := parsePorts(f, h.feat.ACLPortRanges); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- namespaces ----

func (h *HNS) ListNamespaces(ctx context.Context) ([]hcn.Namespace, error) {
	defer h.txn()()
	if err := h.begin(ctx, "ListNamespaces", ""); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]hcn.Namespace, 0, len(h.namespaces))
	for _, n := range h.namespaces {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b hcn.Namespace) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (h *HNS) CreateNamespace(ctx context.Context, ns *hcn.Namespace) (*hcn.Namespace, error) {
	defer h.txn()()
	if err := h.begin(ctx, "CreateNamespace", string(ns.Type)); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := &hcn.Namespace{ID: h.newID(), Type: ns.Type}
	if n.Type == "" {
		n.Type = hcn.NamespaceGuest
	}
	h.namespaces[n.ID] = n
	return &hcn.Namespace{ID: n.ID, Type: n.Type}, nil
}

func (h *HNS) DeleteNamespace(ctx context.Context, id string) error {
	defer h.txn()()
	if err := h.begin(ctx, "DeleteNamespace", id); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.namespaces[id]; !ok {
		return notFound("DeleteNamespace", "namespace", id)
	}
	for _, e := range h.endpoints {
		if e.HostComputeNamespace == id {
			e.HostComputeNamespace = ""
		}
	}
	delete(h.namespaces, id)
	return nil
}

func (h *HNS) AddNamespaceEndpoint(ctx context.Context, namespaceID, endpointID string) error {
	defer h.txn()()
	const call = "AddNamespaceEndpoint"
	if err := h.begin(ctx, call, namespaceID+"/"+endpointID); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.namespaces[namespaceID]; !ok {
		return notFound(call, "namespace", namespaceID)
	}
	e, ok := h.endpoints[endpointID]
	if !ok {
		return notFound(call, "endpoint", endpointID)
	}
	if e.HostComputeNamespace != "" && e.HostComputeNamespace != namespaceID {
		return fmt.Errorf("HNS %s: endpoint %s is attached to namespace %s", call, endpointID, e.HostComputeNamespace)
	}
	e.HostComputeNamespace = namespaceID
	return nil
}

func (h *HNS) RemoveNamespaceEndpoint(ctx context.Context, namespaceID, endpointID string) error {
	defer h.txn()()
	const call = "RemoveNamespaceEndpoint"
	if err := h.begin(ctx, call, namespaceID+"/"+endpointID); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.endpoints[endpointID]
	if !ok || e.HostComputeNamespace != namespaceID {
		return notFound(call, "endpoint in namespace", namespaceID+"/"+endpointID)
	}
	e.HostComputeNamespace = ""
	return nil
}

// ---- containers (the Docker flow) ----

// AddContainer models a container runtime starting container id (the Docker flow's pod infra
// container): HCS creates it with its own network compartment, an HNS namespace, or — with shareWith
// set — in the compartment of container shareWith (an application container of the same pod). It
// returns the compartment's namespace ID.
func (h *HNS) AddContainer(id, shareWith string) (string, error) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.fileErr(); err != nil {
		return "", err
	}
	if _, ok := h.containers[id]; ok {
		return "", fmt.Errorf("container %s already exists", id)
	}
	c := &container{}
	if shareWith != "" {
		o, ok := h.containers[shareWith]
		if !ok {
			return "", fmt.Errorf("container %s to share the compartment of: %w", shareWith, hcn.ErrNotFound)
		}
		c.Namespace = o.Namespace
	} else {
		c.Namespace = h.newID()
		h.namespaces[c.Namespace] = &hcn.Namespace{ID: c.Namespace, Type: hcn.NamespaceGuest}
	}
	h.containers[id] = c
	return c.Namespace, nil
}

// RemoveContainer models container id stopping: its endpoints are detached (not deleted: that is the
// CNI's DEL), and its compartment goes with the last container in it.
func (h *HNS) RemoveContainer(id string) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[id]
	if !ok {
		return
	}
	delete(h.containers, id)
	for _, o := range h.containers {
		if o.Namespace == c.Namespace {
			return
		}
	}
	delete(h.namespaces, c.Namespace)
	for _, e := range h.endpoints {
		if e.HostComputeNamespace == c.Namespace {
			e.HostComputeNamespace = ""
		}
	}
}

// ContainerEndpoints returns the endpoints hot-attached to container id, in attach order, and whether
// the container is running. (Tests ask; HNS itself tells only an endpoint's compartment.)
func (h *HNS) ContainerEndpoints(id string) ([]string, bool) {
	defer h.txn()()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.fileErr(); err != nil {
		return nil, false
	}
	c, ok := h.containers[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(c.Endpoints), true
}

// HotAttachEndpoint attaches an endpoint to a running container (hcsshim.HotAttachEndpoint, the Docker
// flow): the endpoint joins the container's compartment. Attaching it again is success, as in hcsshim;
// a container that does not exist is an error wrapping hcn.ErrNotFound.
func (h *HNS) HotAttachEndpoint(ctx context.Context, containerID, endpointID string) error {
	defer h.txn()()
	const call = "HotAttachEndpoint"
	if err := h.begin(ctx, call, containerID+"/"+endpointID); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[containerID]
	if !ok {
		return notFound(call, "container (compute system)", containerID)
	}
	e, ok := h.endpoints[endpointID]
	if !ok {
		return notFound(call, "endpoint", endpointID)
	}
	if slices.Contains(c.Endpoints, endpointID) {
		return nil
	}
	if e.HostComputeNamespace != "" && e.HostComputeNamespace != c.Namespace {
		return fmt.Errorf("HNS %s: endpoint %s is attached to namespace %s, not the compartment of container %s", call, endpointID, e.HostComputeNamespace, containerID)
	}
	e.HostComputeNamespace = c.Namespace
	c.Endpoints = append(c.Endpoints, endpointID)
	return nil
}

// HotDetachEndpoint detaches an endpoint from a container (hcsshim.HotDetachEndpoint). As in hcsshim,
// an endpoint that is not attached to the container (or a container that is gone) is success, and an
// endpoint that does not exist is an error wrapping hcn.ErrNotFound.
func (h *HNS) HotDetachEndpoint(ctx context.Context, containerID, endpointID string) error {
	defer h.txn()()
	const call = "HotDetachEndpoint"
	if err := h.begin(ctx, call, containerID+"/"+endpointID); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.endpoints[endpointID]; !ok {
		return notFound(call, "endpoint", endpointID)
	}
	c, ok := h.containers[containerID]
	if !ok || !slices.Contains(c.Endpoints, endpointID) {
		return nil
	}
	c.Endpoints = slices.DeleteFunc(c.Endpoints, func(e string) bool { return e == endpointID })
	if e, ok := h.endpoints[endpointID]; ok {
		shared := false
		for _, o := range h.containers {
			shared = shared || (o.Namespace == c.Namespace && slices.Contains(o.Endpoints, endpointID))
		}
		if !shared {
			e.HostComputeNamespace = ""
		}
	}
	return nil
}

// ---- parsing helpers shared with the evaluator ----

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func parseAddrOrPrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// parseProtocols parses an ACL's Protocols: "" or "256" is any (nil); otherwise a comma list of numbers.
func parseProtocols(s string) ([]uint8, error) {
	if s == "" || s == hcn.ProtocolAny {
		return nil, nil
	}
	var out []uint8
	for _, v := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("ACL protocol %q is not a number (HNS takes protocol numbers, 256 = any)", v)
		}
		out = append(out, uint8(n))
	}
	return out, nil
}

type portRange struct{ lo, hi uint16 }

func parsePorts(s string, ranges bool) ([]portRange, error) {
	var out []portRange
	for _, v := range splitList(s) {
		lo, hi, isRange := strings.Cut(v, "-")
		if isRange && !ranges {
			return nil, fmt.Errorf("ACL port range %q needs HNS 7.2", v)
		}
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("ACL port %q is not a number", v)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("ACL port range %q", v)
			}
		}
		out = append(out, portRange{uint16(a), uint16(b)})
	}
	return out, nil
}

func acls(e *hcn.Endpoint) []hcn.ACLSetting {
	var out []hcn.ACLSetting
	for _, p := range e.Policies {
		if p.Type != hcn.EndpointPolicyACL {
			continue
		}
		var a hcn.ACLSetting
		if err := json.Unmarshal(p.Settings, &a); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// errNoEndpoint is returned by EndpointVerdict for an address no local endpoint has.
var errNoEndpoint = errors.New("no local endpoint has this address")
