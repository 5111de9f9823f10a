package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EncapMode is when a pool's traffic is encapsulated (IPIP or VXLAN).
// +kubebuilder:validation:Enum=Never;Always;CrossSubnet
type EncapMode string

const (
	// EncapNever sends pool traffic unencapsulated.
	EncapNever EncapMode = "Never"
	// EncapAlways encapsulates all traffic between nodes.
	EncapAlways EncapMode = "Always"
	// EncapCrossSubnet encapsulates only traffic to nodes in another subnet.
	EncapCrossSubnet EncapMode = "CrossSubnet"
)

// IPIPMode and VXLANMode are the per-protocol names Calico uses; both are EncapMode.
type (
	IPIPMode  = EncapMode
	VXLANMode = EncapMode
)

// IPPoolAllowedUse is what addresses from a pool may be used for.
// +kubebuilder:validation:Enum=Workload;Tunnel;LoadBalancer
type IPPoolAllowedUse string

const (
	IPPoolAllowedUseWorkload     IPPoolAllowedUse = "Workload"
	IPPoolAllowedUseTunnel       IPPoolAllowedUse = "Tunnel"
	IPPoolAllowedUseLoadBalancer IPPoolAllowedUse = "LoadBalancer"
)

// AssignmentMode says whether a pool is used for automatic assignment or only when requested by name.
// +kubebuilder:validation:Enum=Automatic;Manual
type AssignmentMode string

const (
	AssignmentModeAutomatic AssignmentMode = "Automatic"
	AssignmentModeManual    AssignmentMode = "Manual"
)

// IPPool is a range of addresses that IPAM hands out in blocks, with its routing and NAT settings.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPPoolSpec `json:"spec,omitempty"`
	// +optional
	Status *IPPoolStatus `json:"status,omitempty"`
}

// IPPoolSpec is the spec of an IPPool.
type IPPoolSpec struct {
	// CIDR is the pool's range (immutable).
	CIDR string `json:"cidr"`
	// VXLANMode is when to VXLAN-encapsulate traffic (default Never).
	// +optional
	VXLANMode EncapMode `json:"vxlanMode,omitempty"`
	// IPIPMode is when to IPIP-encapsulate traffic (default Never; IPv4 pools only).
	// +optional
	IPIPMode EncapMode `json:"ipipMode,omitempty"`
	// NATOutgoing masquerades traffic from the pool to destinations outside all pools.
	// +optional
	NATOutgoing bool `json:"natOutgoing,omitempty"`
	// Disabled stops new allocations from the pool; existing routes stay.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// DisableBGPExport stops the pool's routes from being advertised over BGP.
	// +optional
	DisableBGPExport bool `json:"disableBGPExport,omitempty"`
	// BlockSize is the prefix length of the blocks handed to nodes (immutable; IPv4 20-32, default 26;
	// IPv6 116-128, default 122).
	// +optional
	BlockSize int `json:"blockSize,omitempty"`
	// NodeSelector chooses the nodes that may allocate from the pool (default "all()").
	// +kubebuilder:default="all()"
	// +optional
	NodeSelector string `json:"nodeSelector,omitempty"`
	// NamespaceSelector chooses the namespaces whose pods may allocate from the pool.
	// +optional
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// AllowedUses says what the addresses may be used for (default [Workload, Tunnel]).
	// +optional
	AllowedUses []IPPoolAllowedUse `json:"allowedUses,omitempty"`
	// AssignmentMode is Automatic (default) or Manual (used only when requested explicitly).
	// +kubebuilder:default=Automatic
	// +optional
	AssignmentMode *AssignmentMode `json:"assignmentMode,omitempty"`
}

// IPPoolStatus is the observed state of an IPPool.
type IPPoolStatus struct {
	// Conditions include Allocatable (reasons CIDROverlap, Terminating, PoolDisabled, OK).
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPPoolList is a list of IPPool.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}

// IPReservation lists addresses that IPAM must never hand out.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type IPReservation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPReservationSpec `json:"spec,omitempty"`
}

// IPReservationSpec is the spec of an IPReservation.
type IPReservationSpec struct {
	// ReservedCIDRs are CIDRs or plain addresses.
	// +optional
	ReservedCIDRs []string `json:"reservedCIDRs,omitempty"`
}

// IPReservationList is a list of IPReservation.
//
// +kubebuilder:object:root=true
type IPReservationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPReservation `json:"items"`
}
