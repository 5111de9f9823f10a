package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CalicoNodeStatus asks a node's agent to report BGP and routing status into the object's status every
// updatePeriodSeconds. tortie stores it as Calico does; its agent does not fill the status yet.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
type CalicoNodeStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CalicoNodeStatusSpec `json:"spec,omitempty"`
	// +optional
	Status CalicoNodeStatusStatus `json:"status,omitempty"`
}

// CalicoNodeStatusSpec says which node reports what, how often.
type CalicoNodeStatusSpec struct {
	// +optional
	Node string `json:"node,omitempty"`
	// Classes are Agent, BGP and Routes.
	// +listType=set
	// +optional
	Classes []NodeStatusClass `json:"classes,omitempty"`
	// +optional
	UpdatePeriodSeconds *int32 `json:"updatePeriodSeconds,omitempty"`
}

// NodeStatusClass is one class of status a node reports.
//
// +kubebuilder:validation:Enum=Agent;BGP;Routes
type NodeStatusClass string

// CalicoNodeStatusStatus is what the node reported.
type CalicoNodeStatusStatus struct {
	// +nullable
	// +optional
	LastUpdated metav1.Time `json:"lastUpdated,omitempty"`
	// +optional
	Agent CalicoNodeAgentStatus `json:"agent,omitempty"`
	// +optional
	BGP CalicoNodeBGPStatus `json:"bgp,omitempty"`
	// +optional
	Routes CalicoNodeRouteStatus `json:"routes,omitempty"`
}

// CalicoNodeAgentStatus is the state of the node's BGP daemons.
type CalicoNodeAgentStatus struct {
	// +optional
	BIRDV4 BGPDaemonStatus `json:"birdV4,omitempty"`
	// +optional
	BIRDV6 BGPDaemonStatus `json:"birdV6,omitempty"`
}

// BGPDaemonStatus is one BGP daemon's state.
type BGPDaemonStatus struct {
	// +kubebuilder:validation:Enum=Ready;NotReady
	// +optional
	State string `json:"state,omitempty"`
	// +optional
	Version string `json:"version,omitempty"`
	// +optional
	RouterID string `json:"routerID,omitempty"`
	// +optional
	LastBootTime string `json:"lastBootTime,omitempty"`
	// +optional
	LastReconfigurationTime string `json:"lastReconfigurationTime,omitempty"`
}

// CalicoNodeBGPStatus summarises the node's BGP sessions.
type CalicoNodeBGPStatus struct {
	NumberEstablishedV4    int `json:"numberEstablishedV4"`
	NumberEstablishedV6    int `json:"numberEstablishedV6"`
	NumberNotEstablishedV4 int `json:"numberNotEstablishedV4"`
	NumberNotEstablishedV6 int `json:"numberNotEstablishedV6"`
	// +optional
	PeersV4 []BGPPeerStatus `json:"peersV4,omitempty"`
	// +optional
	PeersV6 []BGPPeerStatus `json:"peersV6,omitempty"`
}

// BGPPeerStatus is one BGP session.
type BGPPeerStatus struct {
	// +optional
	PeerIP string `json:"peerIP,omitempty"`
	// +kubebuilder:validation:Enum=NodeMesh;NodePeer;GlobalPeer
	// +optional
	Type string `json:"type,omitempty"`
	// +kubebuilder:validation:Enum=Idle;Connect;Active;OpenSent;OpenConfirm;Established;Close
	// +optional
	State string `json:"state,omitempty"`
	// +optional
	Since string `json:"since,omitempty"`
}

// CalicoNodeRouteStatus lists the node's routes.
type CalicoNodeRouteStatus struct {
	// +optional
	RoutesV4 []CalicoNodeRoute `json:"routesV4,omitempty"`
	// +optional
	RoutesV6 []CalicoNodeRoute `json:"routesV6,omitempty"`
}

// CalicoNodeRoute is one route in the FIB or RIB.
type CalicoNodeRoute struct {
	// +kubebuilder:validation:Enum=FIB;RIB
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Destination string `json:"destination,omitempty"`
	// +optional
	Gateway string `json:"gateway,omitempty"`
	// +optional
	Interface string `json:"interface,omitempty"`
	// +optional
	LearnedFrom CalicoNodeRouteSource `json:"learnedFrom,omitempty"`
}

// CalicoNodeRouteSource says where a route came from.
type CalicoNodeRouteSource struct {
	// +kubebuilder:validation:Enum=Kernel;Static;Direct;NodeMesh;BGPPeer
	// +optional
	SourceType string `json:"sourceType,omitempty"`
	// +optional
	PeerIP string `json:"peerIP,omitempty"`
}

// CalicoNodeStatusList is a list of CalicoNodeStatus.
//
// +kubebuilder:object:root=true
type CalicoNodeStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CalicoNodeStatus `json:"items"`
}
