package cni

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/tortie-net/tortie/common/api"
	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/windows/dataplane"
	"github.com/tortie-net/tortie/windows/hcn"
)

// PodNetwork is the Windows cnicore.PodNetwork: HNS endpoints in the overlay network. It serves one
// invocation for the sandbox ContainerID.
type PodNetwork struct {
	// API is HNS (hcn.New() on Windows; a windows/hcnfake in tests). Required.
	API hcn.API
	// Containers hot-attaches endpoints in the Docker flow (hcn.NewContainerAPI()); nil refuses that
	// flow.
	Containers hcn.ContainerAPI
	// ContainerID is CNI_CONTAINERID: the sandbox (containerd) or infra container (Docker).
	ContainerID string
	// Conf is the Windows part of the network configuration.
	Conf Conf
	// Pools returns the IP pools (for OutBoundNAT: which pools NAT, and the exceptions); nil means no
	// pool is known and the endpoint gets no OutBoundNAT until the agent renders it.
	Pools func(ctx context.Context) (map[netip.Prefix]dpmodel.Pool, error)
	// Network is the HNS network pods join (default config.HNSOverlayNetwork).
	Network string
	Log     *slog.Logger
}

var (
	_ cnicore.PodNetwork         = (*PodNetwork)(nil)
	_ cnicore.PodNetworkGC       = (*PodNetwork)(nil)
	_ cnicore.PodNetworkStatus   = (*PodNetwork)(nil)
	_ cnicore.PodNetworkExisting = (*PodNetwork)(nil)
	_ cnicore.PodNetworkJoin     = (*PodNetwork)(nil)
)

// DefaultDenyPriority is the priority of the inbound deny-all ACL a new endpoint gets (Calico's 65500:
// after everything the agent renders, which replaces it anyway).
const DefaultDenyPriority = 65500

func (p *PodNetwork) network() string {
	if p.Network == "" {
		return config.HNSOverlayNetwork
	}
	return p.Network
}

func (p *PodNetwork) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// EndpointName is the HNS endpoint of a sandbox in network: "<sandbox ID>_<network>", the name the
// reference Windows plugins use.
func EndpointName(containerID, network string) string { return containerID + "_" + network }

// HostIfName is the endpoint's name. On Windows it is a function of the sandbox (which this PodNetwork
// is built for), not of the pod: each sandbox has its own endpoint, so a pod's new sandbox never
// collides with its old one's.
func (p *PodNetwork) HostIfName(_, _ string) string { return EndpointName(p.ContainerID, p.network()) }

var guidRE = regexp.MustCompile(`^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$`)

// flow says how the container is attached: containerd's HostComputeNamespace (netns is its GUID), the
// Docker infra container (netns "none" or empty), or a Docker application container joining its pod's
// infra container (netns "container:<infra ID>").
type flow struct {
	namespace string // containerd: the namespace GUID
	docker    bool
	join      string // the infra container whose endpoint an application container joins
}

func parseNetNS(netns string) (flow, error) {
	switch {
	case guidRE.MatchString(netns):
		return flow{namespace: strings.Trim(netns, "{}")}, nil
	case netns == "" || strings.EqualFold(netns, "none"):
		return flow{docker: true}, nil
	case strings.HasPrefix(netns, "container:"):
		id := strings.TrimPrefix(netns, "container:")
		if id == "" || strings.ContainsAny(id, " \t/\\:") {
			return flow{}, cnicore.Errorf(cnicore.CodeInvalidEnvironment,
				"CNI_NETNS %q does not name a container: dockershim and cri-dockerd pass \"container:<infra container ID>\"", netns)
		}
		return flow{join: id}, nil
	}
	return flow{}, cnicore.Errorf(cnicore.CodeInvalidEnvironment,
		"CNI_NETNS %q is neither an HNS namespace GUID (containerd) nor \"none\" (Docker's infra container)", netns)
}

// Joins implements cnicore.PodNetworkJoin: with CNI_NETNS "container:<infra ID>" (dockershim and
// cri-dockerd, for each application container of a pod) the container joins the infra container's
// endpoint, named after it.
func (p *PodNetwork) Joins(netns string) (string, string) {
	fl, err := parseNetNS(netns)
	if err != nil || fl.join == "" {
		return "", ""
	}
	return fl.join, EndpointName(fl.join, p.network())
}

// overlay returns the pod network and its one subnet. A missing network is code 11: the agent has not
// created it yet.
func (p *PodNetwork) overlay(ctx context.Context) (*hcn.Network, netip.Prefix, netip.Addr, error) {
	name := p.network()
	n, err := p.API.GetNetworkByName(ctx, name)
	if hcn.IsNotFound(err) {
		return nil, netip.Prefix{}, netip.Addr{}, cnicore.Errorf(cnicore.CodeTryAgainLater,
			"the HNS network %s does not exist yet: tortie-node creates it once this node has an IPAM block (is tortie-node running? see its log)", name)
	}
	if err != nil {
		return nil, netip.Prefix{}, netip.Addr{}, cnicore.Errorf(cnicore.CodeTryAgainLater, "reading the HNS network %s: %v", name, err)
	}
	if n.Type != hcn.NetworkOverlay || len(n.Ipams) != 1 || len(n.Ipams[0].Subnets) != 1 {
		return nil, netip.Prefix{}, netip.Addr{}, fmt.Errorf("the HNS network %s (%s) is not an Overlay network with one subnet (type %s): delete it and restart tortie-node to recreate it", name, n.ID, n.Type)
	}
	s := n.Ipams[0].Subnets[0]
	subnet, err := netip.ParsePrefix(s.IpAddressPrefix)
	if err != nil {
		return nil, netip.Prefix{}, netip.Addr{}, fmt.Errorf("the HNS network %s has subnet %q: %w", name, s.IpAddressPrefix, err)
	}
	gw := subnet.Masked().Addr().Next()
	for _, r := range s.Routes {
		if r.DestinationPrefix == "0.0.0.0/0" {
			if a, err := netip.ParseAddr(r.NextHop); err == nil {
				gw = a
			}
		}
	}
	return n, subnet.Masked(), gw, nil
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

// mac is the endpoint MAC of address a: the prefix and a's four bytes, HNS style ("0E-2A-0A-00-00-05").
func (p *PodNetwork) mac(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{p.Conf.MACPrefix[0], p.Conf.MACPrefix[1], b[0], b[1], b[2], b[3]}
}

func hnsMAC(m net.HardwareAddr) string {
	return strings.ToUpper(strings.ReplaceAll(m.String(), ":", "-"))
}

// podAddress returns the one IPv4 address of a request: the overlay carries IPv4 only.
func podAddress(addrs []netip.Prefix) (netip.Addr, error) {
	var v4 []netip.Addr
	for _, a := range addrs {
		if !a.Addr().Is4() {
			return netip.Addr{}, cnicore.Errorf(cnicore.CodeInvalidConfig,
				"address %s is IPv6, but HNS overlay networks carry IPv4 only: set \"ipam\": {\"assign_ipv6\": \"false\"} for Windows nodes", a.Addr())
		}
		v4 = append(v4, a.Addr())
	}
	if len(v4) != 1 {
		return netip.Addr{}, cnicore.Errorf(cnicore.CodeInvalidConfig, "an HNS endpoint takes one IPv4 address; the pod has %v", v4)
	}
	return v4[0], nil
}

// policies are the endpoint policies of a new pod endpoint.
func (p *PodNetwork) policies(ctx context.Context, n *hcn.Network, a netip.Addr) ([]hcn.EndpointPolicy, error) {
	var out []hcn.EndpointPolicy
	if pa := providerAddress(n); pa != "" {
		out = append(out, hcn.NewEndpointPolicy(hcn.EndpointPolicyProviderAddress, hcn.ProviderAddressSetting{ProviderAddress: pa}))
	}
	pools := map[netip.Prefix]dpmodel.Pool{}
	if p.Pools != nil {
		var err error
		if pools, err = p.Pools(ctx); err != nil {
			return nil, err
		}
	}
	out = append(out, dataplane.PodNATPolicies(pools, p.Conf.ServiceCIDRs, a)...)
	if p.Conf.LoopbackDSR {
		dsr, err := p.loopbackDSR(ctx, a)
		if err != nil {
			return nil, err
		}
		out = append(out, dsr...)
	}
	if p.Conf.DefaultDeny {
		out = append(out, hcn.NewEndpointPolicy(hcn.EndpointPolicyACL, hcn.ACLSetting{
			Id: "tortie-cni-default-deny", Protocols: hcn.ProtocolAny, Action: hcn.ActionBlock, Direction: hcn.DirectionIn,
			RuleType: hcn.RuleTypeSwitch, Priority: DefaultDenyPriority,
		}))
	}
	return out, nil
}

// loopbackDSR is the loopback DSR policy of a pod at a (windows_loopback_DSR): OutBoundNAT with the
// pod's own address as its one Destination, so that traffic the pod sends to itself through a service's
// load balancer is not SNATed to the node. HNS versions without DSR reject the policy: there the pod
// gets none, and a warning says why (the pod works; its hairpin traffic is SNATed, as without the key).
func (p *PodNetwork) loopbackDSR(ctx context.Context, a netip.Addr) ([]hcn.EndpointPolicy, error) {
	v, err := p.API.Version(ctx)
	if err != nil {
		return nil, cnicore.Errorf(cnicore.CodeTryAgainLater, "reading the HNS version (for windows_loopback_DSR): %v", err)
	}
	if !hcn.FeaturesFor(v).DSR {
		p.log().Warn("windows_loopback_DSR is set, but this node's HNS does not support DSR (it needs HNS 9.3-9.x or 10.2 or later: Windows Server 2019 from KB4571748, build 17763.1432, or a later Windows); the pod gets no loopback DSR policy",
			"hns_version", v.String(), "address", a.String())
		return nil, nil
	}
	return []hcn.EndpointPolicy{hcn.NewEndpointPolicy(hcn.EndpointPolicyOutBoundNAT, hcn.OutboundNATSetting{Destinations: []string{a.String()}})}, nil
}

// Setup creates and attaches the sandbox's endpoint (CNI ADD). It is all-or-nothing: on error no
// endpoint it created remains. Endpoints left by an earlier attempt for the same sandbox, or holding
// the pod's address (leaks of failed pod starts: IPAM has just given the address to this pod), are
// removed first.
func (p *PodNetwork) Setup(ctx context.Context, req cnicore.InterfaceRequest) (_ *cnicore.InterfaceResult, err error) {
	fl, err := parseNetNS(req.NetNS)
	if err != nil {
		return nil, err
	}
	if (fl.docker || fl.join != "") && p.Containers == nil {
		return nil, cnicore.Errorf(cnicore.CodeInvalidEnvironment, "CNI_NETNS %q (Docker's flow) needs hot attach, which this build cannot do", req.NetNS)
	}
	if fl.join != "" {
		return p.join(ctx, req, fl.join)
	}
	a, err := podAddress(req.Addresses)
	if err != nil {
		return nil, err
	}
	n, subnet, gw, err := p.overlay(ctx)
	if err != nil {
		return nil, err
	}
	if !subnet.Contains(a) {
		return nil, fmt.Errorf("address %s from IPAM is outside %s, the subnet of the HNS network %s (this node's IPAM block): a Windows node uses one block; the block is full or the address was borrowed from another block (use strictAffinity, a larger blockSize or fewer pods per node)",
			a, subnet, n.Name)
	}
	name := EndpointName(p.ContainerID, n.Name)
	eps, err := p.API.ListEndpoints(ctx)
	if err != nil {
		return nil, cnicore.Errorf(cnicore.CodeTryAgainLater, "listing HNS endpoints: %v", err)
	}
	for _, e := range eps {
		if e.HostComputeNetwork != n.ID || e.Flags&hcn.EndpointRemote != 0 {
			continue
		}
		if e.Name == name || hasAddress(e, a) {
			p.log().Info("removing a leftover HNS endpoint", "endpoint", e.Name, "id", e.ID, "address", a.String())
			if err := p.remove(ctx, e, fl); err != nil {
				return nil, fmt.Errorf("removing the leftover HNS endpoint %s (%s) that holds %s: %w", e.Name, e.ID, a, err)
			}
		}
	}
	pols, err := p.policies(ctx, n, a)
	if err != nil {
		return nil, cnicore.AsError(fmt.Errorf("reading the IP pools for the endpoint's OutBoundNAT: %w", err), cnicore.CodeTryAgainLater)
	}
	mac := req.ContainerMAC
	if len(mac) == 0 {
		mac = p.mac(a)
	}
	want := &hcn.Endpoint{
		Name: name, HostComputeNetwork: n.ID, MacAddress: hnsMAC(mac), Policies: pols,
		IpConfigurations: []hcn.IPConfig{{IpAddress: a.String(), PrefixLength: uint8(subnet.Bits())}},
		Routes:           []hcn.Route{{NextHop: gw.String(), DestinationPrefix: "0.0.0.0/0"}},
	}
	if p.Conf.DNS != nil {
		want.Dns = *p.Conf.DNS
	}
	// The agent deletes endpoints that are neither attached nor a known workload's; between create and
	// attach ours is both, for a moment. If it was deleted in that moment, create it once more.
	for attempt := 0; ; attempt++ {
		err = p.createAndAttach(ctx, want, fl, req.NetNS)
		if err == nil || attempt > 0 || !errors.Is(err, errEndpointVanished) {
			break
		}
		p.log().Info("the new HNS endpoint vanished before it was attached (the agent took it for a leak); creating it again", "endpoint", name)
	}
	if err != nil {
		return nil, err
	}
	return &cnicore.InterfaceResult{
		HostIfName: name, ContainerMAC: mac, SandboxPath: req.NetNS,
		Addresses: []netip.Prefix{netip.PrefixFrom(a, 32)}, GatewayV4: gw,
	}, nil
}

// errEndpointVanished marks an attach that failed because the endpoint just created no longer exists.
var errEndpointVanished = errors.New("the endpoint no longer exists")

// createAndAttach creates want and attaches it; on error it deletes what it created.
func (p *PodNetwork) createAndAttach(ctx context.Context, want *hcn.Endpoint, fl flow, netns string) (err error) {
	ep, err := p.API.CreateEndpoint(ctx, want)
	if err != nil {
		return fmt.Errorf("creating the HNS endpoint %s for %s in network %s: %w", want.Name, want.IpConfigurations[0].IpAddress, p.network(), err)
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, gerr := p.API.GetEndpointByID(cctx, ep.ID); hcn.IsNotFound(gerr) {
			err = fmt.Errorf("%w (%w)", err, errEndpointVanished)
			return
		}
		if derr := p.API.DeleteEndpoint(cctx, ep.ID); derr != nil && !hcn.IsNotFound(derr) {
			err = fmt.Errorf("%w; deleting the endpoint again also failed, it may be left behind: %w", err, derr)
		}
	}()
	if fl.docker {
		if err := p.Containers.HotAttachEndpoint(ctx, p.ContainerID, ep.ID); err != nil {
			return fmt.Errorf("attaching the HNS endpoint %s (%s) to container %s: %w", want.Name, ep.ID, p.ContainerID, err)
		}
		return nil
	}
	if err := p.API.AddNamespaceEndpoint(ctx, fl.namespace, ep.ID); err != nil {
		return fmt.Errorf("attaching the HNS endpoint %s (%s) to namespace %s (CNI_NETNS %s): %w", want.Name, ep.ID, fl.namespace, netns, err)
	}
	return nil
}

// infraEndpoint returns the endpoint of infra container infra in the overlay network, or a code 3
// error when there is none.
func (p *PodNetwork) infraEndpoint(ctx context.Context, infra string) (*hcn.Endpoint, error) {
	n, _, _, err := p.overlay(ctx)
	if err != nil {
		return nil, err
	}
	eps, err := p.API.ListEndpoints(ctx)
	if err != nil {
		return nil, cnicore.Errorf(cnicore.CodeTryAgainLater, "listing HNS endpoints: %v", err)
	}
	name := EndpointName(infra, n.Name)
	for i := range eps {
		if eps[i].Name == name && eps[i].HostComputeNetwork == n.ID {
			return &eps[i], nil
		}
	}
	return nil, cnicore.Errorf(cnicore.CodeUnknownContainer,
		"the infra container %s has no HNS endpoint %s in network %s (its ADD failed, or the pod is being deleted): an application container only joins its pod's endpoint, which the infra container's ADD creates",
		infra, name, n.Name)
}

// join hot-attaches the infra container's endpoint to this application container (Docker flow,
// CNI_NETNS "container:<infra>"). It never creates or deletes an endpoint: a failed attach is only
// reported (the endpoint is the infra container's). req.Addresses, when given, are the infra
// container's allocation, which the endpoint must hold.
func (p *PodNetwork) join(ctx context.Context, req cnicore.InterfaceRequest, infra string) (*cnicore.InterfaceResult, error) {
	e, err := p.infraEndpoint(ctx, infra)
	if err != nil {
		return nil, err
	}
	if len(req.Addresses) > 0 {
		a, err := podAddress(req.Addresses)
		if err != nil {
			return nil, err
		}
		if !hasAddress(*e, a) {
			return nil, fmt.Errorf("the HNS endpoint %s (%s) of infra container %s has addresses %v, but IPAM holds %s for it: the infra container's ADD must run again",
				e.Name, e.ID, infra, e.IpConfigurations, a)
		}
	}
	if err := p.Containers.HotAttachEndpoint(ctx, p.ContainerID, e.ID); err != nil {
		return nil, fmt.Errorf("attaching the HNS endpoint %s (%s) of infra container %s to container %s: %w", e.Name, e.ID, infra, p.ContainerID, err)
	}
	res := endpointResult(*e, req.NetNS)
	if res == nil {
		return nil, fmt.Errorf("the HNS endpoint %s (%s) of infra container %s has addresses %v, not one IPv4 address", e.Name, e.ID, infra, e.IpConfigurations)
	}
	return res, nil
}

// endpointResult is the result of an ADD that built e, or nil when e has not one IPv4 address.
func endpointResult(e hcn.Endpoint, netns string) *cnicore.InterfaceResult {
	if len(e.IpConfigurations) != 1 {
		return nil
	}
	a, err := netip.ParseAddr(e.IpConfigurations[0].IpAddress)
	if err != nil || !a.Is4() {
		return nil
	}
	res := &cnicore.InterfaceResult{HostIfName: e.Name, SandboxPath: netns, Addresses: []netip.Prefix{netip.PrefixFrom(a, 32)}}
	if m, err := net.ParseMAC(e.MacAddress); err == nil {
		res.ContainerMAC = m
	}
	for _, r := range e.Routes {
		if gw, err := netip.ParseAddr(r.NextHop); err == nil && r.DestinationPrefix == "0.0.0.0/0" {
			res.GatewayV4 = gw
		}
	}
	return res
}

// Existing returns the result of an earlier ADD of this sandbox in the Docker flow — its endpoint
// exists and is attached — for the repeated ADDs with which dockershim and cri-dockerd ask a running
// pod's address. In containerd's flow, and when there is no such endpoint, it returns nil.
func (p *PodNetwork) Existing(ctx context.Context, req cnicore.InterfaceRequest) (*cnicore.InterfaceResult, error) {
	fl, err := parseNetNS(req.NetNS)
	if err != nil || !fl.docker {
		return nil, nil //nolint:nilerr // Setup reports a bad netns
	}
	n, err := p.API.GetNetworkByName(ctx, p.network())
	if hcn.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, cnicore.Errorf(cnicore.CodeTryAgainLater, "reading the HNS network %s: %v", p.network(), err)
	}
	eps, err := p.API.ListEndpoints(ctx)
	if err != nil {
		return nil, cnicore.Errorf(cnicore.CodeTryAgainLater, "listing HNS endpoints: %v", err)
	}
	name := EndpointName(p.ContainerID, n.Name)
	for _, e := range eps {
		if e.Name != name || e.HostComputeNetwork != n.ID || e.HostComputeNamespace == "" {
			continue
		}
		if res := endpointResult(e, req.NetNS); res != nil {
			return res, nil
		}
	}
	return nil, nil
}

// cleanupTimeout bounds the removal of a half-created endpoint after the command's deadline.
const cleanupTimeout = 30 * time.Second

func hasAddress(e hcn.Endpoint, a netip.Addr) bool {
	return slices.ContainsFunc(e.IpConfigurations, func(c hcn.IPConfig) bool { return c.IpAddress == a.String() })
}

// remove detaches and deletes e; anything already gone is success.
func (p *PodNetwork) remove(ctx context.Context, e hcn.Endpoint, fl flow) error {
	if e.HostComputeNamespace != "" {
		if fl.docker && p.Containers != nil {
			if err := p.Containers.HotDetachEndpoint(ctx, p.ContainerID, e.ID); err != nil && !hcn.IsNotFound(err) {
				return fmt.Errorf("detaching it from container %s: %w", p.ContainerID, err)
			}
		}
		if err := p.API.RemoveNamespaceEndpoint(ctx, e.HostComputeNamespace, e.ID); err != nil && !hcn.IsNotFound(err) {
			return fmt.Errorf("detaching it from namespace %s: %w", e.HostComputeNamespace, err)
		}
	}
	if err := p.API.DeleteEndpoint(ctx, e.ID); err != nil && !hcn.IsNotFound(err) {
		return fmt.Errorf("deleting it: %w", err)
	}
	return nil
}

// Teardown detaches and deletes the sandbox's endpoint (CNI DEL). It is idempotent: no endpoint, no
// network or a second call is success. hostIfName, when set, is the endpoint's name.
func (p *PodNetwork) Teardown(ctx context.Context, netns, _, hostIfName string) error {
	fl, err := parseNetNS(netns)
	if err != nil {
		// A DEL cannot be refused for its netns: remove the endpoint whatever the flow.
		fl = flow{}
	}
	name := hostIfName
	switch {
	case name != "":
	case fl.join != "":
		name = EndpointName(fl.join, p.network())
	default:
		name = EndpointName(p.ContainerID, p.network())
	}
	eps, err := p.API.ListEndpoints(ctx)
	if err != nil {
		return cnicore.Errorf(cnicore.CodeTryAgainLater, "listing HNS endpoints: %v", err)
	}
	var errs []error
	for _, e := range eps {
		if e.Name != name {
			continue
		}
		if fl.join != "" {
			// The application container leaves; the endpoint stays the infra container's.
			if p.Containers == nil {
				continue
			}
			if err := p.Containers.HotDetachEndpoint(ctx, p.ContainerID, e.ID); err != nil && !hcn.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("detaching the HNS endpoint %s (%s) from container %s: %w", e.Name, e.ID, p.ContainerID, err))
			}
			continue
		}
		if err := p.remove(ctx, e, fl); err != nil {
			errs = append(errs, fmt.Errorf("removing the HNS endpoint %s (%s): %w", e.Name, e.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Check reports every difference between the sandbox's endpoint and what Setup builds (CNI CHECK).
func (p *PodNetwork) Check(ctx context.Context, req cnicore.InterfaceRequest) error {
	fl, err := parseNetNS(req.NetNS)
	if err != nil {
		return err
	}
	a, err := podAddress(req.Addresses)
	if err != nil {
		return err
	}
	n, subnet, gw, err := p.overlay(ctx)
	if err != nil {
		return err
	}
	owner := p.ContainerID
	if fl.join != "" {
		owner = fl.join
	}
	name := EndpointName(owner, n.Name)
	eps, err := p.API.ListEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("listing HNS endpoints: %w", err)
	}
	var e *hcn.Endpoint
	for i := range eps {
		if eps[i].Name == name && eps[i].HostComputeNetwork == n.ID {
			e = &eps[i]
		}
	}
	if e == nil {
		return fmt.Errorf("the HNS endpoint %s does not exist in network %s (lost in an HNS restart? the pod needs a new sandbox)", name, n.Name)
	}
	var problems []string
	if !hasAddress(*e, a) || len(e.IpConfigurations) != 1 {
		problems = append(problems, fmt.Sprintf("HNS endpoint %s has addresses %v, want %s", name, e.IpConfigurations, a))
	}
	if !subnet.Contains(a) {
		problems = append(problems, fmt.Sprintf("address %s is outside the network's subnet %s", a, subnet))
	}
	wantMAC := req.ContainerMAC
	if len(wantMAC) == 0 {
		wantMAC = p.mac(a)
	}
	if !strings.EqualFold(e.MacAddress, hnsMAC(wantMAC)) {
		problems = append(problems, fmt.Sprintf("HNS endpoint %s has MAC %s, want %s", name, e.MacAddress, hnsMAC(wantMAC)))
	}
	if !slices.Contains(e.Routes, hcn.Route{NextHop: gw.String(), DestinationPrefix: "0.0.0.0/0"}) {
		problems = append(problems, fmt.Sprintf("HNS endpoint %s has routes %v, want the default route via %s", name, e.Routes, gw))
	}
	switch {
	case !fl.docker && fl.join == "" && e.HostComputeNamespace != fl.namespace:
		problems = append(problems, fmt.Sprintf("HNS endpoint %s is attached to namespace %q, want %s", name, e.HostComputeNamespace, fl.namespace))
	case fl.docker && e.HostComputeNamespace == "":
		problems = append(problems, fmt.Sprintf("HNS endpoint %s is not attached to container %s", name, p.ContainerID))
	case fl.join != "" && e.HostComputeNamespace == "":
		// HNS tells which compartment an endpoint is in, not which containers share it.
		problems = append(problems, fmt.Sprintf("HNS endpoint %s of infra container %s is not attached to the pod's compartment", name, fl.join))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// GC deletes the network's pod endpoints (named "<sandbox ID>_<network>") whose sandbox is not in
// valid (CNI GC). The agent's host endpoint and other plugins' endpoints are never touched.
func (p *PodNetwork) GC(ctx context.Context, valid []types.GCAttachment) error {
	keep := map[string]bool{}
	for _, v := range valid {
		keep[v.ContainerID] = true
	}
	suffix := "_" + p.network()
	n, err := p.API.GetNetworkByName(ctx, p.network())
	if hcn.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the HNS network %s: %w", p.network(), err)
	}
	eps, err := p.API.ListEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("listing HNS endpoints: %w", err)
	}
	var errs []error
	var removed []string
	for _, e := range eps {
		id, ok := strings.CutSuffix(e.Name, suffix)
		if !ok || id == "" || e.HostComputeNetwork != n.ID || e.Flags&hcn.EndpointRemote != 0 || keep[id] {
			continue
		}
		if err := p.remove(ctx, e, flow{}); err != nil {
			errs = append(errs, fmt.Errorf("removing the HNS endpoint %s (%s) of a sandbox that is gone: %w", e.Name, e.ID, err))
			continue
		}
		removed = append(removed, e.Name)
	}
	if len(removed) > 0 {
		p.log().Info("garbage collected HNS endpoints", "endpoints", strings.Join(removed, ","))
	}
	return errors.Join(errs...)
}

// Status reports whether pods can be set up: HNS answers and the overlay network exists.
func (p *PodNetwork) Status(ctx context.Context) error {
	if _, _, _, err := p.overlay(ctx); err != nil {
		var te *types.Error
		if errors.As(err, &te) {
			return errors.New(te.Msg)
		}
		return err
	}
	return nil
}

// PoolsFrom returns a PodNetwork.Pools that lists the IP pools of a datastore.
func PoolsFrom(be datastore.Backend) func(context.Context) (map[netip.Prefix]dpmodel.Pool, error) {
	return func(ctx context.Context) (map[netip.Prefix]dpmodel.Pool, error) {
		objs, _, err := be.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
		if err != nil {
			return nil, fmt.Errorf("listing IP pools: %w", err)
		}
		out := map[netip.Prefix]dpmodel.Pool{}
		for _, o := range objs {
			pool, ok := o.(*api.IPPool)
			if !ok {
				continue
			}
			cidr, err := netip.ParsePrefix(pool.Spec.CIDR)
			if err != nil {
				continue // invalid pools are refused on write; one that got through qualifies for nothing
			}
			out[cidr.Masked()] = dpmodel.Pool{NATOutgoing: pool.Spec.NATOutgoing, Disabled: pool.Spec.Disabled}
		}
		return out, nil
	}
}

// Configure makes p a Windows plugin invocation for container containerID: IPAM keeps the addresses
// Windows reserves in each block (ipam.WindowsHostReserved: network, gateway, host endpoint, broadcast)
// and uses one block per node (the overlay network holds one subnet); the main plugin (not ipamMode)
// gets a PodNetwork over api and containers with the configuration's Windows keys.
func Configure(p *cnicore.Plugin, api hcn.API, containers hcn.ContainerAPI, containerID string, ipamMode bool) error {
	p.HostReserved = ipam.WindowsHostReserved()
	p.MaxBlocksPerHost = 1
	if ipamMode {
		return nil
	}
	conf, err := ParseConf(p.Conf)
	if err != nil {
		return err
	}
	for _, k := range conf.Ignored {
		p.Log.Debug("network configuration key accepted but not acted on", "key", k)
	}
	pn := &PodNetwork{API: api, Containers: containers, ContainerID: containerID, Conf: conf, Log: p.Log}
	if p.Backend != nil {
		pn.Pools = PoolsFrom(p.Backend)
	}
	p.PodNetwork = pn
	return nil
}
