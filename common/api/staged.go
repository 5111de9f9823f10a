package api

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StagedAction says what a staged policy would do to its enforced counterpart if committed.
//
// +kubebuilder:validation:Enum=Set;Delete;Learn;Ignore
type StagedAction string

// Staged actions.
const (
	StagedActionSet    StagedAction = "Set"
	StagedActionDelete StagedAction = "Delete"
	StagedActionLearn  StagedAction = "Learn"
	StagedActionIgnore StagedAction = "Ignore"
)

// StagedNetworkPolicy is a NetworkPolicy that is stored but never enforced: Calico evaluates staged
// policies only for flow logs. tortie stores them so that nothing a Calico cluster holds is lost; its
// dataplane ignores them.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
type StagedNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              StagedNetworkPolicySpec `json:"spec,omitempty"`
}

// StagedNetworkPolicySpec is a NetworkPolicySpec with a staged action.
type StagedNetworkPolicySpec struct {
	// StagedAction is Set (default), Delete, Learn or Ignore.
	// +kubebuilder:default=Set
	// +optional
	StagedAction StagedAction `json:"stagedAction,omitempty"`
	// Tier is the tier the policy belongs to (default "default").
	// +kubebuilder:default=default
	// +optional
	Tier string `json:"tier,omitempty"`
	// +optional
	Order *float64 `json:"order,omitempty"`
	// +optional
	Ingress []Rule `json:"ingress,omitempty"`
	// +optional
	Egress []Rule `json:"egress,omitempty"`
	// +optional
	Selector string `json:"selector,omitempty"`
	// +optional
	Types []PolicyType `json:"types,omitempty"`
	// +optional
	ServiceAccountSelector string `json:"serviceAccountSelector,omitempty"`
	// +optional
	PerformanceHints []PolicyPerformanceHint `json:"performanceHints,omitempty"`
}

// StagedNetworkPolicyList is a list of StagedNetworkPolicy.
//
// +kubebuilder:object:root=true
type StagedNetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StagedNetworkPolicy `json:"items"`
}

// StagedGlobalNetworkPolicy is a GlobalNetworkPolicy that is stored but never enforced.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type StagedGlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              StagedGlobalNetworkPolicySpec `json:"spec,omitempty"`
}

// StagedGlobalNetworkPolicySpec is a GlobalNetworkPolicySpec with a staged action.
type StagedGlobalNetworkPolicySpec struct {
	// StagedAction is Set (default), Delete, Learn or Ignore.
	// +kubebuilder:default=Set
	// +optional
	StagedAction StagedAction `json:"stagedAction,omitempty"`
	// Tier is the tier the policy belongs to (default "default").
	// +kubebuilder:default=default
	// +optional
	Tier string `json:"tier,omitempty"`
	// +optional
	Order *float64 `json:"order,omitempty"`
	// +optional
	Ingress []Rule `json:"ingress,omitempty"`
	// +optional
	Egress []Rule `json:"egress,omitempty"`
	// +optional
	Selector string `json:"selector,omitempty"`
	// +optional
	Types []PolicyType `json:"types,omitempty"`
	// +optional
	DoNotTrack bool `json:"doNotTrack,omitempty"`
	// +optional
	PreDNAT bool `json:"preDNAT,omitempty"`
	// +optional
	ApplyOnForward bool `json:"applyOnForward,omitempty"`
	// +optional
	ServiceAccountSelector string `json:"serviceAccountSelector,omitempty"`
	// +optional
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// +optional
	PerformanceHints []PolicyPerformanceHint `json:"performanceHints,omitempty"`
}

// StagedGlobalNetworkPolicyList is a list of StagedGlobalNetworkPolicy.
//
// +kubebuilder:object:root=true
type StagedGlobalNetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StagedGlobalNetworkPolicy `json:"items"`
}

// StagedKubernetesNetworkPolicy is a Kubernetes NetworkPolicy that is stored but never enforced.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
type StagedKubernetesNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              StagedKubernetesNetworkPolicySpec `json:"spec,omitempty"`
}

// StagedKubernetesNetworkPolicySpec is a Kubernetes NetworkPolicySpec with a staged action.
type StagedKubernetesNetworkPolicySpec struct {
	// StagedAction is Set (default), Delete, Learn or Ignore.
	// +kubebuilder:default=Set
	// +optional
	StagedAction StagedAction `json:"stagedAction,omitempty"`
	// +optional
	PodSelector metav1.LabelSelector `json:"podSelector,omitempty"`
	// +optional
	Ingress []networkingv1.NetworkPolicyIngressRule `json:"ingress,omitempty"`
	// +optional
	Egress []networkingv1.NetworkPolicyEgressRule `json:"egress,omitempty"`
	// +optional
	PolicyTypes []networkingv1.PolicyType `json:"policyTypes,omitempty"`
}

// StagedKubernetesNetworkPolicyList is a list of StagedKubernetesNetworkPolicy.
//
// +kubebuilder:object:root=true
type StagedKubernetesNetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StagedKubernetesNetworkPolicy `json:"items"`
}
