package hcn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ---- networks ----

// NetworkType is an HNS network's type.
type NetworkType string

// The network types tortie meets. Overlay is the VXLAN network; NAT is Docker's default network, which
// tortie never touches.
const (
	NetworkNAT      NetworkType = "NAT"
	NetworkL2Bridge NetworkType = "L2Bridge"
	NetworkOverlay  NetworkType = "Overlay"
)

// NetworkFlags are an HNS network's flags.
type NetworkFlags uint32

// EnableNonPersistent makes HNS drop the network at reboot.
const EnableNonPersistent NetworkFlags = 8

// Route is a route of a subnet or an endpoint.
type Route struct {
	NextHop           string `json:",omitempty"`
	DestinationPrefix string `json:",omitempty"`
	Metric            uint16 `json:",omitempty"`
}

// Subnet is one subnet of a network's IPAM.
type Subnet struct {
	IpAddressPrefix string         `json:",omitempty"` //nolint:revive // HNS's field name
	Policies        []SubnetPolicy `json:",omitempty"`
	Routes          []Route        `json:",omitempty"`
}

// Ipam is a network's address management: "Static" with its subnets.
type Ipam struct {
	Type    string   `json:",omitempty"`
	Subnets []Subnet `json:",omitempty"`
}

// Network is an HNS network (hcn.HostComputeNetwork).
type Network struct {
	ID       string          `json:"ID,omitempty"`
	Name     string          `json:",omitempty"`
	Type     NetworkType     `json:",omitempty"`
	Policies []NetworkPolicy `json:",omitempty"`
	Ipams    []Ipam          `json:",omitempty"`
	Flags    NetworkFlags    `json:",omitempty"`
}

// ---- endpoints and namespaces ----

// IPConfig is one address of an endpoint.
type IPConfig struct {
	IpAddress    string `json:",omitempty"` //nolint:revive // HNS's field name
	PrefixLength uint8  `json:",omitempty"`
}

// EndpointFlags are an endpoint's flags.
type EndpointFlags uint32

// EndpointRemote marks a remote endpoint (one that stands for an address not on this host; tortie's
// host endpoint is one).
const EndpointRemote EndpointFlags = 1

// Endpoint is an HNS endpoint (hcn.HostComputeEndpoint).
type Endpoint struct {
	ID                   string           `json:"ID,omitempty"`
	Name                 string           `json:",omitempty"`
	HostComputeNetwork   string           `json:",omitempty"`
	HostComputeNamespace string           `json:",omitempty"`
	Policies             []EndpointPolicy `json:",omitempty"`
	IpConfigurations     []IPConfig       `json:",omitempty"` //nolint:revive // HNS's field name
	Routes               []Route          `json:",omitempty"`
	MacAddress           string           `json:",omitempty"`
	Dns                  DNS              `json:",omitzero"` //nolint:revive // HNS's field name
	Flags                EndpointFlags    `json:",omitempty"`
}

// DNS is an endpoint's resolver configuration (hcn.Dns), which HNS gives the container.
type DNS struct {
	Domain     string   `json:",omitempty"`
	Search     []string `json:",omitempty"`
	ServerList []string `json:",omitempty"`
	Options    []string `json:",omitempty"`
}

// NamespaceType is an HNS namespace's type.
type NamespaceType string

// Namespace types: a pod's sandbox is a Guest namespace (HostDefault is the host's own).
const (
	NamespaceHost  NamespaceType = "Host"
	NamespaceGuest NamespaceType = "Guest"
)

// Namespace is an HNS namespace (hcn.HostComputeNamespace), the network compartment of a pod sandbox.
type Namespace struct {
	ID   string        `json:"ID,omitempty"`
	Type NamespaceType `json:",omitempty"`
}

// ---- policies ----

// RequestType says how a policy request changes an object's policies.
type RequestType string

// Request types: Update replaces the object's policies with the ones given.
const (
	RequestAdd    RequestType = "Add"
	RequestRemove RequestType = "Remove"
	RequestUpdate RequestType = "Update"
)

// EndpointPolicyType is the type of an endpoint policy.
type EndpointPolicyType string

// Endpoint policy types tortie writes or reads.
const (
	EndpointPolicyACL             EndpointPolicyType = "ACL"
	EndpointPolicyOutBoundNAT     EndpointPolicyType = "OutBoundNAT"
	EndpointPolicySDNRoute        EndpointPolicyType = "SDNRoute"
	EndpointPolicyEncapOverhead   EndpointPolicyType = "EncapOverhead"
	EndpointPolicyProviderAddress EndpointPolicyType = "ProviderAddress"
)

// EndpointPolicy is one endpoint policy: its type and settings (one of the *Setting types, as JSON).
type EndpointPolicy struct {
	Type     EndpointPolicyType `json:""`
	Settings json.RawMessage    `json:",omitempty"`
}

// NetworkPolicyType is the type of a network policy.
type NetworkPolicyType string

// Network policy types tortie writes or reads. ProviderAddress and DrMacAddress are set by HNS when it
// creates an Overlay network: the node's underlay address and the network's distributed router MAC.
const (
	NetworkPolicyNetAdapterName    NetworkPolicyType = "NetAdapterName"
	NetworkPolicyDrMacAddress      NetworkPolicyType = "DrMacAddress"
	NetworkPolicyProviderAddress   NetworkPolicyType = "ProviderAddress"
	NetworkPolicyRemoteSubnetRoute NetworkPolicyType = "RemoteSubnetRoute"
	NetworkPolicyVxlanPort         NetworkPolicyType = "VxlanPort"
	NetworkPolicyHostRoute         NetworkPolicyType = "HostRoute"
	NetworkPolicySetPolicy         NetworkPolicyType = "SetPolicy"
)

// NetworkPolicy is one network policy.
type NetworkPolicy struct {
	Type     NetworkPolicyType `json:""`
	Settings json.RawMessage   `json:",omitempty"`
}

// SubnetPolicyType is the type of a subnet policy.
type SubnetPolicyType string

// SubnetPolicyVSID sets an overlay subnet's VXLAN network identifier.
const SubnetPolicyVSID SubnetPolicyType = "VSID"

// SubnetPolicy is one subnet policy.
type SubnetPolicy struct {
	Type     SubnetPolicyType `json:""`
	Settings json.RawMessage  `json:",omitempty"`
}

// ACL actions, directions and rule types as HNS spells them.
const (
	ActionAllow = "Allow"
	ActionBlock = "Block"

	DirectionIn  = "In"
	DirectionOut = "Out"

	// RuleTypeSwitch rules are VFP rules on the virtual switch port (pod traffic); RuleTypeHost rules are
	// WFP (Windows Firewall) rules.
	RuleTypeSwitch = "Switch"
	RuleTypeHost   = "Host"

	// ProtocolAny is HNS's "any protocol" (an empty Protocols field means the same).
	ProtocolAny = "256"
)

// ACLSetting is an ACL endpoint policy (hcn.AclPolicySetting plus the Id field HNS accepts and returns,
// which tortie uses to recognise its own rules). Addresses and ports are comma lists; ports may be
// ranges "a-b"; addresses may be SetPolicy IDs where HNS supports them. Lower Priority is evaluated
// first. For direction In, Local is the endpoint (the destination) and Remote the source; for Out the
// other way round.
type ACLSetting struct {
	Id              string `json:",omitempty"` //nolint:revive // HNS's field name
	Protocols       string `json:",omitempty"`
	Action          string
	Direction       string
	LocalAddresses  string `json:",omitempty"`
	RemoteAddresses string `json:",omitempty"`
	LocalPorts      string `json:",omitempty"`
	RemotePorts     string `json:",omitempty"`
	RuleType        string `json:",omitempty"`
	Priority        uint16 `json:",omitempty"`
}

// OutboundNATSetting is the OutBoundNAT endpoint policy: traffic leaving the node is SNATed to the
// host's address except to Exceptions.
type OutboundNATSetting struct {
	VirtualIP    string   `json:",omitempty"`
	Exceptions   []string `json:",omitempty"`
	Destinations []string `json:",omitempty"`
}

// SDNRouteSetting is the SDNRoute endpoint policy (tortie: the service range, NeedEncap).
type SDNRouteSetting struct {
	DestinationPrefix string `json:",omitempty"`
	NextHop           string `json:",omitempty"`
	NeedEncap         bool   `json:",omitempty"`
}

// EncapOverheadSetting is the EncapOverhead endpoint policy: the bytes the encapsulation takes from the
// endpoint's MTU.
type EncapOverheadSetting struct {
	Overhead uint16 `json:",omitempty"`
}

// ProviderAddressSetting is the ProviderAddress policy (endpoint or network): the underlay address.
type ProviderAddressSetting struct {
	ProviderAddress string `json:",omitempty"`
}

// DrMacAddressSetting is the DrMacAddress network policy: the distributed router MAC ("aa-bb-...").
type DrMacAddressSetting struct {
	Address string `json:",omitempty"`
}

// NetAdapterNameSetting binds a network to a host adapter.
type NetAdapterNameSetting struct {
	NetworkAdapterName string `json:",omitempty"`
}

// VxlanPortSetting is the VxlanPort network policy (HNS ≥ 10.3).
type VxlanPortSetting struct {
	Port uint16
}

// VSIDSetting is the VSID subnet policy: the VXLAN network identifier.
type VSIDSetting struct {
	IsolationId uint32 //nolint:revive // HNS's field name
}

// RemoteSubnetRouteSetting is the RemoteSubnetRoute network policy: DestinationPrefix is behind the
// node at ProviderAddress, whose router MAC is DistributedRouterMacAddress ("aa-bb-...").
type RemoteSubnetRouteSetting struct {
	DestinationPrefix           string
	IsolationId                 uint16 //nolint:revive // HNS's field name
	ProviderAddress             string
	DistributedRouterMacAddress string
}

// SetPolicyIPSet is SetPolicySetting.PolicyType for a set of addresses.
const SetPolicyIPSet = "IPSET"

// SetPolicySetting is the SetPolicy network policy (HNS ≥ 13.0): a named set of addresses that ACLs
// refer to by Id. Values is a comma list.
type SetPolicySetting struct {
	Id         string //nolint:revive // HNS's field name
	Name       string
	PolicyType string `json:"PolicyType"`
	Values     string
}

// NewEndpointPolicy returns an endpoint policy of type t with settings s.
func NewEndpointPolicy(t EndpointPolicyType, s any) EndpointPolicy {
	return EndpointPolicy{Type: t, Settings: mustJSON(s)}
}

// NewNetworkPolicy returns a network policy of type t with settings s.
func NewNetworkPolicy(t NetworkPolicyType, s any) NetworkPolicy {
	return NetworkPolicy{Type: t, Settings: mustJSON(s)}
}

// NewSubnetPolicy returns a subnet policy of type t with settings s.
func NewSubnetPolicy(t SubnetPolicyType, s any) SubnetPolicy {
	return SubnetPolicy{Type: t, Settings: mustJSON(s)}
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only the plain structs of this package are marshalled here.
		panic(fmt.Sprintf("hcn: marshalling %T: %v", v, err))
	}
	return b
}

// DecodeSettings decodes a policy's settings into out, naming the policy type in the error.
func DecodeSettings(typ string, raw json.RawMessage, out any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s policy settings %s: %w", typ, raw, err)
	}
	return nil
}

// ---- versions and features ----

// Version is the HNS service version.
type Version struct {
	Major int `json:"Major"`
	Minor int `json:"Minor"`
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v ≥ major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Features is what an HNS version supports, as hcsshim's feature checks decide.
type Features struct {
	// ACLPortRanges: ACL ports may be ranges "a-b" (and lists); ≥ 7.2.
	ACLPortRanges bool
	// V2: the HCN (v2) API; ≥ 9.2.
	V2 bool
	// RemoteSubnet: the RemoteSubnetRoute network policy; ≥ 9.2.
	RemoteSubnet bool
	// HostRoute: the HostRoute network policy; ≥ 9.2.
	HostRoute bool
	// VxlanPort: the VxlanPort network policy; ≥ 10.3.
	VxlanPort bool
	// DSR: direct server return, and with it loopback DSR (an OutBoundNAT endpoint policy with
	// Destinations); 9.3–9.x and ≥ 10.2 (Windows Server 2019 from KB4571748, build 17763.1432).
	DSR bool
	// SetPolicy: SetPolicy IP sets referenced by ACLs; ≥ 13.0.
	SetPolicy bool
	// TierACL: native tiered ACLs; ≥ 14.0 (tortie does not use them yet).
	TierACL bool
}

// FeaturesFor returns what HNS version v supports (hcsshim's thresholds).
func FeaturesFor(v Version) Features {
	return Features{
		ACLPortRanges: v.AtLeast(7, 2),
		V2:            v.AtLeast(9, 2),
		RemoteSubnet:  v.AtLeast(9, 2),
		HostRoute:     v.AtLeast(9, 2),
		VxlanPort:     v.AtLeast(10, 3),
		DSR:           (v.Major == 9 && v.Minor >= 3) || v.AtLeast(10, 2),
		SetPolicy:     v.AtLeast(13, 0),
		TierACL:       v.AtLeast(14, 0),
	}
}

// ---- errors ----

// ErrUnsupported is returned by every call of the API off Windows.
var ErrUnsupported = errors.New("HNS is only available on Windows")

// ErrNotFound is wrapped by errors for objects HNS does not have (hcn's NetworkNotFoundError,
// EndpointNotFoundError, NamespaceNotFoundError and "element not found").
var ErrNotFound = errors.New("not found")

// IsNotFound reports whether err says an HNS object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// ---- the API ----

// API is the HNS calls tortie makes. Every method is one HNS call. Implementations are safe for
// concurrent use (HNS serialises; the fake locks). Errors name the object and the call.
type API interface {
	// Version returns the HNS service version; Features is derived from it with FeaturesFor.
	Version(ctx context.Context) (Version, error)

	ListNetworks(ctx context.Context) ([]Network, error)
	// GetNetworkByName returns an error wrapping ErrNotFound when there is no such network.
	GetNetworkByName(ctx context.Context, name string) (*Network, error)
	// CreateNetwork creates n (its ID is assigned) and returns it as HNS holds it, including the
	// policies HNS adds (ProviderAddress, DrMacAddress for Overlay).
	CreateNetwork(ctx context.Context, n *Network) (*Network, error)
	DeleteNetwork(ctx context.Context, id string) error
	// ModifyNetworkPolicies adds or removes network policies (RemoteSubnetRoute, SetPolicy, HostRoute);
	// for SetPolicy, Update replaces the sets with the same Id.
	ModifyNetworkPolicies(ctx context.Context, networkID string, rt RequestType, ps []NetworkPolicy) error

	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	GetEndpointByID(ctx context.Context, id string) (*Endpoint, error)
	// CreateEndpoint creates ep in its HostComputeNetwork; remote endpoints have EndpointRemote set.
	CreateEndpoint(ctx context.Context, ep *Endpoint) (*Endpoint, error)
	DeleteEndpoint(ctx context.Context, id string) error
	// ApplyEndpointPolicy changes an endpoint's policies: Add appends, Remove removes equal ones,
	// Update replaces the whole policy list with ps.
	ApplyEndpointPolicy(ctx context.Context, endpointID string, rt RequestType, ps []EndpointPolicy) error

	ListNamespaces(ctx context.Context) ([]Namespace, error)
	CreateNamespace(ctx context.Context, ns *Namespace) (*Namespace, error)
	DeleteNamespace(ctx context.Context, id string) error
	AddNamespaceEndpoint(ctx context.Context, namespaceID, endpointID string) error
	RemoveNamespaceEndpoint(ctx context.Context, namespaceID, endpointID string) error
}

// ContainerAPI is the Docker flow's calls (HNS v1 through HCS): a pod's infra container is created
// without networking and the CNI hot-attaches the pod's endpoint to it. containerd's flow uses
// namespaces (API.AddNamespaceEndpoint) instead. Implemented by New's value on every OS and by
// windows/hcnfake.
type ContainerAPI interface {
	// HotAttachEndpoint attaches an endpoint to a running container; attaching it again is success.
	HotAttachEndpoint(ctx context.Context, containerID, endpointID string) error
	// HotDetachEndpoint detaches it; an endpoint not attached to the container is success.
	HotDetachEndpoint(ctx context.Context, containerID, endpointID string) error
}
