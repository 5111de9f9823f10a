package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node is a tortie node: its addresses, tunnel addresses and BGP settings. In the Kubernetes datastore it
// is synthesised from the Kubernetes Node and its projectcalico.org/* annotations.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type Node struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeSpec `json:"spec,omitempty"`
	// +optional
	Status NodeStatus `json:"status,omitempty"`
}

// NodeSpec is the spec of a Node.
type NodeSpec struct {
	// BGP holds the node's BGP addresses and AS number.
	// +optional
	BGP *NodeBGPSpec `json:"bgp,omitempty"`
	// IPv4VXLANTunnelAddr is the address of the node's IPv4 VXLAN device.
	// +optional
	IPv4VXLANTunnelAddr string `json:"ipv4VXLANTunnelAddr,omitempty"`
	// VXLANTunnelMACAddr is the MAC of the node's IPv4 VXLAN device.
	// +optional
	VXLANTunnelMACAddr string `json:"vxlanTunnelMACAddr,omitempty"`
	// IPv6VXLANTunnelAddr is the address of the node's IPv6 VXLAN device.
	// +optional
	IPv6VXLANTunnelAddr string `json:"ipv6VXLANTunnelAddr,omitempty"`
	// VXLANTunnelMACAddrV6 is the MAC of the node's IPv6 VXLAN device.
	// +optional
	VXLANTunnelMACAddrV6 string `json:"vxlanTunnelMACAddrV6,omitempty"`
	// OrchRefs link the node to orchestrator nodes.
	// +optional
	OrchRefs []OrchRef `json:"orchRefs,omitempty"`
	// Wireguard holds the node's WireGuard interface addresses.
	// +optional
	Wireguard *NodeWireguardSpec `json:"wireguard,omitempty"`
	// Addresses are the node's addresses.
	// +optional
	Addresses []NodeAddress `json:"addresses,omitempty"`
	// Interfaces are the node's host interfaces and their addresses.
	// +optional
	Interfaces []NodeInterface `json:"interfaces,omitempty"`
}

// NodeBGPSpec is a node's BGP configuration.
type NodeBGPSpec struct {
	// ASNumber overrides the cluster AS number for this node.
	// +optional
	ASNumber *ASNumber `json:"asNumber,omitempty"`
	// IPv4Address is the node's IPv4 address with its subnet, e.g. 10.0.0.5/24.
	// +optional
	IPv4Address string `json:"ipv4Address,omitempty"`
	// IPv6Address is the node's IPv6 address with its subnet.
	// +optional
	IPv6Address string `json:"ipv6Address,omitempty"`
	// IPv4IPIPTunnelAddr is the address of the node's IPIP device.
	// +optional
	IPv4IPIPTunnelAddr string `json:"ipv4IPIPTunnelAddr,omitempty"`
	// RouteReflectorClusterID makes the node a route reflector with this cluster ID.
	// +optional
	RouteReflectorClusterID string `json:"routeReflectorClusterID,omitempty"`
}

// OrchRef names the node in an orchestrator.
type OrchRef struct {
	// +optional
	NodeName     string `json:"nodeName,omitempty"`
	Orchestrator string `json:"orchestrator"`
}

// NodeWireguardSpec holds WireGuard interface addresses.
type NodeWireguardSpec struct {
	// +optional
	InterfaceIPv4Address string `json:"interfaceIPv4Address,omitempty"`
	// +optional
	InterfaceIPv6Address string `json:"interfaceIPv6Address,omitempty"`
}

// NodeAddress is one address of a node.
type NodeAddress struct {
	// Address is an address or CIDR.
	Address string `json:"address"`
	// Type is InternalIP, ExternalIP, CalicoNodeIP, ...
	// +optional
	Type string `json:"type,omitempty"`
}

// NodeInterface is a host interface with its addresses.
type NodeInterface struct {
	Name string `json:"name"`
	// +optional
	Addresses []string `json:"addresses,omitempty"`
}

// NodeStatus is the observed state of a Node.
type NodeStatus struct {
	// +optional
	WireguardPublicKey string `json:"wireguardPublicKey,omitempty"`
	// +optional
	WireguardPublicKeyV6 string `json:"wireguardPublicKeyV6,omitempty"`
	// +optional
	PodCIDRs []string `json:"podCIDRs,omitempty"`
}

// NodeList is a list of Node.
//
// +kubebuilder:object:root=true
type NodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Node `json:"items"`
}

// WorkloadEndpoint is one network interface of a workload (for Kubernetes: a pod's eth0).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
type WorkloadEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WorkloadEndpointSpec `json:"spec,omitempty"`
}

// WorkloadEndpointSpec is the spec of a WorkloadEndpoint.
type WorkloadEndpointSpec struct {
	// Orchestrator is "k8s" for pods.
	// +optional
	Orchestrator string `json:"orchestrator,omitempty"`
	// Workload is the workload name (non-Kubernetes orchestrators).
	// +optional
	Workload string `json:"workload,omitempty"`
	// Node is the node the endpoint is on.
	// +optional
	Node string `json:"node,omitempty"`
	// ContainerID is the container runtime's sandbox ID.
	// +optional
	ContainerID string `json:"containerID,omitempty"`
	// Pod is the pod name.
	// +optional
	Pod string `json:"pod,omitempty"`
	// Endpoint is the interface name inside the workload, e.g. eth0.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// ServiceAccountName is the pod's service account.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// IPNetworks are the endpoint's addresses as /32 or /128 CIDRs.
	// +optional
	IPNetworks []string `json:"ipNetworks,omitempty"`
	// IPv4Gateway is the gateway the workload uses for IPv4.
	// +optional
	IPv4Gateway string `json:"ipv4Gateway,omitempty"`
	// IPv6Gateway is the gateway the workload uses for IPv6.
	// +optional
	IPv6Gateway string `json:"ipv6Gateway,omitempty"`
	// IPNATs are floating IPs (1:1 NAT) for the endpoint.
	// +optional
	IPNATs []IPNAT `json:"ipNATs,omitempty"`
	// Profiles apply their rules and labels to the endpoint.
	// +optional
	Profiles []string `json:"profiles,omitempty"`
	// InterfaceName is the host side of the endpoint's interface (veth name, or HNS endpoint name).
	// +optional
	InterfaceName string `json:"interfaceName,omitempty"`
	// MAC is the endpoint's MAC address.
	// +optional
	MAC string `json:"mac,omitempty"`
	// Ports are named ports of the endpoint.
	// +optional
	Ports []WorkloadEndpointPort `json:"ports,omitempty"`
	// AllowSpoofedSourcePrefixes lets the workload send from these prefixes besides its own addresses.
	// +optional
	AllowSpoofedSourcePrefixes []string `json:"allowSpoofedSourcePrefixes,omitempty"`
}

// IPNAT is a 1:1 mapping between an endpoint address and an external address.
type IPNAT struct {
	InternalIP string `json:"internalIP"`
	ExternalIP string `json:"externalIP"`
}

// WorkloadEndpointPort is a named port of a workload endpoint.
type WorkloadEndpointPort struct {
	Name     string   `json:"name"`
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
	// +optional
	HostPort uint16 `json:"hostPort,omitempty"`
	// +optional
	HostIP string `json:"hostIP,omitempty"`
}

// WorkloadEndpointList is a list of WorkloadEndpoint.
//
// +kubebuilder:object:root=true
type WorkloadEndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkloadEndpoint `json:"items"`
}

// HostEndpoint is a host interface (or all of them, interfaceName "*") that host policy applies to.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type HostEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              HostEndpointSpec `json:"spec,omitempty"`
}

// HostEndpointSpec is the spec of a HostEndpoint.
type HostEndpointSpec struct {
	// Node is the node the interface is on.
	// +optional
	Node string `json:"node,omitempty"`
	// InterfaceName is the interface, or "*" for all host interfaces.
	// +optional
	InterfaceName string `json:"interfaceName,omitempty"`
	// ExpectedIPs are the interface's addresses, used to match it in policy.
	// +optional
	ExpectedIPs []string `json:"expectedIPs,omitempty"`
	// Profiles apply their rules and labels to the endpoint.
	// +optional
	Profiles []string `json:"profiles,omitempty"`
	// Ports are named ports of the endpoint.
	// +optional
	Ports []EndpointPort `json:"ports,omitempty"`
}

// EndpointPort is a named port of a host endpoint.
type EndpointPort struct {
	Name     string   `json:"name"`
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
}

// HostEndpointList is a list of HostEndpoint.
//
// +kubebuilder:object:root=true
type HostEndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HostEndpoint `json:"items"`
}
