package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPFilter holds import and export rules for BGP routes; BGPPeer.filters names the filters a peering
// uses. tortie stores BGPFilters as Calico does; its BGP speaker is not built yet.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type BGPFilter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPFilterSpec `json:"spec,omitempty"`
}

// BGPFilterSpec lists the rules per direction and address family, evaluated in order.
type BGPFilterSpec struct {
	// +optional
	ExportV4 []BGPFilterRule `json:"exportV4,omitempty"`
	// +optional
	ImportV4 []BGPFilterRule `json:"importV4,omitempty"`
	// +optional
	ExportV6 []BGPFilterRule `json:"exportV6,omitempty"`
	// +optional
	ImportV6 []BGPFilterRule `json:"importV6,omitempty"`
}

// BGPFilterRule matches routes and accepts or rejects them, optionally changing them.
type BGPFilterRule struct {
	// Action is Accept or Reject.
	// +kubebuilder:validation:Enum=Accept;Reject
	Action string `json:"action"`
	// +optional
	CIDR string `json:"cidr,omitempty"`
	// MatchOperator compares the route with CIDR: Equal, NotEqual, In or NotIn.
	// +kubebuilder:validation:Enum=Equal;NotEqual;In;NotIn
	// +optional
	MatchOperator string `json:"matchOperator,omitempty"`
	// +optional
	PrefixLength *BGPFilterPrefixLength `json:"prefixLength,omitempty"`
	// Source limits the rule to routes from RemotePeers.
	// +kubebuilder:validation:Enum=RemotePeers
	// +optional
	Source string `json:"source,omitempty"`
	// +optional
	Interface string `json:"interface,omitempty"`
	// PeerType limits the rule to eBGP or iBGP peers.
	// +kubebuilder:validation:Enum=eBGP;iBGP
	// +optional
	PeerType string `json:"peerType,omitempty"`
	// +optional
	Communities *BGPFilterCommunityMatch `json:"communities,omitempty"`
	// +optional
	ASPathPrefix []int32 `json:"asPathPrefix,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483646
	// +optional
	Priority *int `json:"priority,omitempty"`
	// +optional
	Operations []BGPFilterOperation `json:"operations,omitempty"`
}

// BGPFilterPrefixLength bounds the prefix length of matched routes.
type BGPFilterPrefixLength struct {
	// +optional
	Min *int32 `json:"min,omitempty"`
	// +optional
	Max *int32 `json:"max,omitempty"`
}

// BGPFilterCommunityMatch matches routes carrying a community.
type BGPFilterCommunityMatch struct {
	Values []string `json:"values"`
}

// BGPFilterOperation changes an accepted route; exactly one field is set.
type BGPFilterOperation struct {
	// +optional
	AddCommunity *BGPFilterAddCommunity `json:"addCommunity,omitempty"`
	// +optional
	PrependASPath *BGPFilterPrependASPath `json:"prependASPath,omitempty"`
	// +optional
	SetPriority *BGPFilterSetPriority `json:"setPriority,omitempty"`
}

// BGPFilterAddCommunity adds a standard or large community.
type BGPFilterAddCommunity struct {
	Value string `json:"value"`
}

// BGPFilterPrependASPath prepends AS numbers to the path.
type BGPFilterPrependASPath struct {
	Prefix []int32 `json:"prefix"`
}

// BGPFilterSetPriority sets the route's kernel priority.
type BGPFilterSetPriority struct {
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483646
	Value int `json:"value"`
}

// BGPFilterList is a list of BGPFilter.
//
// +kubebuilder:object:root=true
type BGPFilterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPFilter `json:"items"`
}
