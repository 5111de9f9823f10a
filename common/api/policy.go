package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NetworkPolicy is a namespaced, ordered list of ingress and egress rules applied to the endpoints its
// selector matches in its namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
type NetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkPolicySpec `json:"spec,omitempty"`
}

// NetworkPolicySpec is the spec of a NetworkPolicy.
type NetworkPolicySpec struct {
	// Tier is the tier the policy belongs to (default "default").
	// +kubebuilder:default=default
	// +optional
	Tier string `json:"tier,omitempty"`
	// Order orders policies within a tier, lower first; nil means last.
	// +optional
	Order *float64 `json:"order,omitempty"`
	// Ingress rules, in order (at most 1024).
	// +optional
	Ingress []Rule `json:"ingress,omitempty"`
	// Egress rules, in order (at most 1024).
	// +optional
	Egress []Rule `json:"egress,omitempty"`
	// Selector chooses the endpoints the policy applies to.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Types says which directions the policy applies to; inferred from the rules when empty.
	// +optional
	Types []PolicyType `json:"types,omitempty"`
	// ServiceAccountSelector restricts the policy to endpoints whose service account's labels match.
	// +optional
	ServiceAccountSelector string `json:"serviceAccountSelector,omitempty"`
	// PerformanceHints are optimisation hints.
	// +optional
	PerformanceHints []PolicyPerformanceHint `json:"performanceHints,omitempty"`
}

// NetworkPolicyList is a list of NetworkPolicy.
//
// +kubebuilder:object:root=true
type NetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkPolicy `json:"items"`
}

// GlobalNetworkPolicy is a cluster-wide policy; it can also select host endpoints.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type GlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkPolicySpec `json:"spec,omitempty"`
}

// GlobalNetworkPolicySpec is the spec of a GlobalNetworkPolicy.
type GlobalNetworkPolicySpec struct {
	// Tier is the tier the policy belongs to (default "default").
	// +kubebuilder:default=default
	// +optional
	Tier string `json:"tier,omitempty"`
	// Order orders policies within a tier, lower first; nil means last.
	// +optional
	Order *float64 `json:"order,omitempty"`
	// Ingress rules, in order (at most 1024).
	// +optional
	Ingress []Rule `json:"ingress,omitempty"`
	// Egress rules, in order (at most 1024).
	// +optional
	Egress []Rule `json:"egress,omitempty"`
	// Selector chooses the endpoints the policy applies to.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Types says which directions the policy applies to; inferred from the rules when empty.
	// +optional
	Types []PolicyType `json:"types,omitempty"`
	// DoNotTrack applies the policy before connection tracking (host endpoints only; no conntrack state).
	// +optional
	DoNotTrack bool `json:"doNotTrack,omitempty"`
	// PreDNAT applies the policy before kube-proxy's DNAT (host endpoint ingress only).
	// +optional
	PreDNAT bool `json:"preDNAT,omitempty"`
	// ApplyOnForward applies host endpoint policy to forwarded traffic too.
	// +optional
	ApplyOnForward bool `json:"applyOnForward,omitempty"`
	// ServiceAccountSelector restricts the policy to endpoints whose service account's labels match.
	// +optional
	ServiceAccountSelector string `json:"serviceAccountSelector,omitempty"`
	// NamespaceSelector restricts the policy to endpoints in namespaces whose labels match.
	// +optional
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// PerformanceHints are optimisation hints.
	// +optional
	PerformanceHints []PolicyPerformanceHint `json:"performanceHints,omitempty"`
}

// GlobalNetworkPolicyList is a list of GlobalNetworkPolicy.
//
// +kubebuilder:object:root=true
type GlobalNetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GlobalNetworkPolicy `json:"items"`
}

// Tier groups policies; tiers are evaluated in order, and a tier whose policies select an endpoint but do
// not decide applies its default action.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
type Tier struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TierSpec `json:"spec,omitempty"`
	// +optional
	Status TierStatus `json:"status,omitempty"`
}

// TierStatus holds the tier's conditions (Calico reports whether the tier is ready).
type TierStatus struct {
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TierSpec is the spec of a Tier.
type TierSpec struct {
	// Order orders tiers, lower first; nil means last.
	// +optional
	Order *float64 `json:"order,omitempty"`
	// DefaultAction applies at the end of the tier to endpoints that its policies select: Deny (default) or
	// Pass (Validate checks this; the schema allows any Action).
	// +kubebuilder:default=Deny
	// +optional
	DefaultAction *Action `json:"defaultAction,omitempty"`
}

// TierList is a list of Tier.
//
// +kubebuilder:object:root=true
type TierList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tier `json:"items"`
}

// Well-known tier names and orders.
const (
	DefaultTierName      = "default"
	KubeAdminTierName    = "kube-admin"
	KubeBaselineTierName = "kube-baseline"

	DefaultTierOrder      = 1_000_000
	KubeAdminTierOrder    = 1_000
	KubeBaselineTierOrder = 10_000_000
)

// NetworkSet is a namespaced set of CIDRs that policy selectors can match by the set's labels.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
type NetworkSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkSetSpec `json:"spec,omitempty"`
}

// NetworkSetSpec is the spec of a NetworkSet or GlobalNetworkSet.
type NetworkSetSpec struct {
	// Nets are the CIDRs (or plain addresses) in the set.
	// +optional
	Nets []string `json:"nets,omitempty"`
}

// NetworkSetList is a list of NetworkSet.
//
// +kubebuilder:object:root=true
type NetworkSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkSet `json:"items"`
}

// GlobalNetworkSet is a cluster-wide set of CIDRs that policy selectors can match by the set's labels.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type GlobalNetworkSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkSetSpec `json:"spec,omitempty"`
}

// GlobalNetworkSetSpec is the spec of a GlobalNetworkSet.
type GlobalNetworkSetSpec struct {
	// Nets are the CIDRs (or plain addresses) in the set.
	// +optional
	Nets []string `json:"nets,omitempty"`
}

// GlobalNetworkSetList is a list of GlobalNetworkSet.
//
// +kubebuilder:object:root=true
type GlobalNetworkSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GlobalNetworkSet `json:"items"`
}

// Profile holds rules and labels applied to endpoints that list it (namespaces and service accounts become
// profiles kns.<ns> and ksa.<ns>.<sa>).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type Profile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ProfileSpec `json:"spec,omitempty"`
}

// ProfileSpec is the spec of a Profile.
type ProfileSpec struct {
	// +optional
	Ingress []Rule `json:"ingress,omitempty"`
	// +optional
	Egress []Rule `json:"egress,omitempty"`
	// LabelsToApply are added to the labels of every endpoint using the profile.
	// +optional
	LabelsToApply map[string]string `json:"labelsToApply,omitempty"`
}

// ProfileList is a list of Profile.
//
// +kubebuilder:object:root=true
type ProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Profile `json:"items"`
}
