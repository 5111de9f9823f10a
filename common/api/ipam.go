package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAM objects keep Calico's stored JSON names, including the snake_case handle_id in block attributes, so
// that blocks written by Calico and by tortie are interchangeable.

// IPAMBlock is one block of a pool: its affinity and which of its addresses are allocated.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type IPAMBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAMBlockSpec `json:"spec,omitempty"`
}

// IPAMBlockSpec is the spec of an IPAMBlock.
type IPAMBlockSpec struct {
	// CIDR is the block's range.
	CIDR string `json:"cidr"`
	// Affinity is "host:<node>", "virtual:<name>" or nil for a block without affinity.
	// +optional
	Affinity *string `json:"affinity,omitempty"`
	// AffinityClaimTime is when the affinity was claimed.
	// +optional
	AffinityClaimTime *metav1.Time `json:"affinityClaimTime,omitempty"`
	// StrictAffinity forbids other hosts from borrowing from the block.
	StrictAffinity bool `json:"strictAffinity"`
	// Allocations maps each ordinal in the block to an index into Attributes, or null when free.
	Allocations []*int `json:"allocations"`
	// Unallocated lists the free ordinals, in the order they will be handed out.
	Unallocated []int `json:"unallocated"`
	// Attributes hold the handle and metadata of allocations.
	Attributes []AllocationAttribute `json:"attributes"`
	// SequenceNumber increases with every allocation in the block.
	// +kubebuilder:default=0
	// +optional
	SequenceNumber uint64 `json:"sequenceNumber"`
	// SequenceNumberForAllocation maps an ordinal (as a decimal string) to the sequence number at its allocation.
	// +optional
	SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation,omitempty"`
	// Deleted marks a block being deleted (the first phase of a two-phase delete).
	// +optional
	Deleted bool `json:"deleted"`
}

// AllocationAttribute is the handle and metadata of one or more allocations.
type AllocationAttribute struct {
	// HandleID is the IPAM handle that owns the allocation (JSON "handle_id", as Calico stores it).
	// +optional
	HandleID *string `json:"handle_id,omitempty"`
	// Secondary holds metadata: pod, namespace, node, timestamp, type, service, ...
	// +optional
	Secondary map[string]string `json:"secondary,omitempty"`
	// AlternateOwnerAttrs hold a second owner's attributes while an address moves between owners (Calico
	// uses them for KubeVirt live migration).
	// +optional
	AlternateOwnerAttrs map[string]string `json:"alternateOwnerAttrs,omitempty"`
	// ReleasedAt is when the address was released (cool-down before reuse).
	// +optional
	ReleasedAt *metav1.Time `json:"releasedAt,omitempty"`
}

// IPAMBlockList is a list of IPAMBlock.
//
// +kubebuilder:object:root=true
type IPAMBlockList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMBlock `json:"items"`
}

// Block affinity states.
const (
	BlockAffinityPending         = "pending"
	BlockAffinityConfirmed       = "confirmed"
	BlockAffinityPendingDeletion = "pendingDeletion"
)

// Block affinity types.
const (
	AffinityTypeHost    = "host"
	AffinityTypeVirtual = "virtual"
)

// BlockAffinity records that a node (or a virtual owner) claims a block.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type BlockAffinity struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BlockAffinitySpec `json:"spec,omitempty"`
}

// BlockAffinitySpec is the spec of a BlockAffinity.
type BlockAffinitySpec struct {
	// State is pending, confirmed or pendingDeletion.
	// +kubebuilder:validation:Enum=pending;confirmed;pendingDeletion
	State string `json:"state"`
	// Node is the claiming node.
	Node string `json:"node"`
	// Type is host (default) or virtual.
	// +optional
	Type string `json:"type,omitempty"`
	// CIDR is the block's range.
	CIDR string `json:"cidr"`
	// Deleted marks an affinity being deleted. It is the string "true" or "false", not a boolean: Calico
	// stores it as a string and tortie reads and writes the same objects.
	// +optional
	Deleted string `json:"deleted"`
}

// BlockAffinityList is a list of BlockAffinity.
//
// +kubebuilder:object:root=true
type BlockAffinityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BlockAffinity `json:"items"`
}

// IPAMHandle counts a handle's allocations per block, so that everything a handle owns can be released.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type IPAMHandle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAMHandleSpec `json:"spec,omitempty"`
}

// IPAMHandleSpec is the spec of an IPAMHandle.
type IPAMHandleSpec struct {
	// HandleID is the handle (for pods: "<network>.<containerID>").
	HandleID string `json:"handleID"`
	// Block maps a block's CIDR to the number of addresses the handle holds in it.
	Block map[string]int `json:"block"`
	// Deleted marks a handle being deleted.
	// +optional
	Deleted bool `json:"deleted"`
}

// IPAMHandleList is a list of IPAMHandle.
//
// +kubebuilder:object:root=true
type IPAMHandleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMHandle `json:"items"`
}

// IPAMConfigName is the name of the only IPAMConfig object.
const IPAMConfigName = "default"

// IPAMConfig holds cluster-wide IPAM settings. It is a singleton named "default". (Calico's v3 kind name
// IPAMConfiguration is accepted on input as an alias.)
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type IPAMConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAMConfigSpec `json:"spec,omitempty"`
}

// IPAMConfigSpec is the spec of an IPAMConfig.
type IPAMConfigSpec struct {
	// StrictAffinity forbids borrowing addresses from other nodes' blocks (default false; Windows nodes
	// need true).
	StrictAffinity bool `json:"strictAffinity"`
	// AutoAllocateBlocks lets nodes claim new blocks as needed (default true).
	// +optional
	AutoAllocateBlocks *bool `json:"autoAllocateBlocks,omitempty"`
	// MaxBlocksPerHost caps the blocks one node may claim; 0 means no explicit cap. A value above 0
	// requires StrictAffinity.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxBlocksPerHost int `json:"maxBlocksPerHost,omitempty"`
	// IPCooldownSeconds is how long a released address rests before reuse (at most 1200).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1200
	// +optional
	IPCooldownSeconds *int `json:"ipCooldownSeconds,omitempty"`
	// KubeVirtVMAddressPersistence is Enabled or Disabled (kept for compatibility).
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	KubeVirtVMAddressPersistence *string `json:"kubeVirtVMAddressPersistence,omitempty"`
}

// IPAMConfigList is a list of IPAMConfig.
//
// +kubebuilder:object:root=true
type IPAMConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMConfig `json:"items"`
}
