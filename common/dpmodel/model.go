package dpmodel

import (
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Update is one change to a node's desired dataplane state. The set of implementations is closed: the
// types in this package.
type Update interface {
	// Kind names the message type, for logs and metrics ("IPSetUpdate", ...).
	Kind() string
	isUpdate()
}

// ---- IP sets ----

// IPSetType says what an IP set's members are.
type IPSetType int

const (
	// IPSetNet holds addresses (as /32 or /128) and CIDRs: selector and network-set members.
	IPSetNet IPSetType = iota + 1
	// IPSetIPPort holds address+protocol+port triples: named-port members.
	IPSetIPPort
)

func (t IPSetType) String() string {
	switch t {
	case IPSetNet:
		return "net"
	case IPSetIPPort:
		return "ip,port"
	}
	return fmt.Sprintf("IPSetType(%d)", int(t))
}

// Member is one member of an IP set. For IPSetNet only Net is set; for IPSetIPPort Net is a single
// address (/32 or /128) and Protocol (6, 17 or 132) and Port are set.
type Member struct {
	Net      netip.Prefix
	Protocol uint8
	Port     uint16
}

func (m Member) String() string {
	if m.Protocol == 0 {
		return m.Net.String()
	}
	return fmt.Sprintf("%s,%s:%d", m.Net.Addr(), ProtoName(m.Protocol), m.Port)
}

// Compare orders members: by address family and address, prefix length, protocol, port.
func (m Member) Compare(o Member) int {
	if c := m.Net.Addr().Compare(o.Net.Addr()); c != 0 {
		return c
	}
	if c := m.Net.Bits() - o.Net.Bits(); c != 0 {
		return c
	}
	if c := int(m.Protocol) - int(o.Protocol); c != 0 {
		return c
	}
	return int(m.Port) - int(o.Port)
}

// HostMember is a member for one address (a /32 or /128).
func HostMember(a netip.Addr) Member { return Member{Net: netip.PrefixFrom(a, a.BitLen())} }

// IPSetUpdate creates an IP set or replaces its members. Members are sorted and unique.
type IPSetUpdate struct {
	ID      string
	Type    IPSetType
	Members []Member
}

// IPSetDelta changes the members of an existing IP set; Added and Removed are disjoint.
type IPSetDelta struct {
	ID      string
	Added   []Member
	Removed []Member
}

// IPSetRemove removes an IP set no rule refers to any more.
type IPSetRemove struct{ ID string }

// ---- policies and profiles ----

// Action is what a rule does with a packet it matches.
type Action int

const (
	// Allow accepts the packet for this direction (it still passes the other endpoint's policy).
	Allow Action = iota + 1
	// Deny drops it.
	Deny
	// Pass skips the rest of the tier: evaluation continues with the next tier (or the profiles).
	Pass
	// Log logs it and continues with the next rule.
	Log
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	case Pass:
		return "Pass"
	case Log:
		return "Log"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// PortRange is an inclusive range of ports; a single port has First == Last.
type PortRange struct{ First, Last uint16 }

func (p PortRange) String() string {
	if p.First == p.Last {
		return fmt.Sprint(p.First)
	}
	return fmt.Sprintf("%d:%d", p.First, p.Last)
}

// Contains reports whether port is in the range.
func (p PortRange) Contains(port uint16) bool { return port >= p.First && port <= p.Last }

// ICMPMatch matches an ICMP type and, when Code is non-nil, code.
type ICMPMatch struct {
	Type uint8
	Code *uint8
}

// Rule is one policy or profile rule with every Calico match kind, after the calculation has resolved
// selectors, service accounts and named ports to IP set IDs. A packet matches when every non-empty
// field matches:
//
//   - Protocol (when non-zero) equals the packet's; NotProtocol (when non-zero) differs from it.
//   - SrcNets: the source is in at least one; NotSrcNets: in none. Likewise Dst.
//   - SrcIPSetIDs: the source is a member of every set (each set is one selector, and the entity rule's
//     selector, notSelector's complement excepted, and service-account selector are AND-ed);
//     NotSrcIPSetIDs: of none. Likewise Dst.
//   - SrcPorts / SrcNamedPortIPSetIDs: the source port is in one of the ranges OR the source
//     address+protocol+port is in one of the named-port sets (either list may be empty, not both, for the
//     condition to apply); NotSrcPorts / NotSrcNamedPortIPSetIDs: in none. Likewise Dst.
//   - ICMP (when non-nil) matches the packet's ICMP type (and code); NotICMP (when non-nil) does not.
//   - IPVersion (4 or 6, 0 = both) equals the packet's family.
//
// A rule that can never match (e.g. IPv6 nets in an IPv4-only rule) is still carried; a dataplane may
// drop it when rendering.
type Rule struct {
	Action      Action
	IPVersion   int
	Protocol    uint8
	NotProtocol uint8

	SrcNets, NotSrcNets                           []netip.Prefix
	SrcIPSetIDs, NotSrcIPSetIDs                   []string
	SrcPorts, NotSrcPorts                         []PortRange
	SrcNamedPortIPSetIDs, NotSrcNamedPortIPSetIDs []string

	DstNets, NotDstNets                           []netip.Prefix
	DstIPSetIDs, NotDstIPSetIDs                   []string
	DstPorts, NotDstPorts                         []PortRange
	DstNamedPortIPSetIDs, NotDstNamedPortIPSetIDs []string

	ICMP, NotICMP *ICMPMatch

	// LogPrefix is the prefix of the Log action's log line (Felix's LogPrefix setting expanded).
	LogPrefix string
	// ID identifies the rule within its policy for tracing and counters: "<policy or profile ID>/<direction>/<index>".
	ID string
	// Annotations are the rule's metadata.annotations, rendered as comments where the OS allows.
	Annotations map[string]string
}

// IPSetRefs returns every IP set ID the rule refers to.
func (r *Rule) IPSetRefs() []string {
	var out []string
	for _, l := range [][]string{r.SrcIPSetIDs, r.NotSrcIPSetIDs, r.SrcNamedPortIPSetIDs, r.NotSrcNamedPortIPSetIDs,
		r.DstIPSetIDs, r.NotDstIPSetIDs, r.DstNamedPortIPSetIDs, r.NotDstNamedPortIPSetIDs} {
		out = append(out, l...)
	}
	return out
}

// PolicyID names a policy: Calico's policy name rules are kept (a namespaced policy has Namespace set;
// Kind tells NetworkPolicy, GlobalNetworkPolicy and Kubernetes NetworkPolicy apart).
type PolicyID struct {
	Tier      string
	Kind      string // "NetworkPolicy", "GlobalNetworkPolicy", "KubernetesNetworkPolicy"
	Namespace string
	Name      string
}

func (id PolicyID) String() string {
	if id.Namespace == "" {
		return fmt.Sprintf("%s/%s/%s", id.Tier, id.Kind, id.Name)
	}
	return fmt.Sprintf("%s/%s/%s/%s", id.Tier, id.Kind, id.Namespace, id.Name)
}

// Compare orders policy IDs by their string form.
func (id PolicyID) Compare(o PolicyID) int { return strings.Compare(id.String(), o.String()) }

// Policy is the dataplane's view of one policy: its rules per direction and where it applies.
type Policy struct {
	Inbound  []Rule
	Outbound []Rule
	// Untracked (doNotTrack), PreDNAT and ApplyOnForward are GlobalNetworkPolicy's host-endpoint options.
	Untracked, PreDNAT, ApplyOnForward bool
	// Invalid is set when the calculation could not compile the policy (e.g. a selector that failed to
	// parse after a datastore write); its rules are then a single Deny per direction, so the endpoints
	// it selects fail closed, and Reason says why for status and logs.
	Invalid bool
	Reason  string
}

// PolicyUpdate creates or replaces a policy.
type PolicyUpdate struct {
	ID     PolicyID
	Policy Policy
}

// PolicyRemove removes a policy no endpoint lists any more.
type PolicyRemove struct{ ID PolicyID }

// Profile is a profile's rules (Calico's kns.<namespace>, ksa.<namespace>.<sa> and explicit profiles).
type Profile struct {
	Inbound  []Rule
	Outbound []Rule
}

// ProfileUpdate creates or replaces a profile.
type ProfileUpdate struct {
	ID      string
	Profile Profile
}

// ProfileRemove removes a profile no endpoint lists any more.
type ProfileRemove struct{ ID string }

// ---- endpoints ----

// TierInfo is one tier of an endpoint's policy, in order: the policies that apply in each direction (in
// evaluation order) and what happens when none of them decides.
type TierInfo struct {
	Name string
	// DefaultAction is Deny (Calico's default) or Pass, taken when a packet reaches the end of the tier
	// and at least one of the tier's policies applied to it in that direction.
	DefaultAction Action
	Ingress       []PolicyID
	Egress        []PolicyID
}

// WorkloadEndpointID names a local workload endpoint by its WorkloadEndpoint resource.
type WorkloadEndpointID struct {
	Namespace string
	Name      string
}

func (id WorkloadEndpointID) String() string { return id.Namespace + "/" + id.Name }

// WorkloadEndpoint is a local pod interface and the policy that applies to it.
type WorkloadEndpoint struct {
	// Pod and Namespace identify the workload for logs and the Windows dataplane's HNS lookups.
	Pod           string
	InterfaceName string
	MAC           string
	IPv4Nets      []netip.Prefix
	IPv6Nets      []netip.Prefix
	// Tiers in evaluation order; ProfileIDs in order, applied after all tiers.
	Tiers      []TierInfo
	ProfileIDs []string
	// AllowSpoofedSourcePrefixes are source prefixes the workload may send from besides its own.
	AllowSpoofedSourcePrefixes []netip.Prefix
}

// WorkloadEndpointUpdate creates or replaces a local workload endpoint.
type WorkloadEndpointUpdate struct {
	ID       WorkloadEndpointID
	Endpoint WorkloadEndpoint
}

// WorkloadEndpointRemove removes a local workload endpoint.
type WorkloadEndpointRemove struct{ ID WorkloadEndpointID }

// HostEndpoint is a local host interface ("*" = all host interfaces) and its policy. Policies with
// doNotTrack, preDNAT and applyOnForward go into their own tier lists.
type HostEndpoint struct {
	InterfaceName  string
	ExpectedIPs    []netip.Addr
	Tiers          []TierInfo
	UntrackedTiers []TierInfo
	PreDNATTiers   []TierInfo
	ForwardTiers   []TierInfo
	ProfileIDs     []string
}

// HostEndpointUpdate creates or replaces a local host endpoint, named by its HostEndpoint resource.
type HostEndpointUpdate struct {
	ID       string
	Endpoint HostEndpoint
}

// HostEndpointRemove removes a local host endpoint.
type HostEndpointRemove struct{ ID string }

// ---- routes, tunnels, pools, hosts ----

// Encap is an encapsulation.
type Encap int

const (
	EncapNone Encap = iota
	EncapIPIP
	EncapVXLAN
)

func (e Encap) String() string {
	switch e {
	case EncapNone:
		return "none"
	case EncapIPIP:
		return "ipip"
	case EncapVXLAN:
		return "vxlan"
	}
	return fmt.Sprintf("Encap(%d)", int(e))
}

// RouteType says what a route's destination is.
type RouteType int

const (
	// RouteLocalWorkload: a local pod's address, to its interface.
	RouteLocalWorkload RouteType = iota + 1
	// RouteLocalBlock: an IPAM block affine to this node; programmed as a blackhole so that traffic to
	// unallocated addresses of the block does not leave the node.
	RouteLocalBlock
	// RouteRemoteBlock: a block affine to another node, via that node.
	RouteRemoteBlock
	// RouteRemoteWorkload: a single remote address outside its node's affine blocks (a borrowed /32).
	RouteRemoteWorkload
	// RouteRemoteTunnel: another node's tunnel address.
	RouteRemoteTunnel
)

func (t RouteType) String() string {
	switch t {
	case RouteLocalWorkload:
		return "local-workload"
	case RouteLocalBlock:
		return "local-block"
	case RouteRemoteBlock:
		return "remote-block"
	case RouteRemoteWorkload:
		return "remote-workload"
	case RouteRemoteTunnel:
		return "remote-tunnel"
	}
	return fmt.Sprintf("RouteType(%d)", int(t))
}

// Route is one destination and how to reach it. The calculation has already decided the encapsulation:
// Encap is what the dataplane must use (EncapNone for a same-subnet peer of a CrossSubnet pool).
type Route struct {
	Type RouteType
	// Encap: VXLAN routes go via the destination node's VTEP, IPIP routes via DstNodeIP on the tunnel,
	// none via DstNodeIP directly (same L2 or BGP-learned reachability).
	Encap Encap
	// DstNode and DstNodeIP are the node owning the destination (remote types).
	DstNode   string
	DstNodeIP netip.Addr
	// InterfaceName is the local workload's interface (RouteLocalWorkload).
	InterfaceName string
	// SameSubnet: the destination node shares this node's subnet (decides CrossSubnet).
	SameSubnet bool
	// Borrowed: the address is from a block affine to another node.
	Borrowed bool
	// PoolCIDR is the IP pool the destination is in (zero when none); NATOutgoing is that pool's setting.
	PoolCIDR    netip.Prefix
	NATOutgoing bool
}

// RouteUpdate creates or replaces the route to Dst.
type RouteUpdate struct {
	Dst   netip.Prefix
	Route Route
}

// RouteRemove removes the route to Dst.
type RouteRemove struct{ Dst netip.Prefix }

// VTEP is a remote node's VXLAN tunnel endpoint.
type VTEP struct {
	TunnelIPv4 netip.Addr
	MACv4      string
	TunnelIPv6 netip.Addr
	MACv6      string
	// ParentIPv4 and ParentIPv6 are the node's underlay addresses (the VXLAN packets' outer destination).
	ParentIPv4 netip.Addr
	ParentIPv6 netip.Addr
}

// VTEPUpdate creates or replaces the VTEP of Node.
type VTEPUpdate struct {
	Node string
	VTEP VTEP
}

// VTEPRemove removes the VTEP of Node.
type VTEPRemove struct{ Node string }

// EncapMode is an IP pool's ipipMode or vxlanMode.
type EncapMode int

const (
	EncapNever EncapMode = iota
	EncapAlways
	EncapCrossSubnet
)

func (m EncapMode) String() string {
	switch m {
	case EncapNever:
		return "Never"
	case EncapAlways:
		return "Always"
	case EncapCrossSubnet:
		return "CrossSubnet"
	}
	return fmt.Sprintf("EncapMode(%d)", int(m))
}

// Pool is an IP pool as the dataplane needs it: for NAT outgoing, the set of cluster addresses, and
// encapsulation.
type Pool struct {
	IPIPMode    EncapMode
	VXLANMode   EncapMode
	NATOutgoing bool
	Disabled    bool
}

// PoolUpdate creates or replaces the pool with CIDR.
type PoolUpdate struct {
	CIDR netip.Prefix
	Pool Pool
}

// PoolRemove removes the pool with CIDR.
type PoolRemove struct{ CIDR netip.Prefix }

// Host is a cluster node's underlay addresses (with prefix lengths: CrossSubnet compares subnets), so the
// dataplane can accept tunnel packets from cluster nodes only.
type Host struct {
	IPv4 netip.Prefix
	IPv6 netip.Prefix
}

// HostUpdate creates or replaces the addresses of node Node.
type HostUpdate struct {
	Node string
	Host Host
}

// HostRemove removes node Node.
type HostRemove struct{ Node string }

// ConfigUpdate replaces the node's dataplane configuration. The first one precedes every other update.
type ConfigUpdate struct{ Config Config }

// Config is the node's dataplane configuration: the FelixConfiguration settings a dataplane acts on,
// already layered (env > file > per-node > global > defaults) by the agent.
type Config struct {
	NodeName string
	// InterfacePrefixes are the host-side workload interface prefixes ("cali").
	InterfacePrefixes []string
	// DefaultEndpointToHostAction: Drop (default), Accept or Return.
	DefaultEndpointToHostAction string
	// FailsafeInbound and FailsafeOutbound are always-open host ports.
	FailsafeInbound  []ProtoPort
	FailsafeOutbound []ProtoPort
	IPv6Enabled      bool
	IPIPEnabled      bool
	VXLANEnabled     bool
	VXLANEnabledV6   bool
	VXLANPort        int
	VXLANVNI         int
	// MTUs of the tunnel devices (0 = detect from the host interface).
	IPIPMTU, VXLANMTU, VXLANMTUV6 int
	// NATOutgoingAddress, when valid, SNATs to this address instead of masquerading.
	NATOutgoingAddress netip.Addr
	// LogPrefix is the prefix of Log action lines.
	LogPrefix string
	// DenyAction is Drop (default) or Reject.
	DenyAction string
}

// ProtoPort is a protocol and port, optionally limited to a network (Felix's failsafe port syntax
// "tcp:22", "udp:0.0.0.0/0:53").
type ProtoPort struct {
	Protocol string
	Port     uint16
	Net      netip.Prefix
}

func (p ProtoPort) String() string {
	if p.Net.IsValid() {
		return fmt.Sprintf("%s:%s:%d", p.Protocol, p.Net, p.Port)
	}
	return fmt.Sprintf("%s:%d", p.Protocol, p.Port)
}

// ProtoName names well-known protocol numbers (tcp, udp, sctp, icmp, icmpv6) and prints others as numbers.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	}
	return fmt.Sprint(p)
}

func (IPSetUpdate) isUpdate()            {}
func (IPSetDelta) isUpdate()             {}
func (IPSetRemove) isUpdate()            {}
func (PolicyUpdate) isUpdate()           {}
func (PolicyRemove) isUpdate()           {}
func (ProfileUpdate) isUpdate()          {}
func (ProfileRemove) isUpdate()          {}
func (WorkloadEndpointUpdate) isUpdate() {}
func (WorkloadEndpointRemove) isUpdate() {}
func (HostEndpointUpdate) isUpdate()     {}
func (HostEndpointRemove) isUpdate()     {}
func (RouteUpdate) isUpdate()            {}
func (RouteRemove) isUpdate()            {}
func (VTEPUpdate) isUpdate()             {}
func (VTEPRemove) isUpdate()             {}
func (PoolUpdate) isUpdate()             {}
func (PoolRemove) isUpdate()             {}
func (HostUpdate) isUpdate()             {}
func (HostRemove) isUpdate()             {}
func (ConfigUpdate) isUpdate()           {}

func (IPSetUpdate) Kind() string            { return "IPSetUpdate" }
func (IPSetDelta) Kind() string             { return "IPSetDelta" }
func (IPSetRemove) Kind() string            { return "IPSetRemove" }
func (PolicyUpdate) Kind() string           { return "PolicyUpdate" }
func (PolicyRemove) Kind() string           { return "PolicyRemove" }
func (ProfileUpdate) Kind() string          { return "ProfileUpdate" }
func (ProfileRemove) Kind() string          { return "ProfileRemove" }
func (WorkloadEndpointUpdate) Kind() string { return "WorkloadEndpointUpdate" }
func (WorkloadEndpointRemove) Kind() string { return "WorkloadEndpointRemove" }
func (HostEndpointUpdate) Kind() string     { return "HostEndpointUpdate" }
func (HostEndpointRemove) Kind() string     { return "HostEndpointRemove" }
func (RouteUpdate) Kind() string            { return "RouteUpdate" }
func (RouteRemove) Kind() string            { return "RouteRemove" }
func (VTEPUpdate) Kind() string             { return "VTEPUpdate" }
func (VTEPRemove) Kind() string             { return "VTEPRemove" }
func (PoolUpdate) Kind() string             { return "PoolUpdate" }
func (PoolRemove) Kind() string             { return "PoolRemove" }
func (HostUpdate) Kind() string             { return "HostUpdate" }
func (HostRemove) Kind() string             { return "HostRemove" }
func (ConfigUpdate) Kind() string           { return "ConfigUpdate" }

// sortMembers sorts and de-duplicates members in place and returns the result.
// An empty set is always nil, however it became empty, so that states compare equal.
func sortMembers(ms []Member) []Member {
	if len(ms) == 0 {
		return nil
	}
	slices.SortFunc(ms, Member.Compare)
	return slices.Compact(ms)
}

// DerivedVTEPMAC is the VTEP MAC of a node whose Node resource records none: a locally administered
// unicast address from the SHA-1 of name (the calculation passes name+"-v6" for IPv6). The calculation
// sends it to the node's peers and the node's own dataplane gives it to its VXLAN device, so both sides
// must use this one function.
func DerivedVTEPMAC(name string) net.HardwareAddr {
	sum := sha1.Sum([]byte(name))
	sum[0] = sum[0]&0xfe | 0x02
	return net.HardwareAddr(sum[:6])
}
