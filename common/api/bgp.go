package api

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeer configures BGP peerings: which tortie nodes (node or nodeSelector; neither means all) peer with
// which peers (peerIP+asNumber, or the tortie nodes matching peerSelector).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPPeerSpec `json:"spec,omitempty"`
}

// NextHopMode is how the next hop of advertised routes is set.
// +kubebuilder:validation:Enum=Auto;Self;Keep
type NextHopMode string

const (
	NextHopAuto NextHopMode = "Auto"
	NextHopSelf NextHopMode = "Self"
	NextHopKeep NextHopMode = "Keep"
)

// SourceAddress is the source address used for a BGP session.
// +kubebuilder:validation:Enum=UseNodeIP;None
type SourceAddress string

const (
	SourceAddressUseNodeIP SourceAddress = "UseNodeIP"
	SourceAddressNone      SourceAddress = "None"
)

// ReversePeering says whether the reverse peering is configured automatically.
// +kubebuilder:validation:Enum=Auto;Manual
type ReversePeering string

const (
	ReversePeeringAuto   ReversePeering = "Auto"
	ReversePeeringManual ReversePeering = "Manual"
)

// BGPPeerSpec is the spec of a BGPPeer.
type BGPPeerSpec struct {
	// Node is the one node that peers (exclusive with NodeSelector).
	// +optional
	Node string `json:"node,omitempty"`
	// NodeSelector chooses the nodes that peer.
	// +optional
	NodeSelector string `json:"nodeSelector,omitempty"`
	// PeerIP is the peer's address, optionally with ":port" ("[v6]:port" for IPv6).
	// +optional
	PeerIP string `json:"peerIP,omitempty"`
	// PeerSelector chooses tortie nodes as peers (exclusive with PeerIP).
	// +optional
	PeerSelector string `json:"peerSelector,omitempty"`
	// ASNumber is the peer's AS number (required with PeerIP).
	// +optional
	ASNumber ASNumber `json:"asNumber,omitempty"`
	// LocalASNumber overrides the local AS number for this peering.
	// +optional
	LocalASNumber *ASNumber `json:"localASNumber,omitempty"`
	// KeepOriginalNextHop keeps the next hop of routes from the peer (deprecated by NextHopMode).
	// +optional
	KeepOriginalNextHop bool `json:"keepOriginalNextHop,omitempty"`
	// NextHopMode is Auto, Self or Keep.
	// +optional
	NextHopMode *NextHopMode `json:"nextHopMode,omitempty"`
	// Password authenticates the session.
	// +optional
	Password *BGPPassword `json:"password,omitempty"`
	// SourceAddress is UseNodeIP (default) or None.
	// +optional
	SourceAddress SourceAddress `json:"sourceAddress,omitempty"`
	// MaxRestartTime is the graceful restart time.
	// +optional
	MaxRestartTime *metav1.Duration `json:"maxRestartTime,omitempty"`
	// NumAllowedLocalASNumbers is how often the local AS may appear in a received AS path.
	// +optional
	NumAllowedLocalASNumbers *int32 `json:"numAllowedLocalASNumbers,omitempty"`
	// TTLSecurity is the GTSM hop count.
	// +optional
	TTLSecurity *uint8 `json:"ttlSecurity,omitempty"`
	// KeepaliveTime is the BGP keepalive interval.
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`
	// ReachableBy is a gateway through which a static route to the peer is added.
	// +optional
	ReachableBy string `json:"reachableBy,omitempty"`
	// Filters are BGPFilter names applied to the peering.
	// +optional
	Filters []string `json:"filters,omitempty"`
	// LocalWorkloadSelector peers with local workloads matching the selector.
	// +optional
	LocalWorkloadSelector string `json:"localWorkloadSelector,omitempty"`
	// ReversePeering is Auto (default) or Manual.
	// +optional
	ReversePeering *ReversePeering `json:"reversePeering,omitempty"`
}

// BGPPassword is a password taken from a Secret.
type BGPPassword struct {
	// +optional
	SecretKeyRef *corev1.SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// BGPPeerList is a list of BGPPeer.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

// BGPConfiguration holds cluster-wide ("default") or per-node ("node.<name>") BGP settings.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPConfigurationSpec `json:"spec,omitempty"`
}

// BindMode is which addresses the BGP speaker listens on.
// +kubebuilder:validation:Enum=None;NodeIP
type BindMode string

const (
	BindModeNone   BindMode = "None"
	BindModeNodeIP BindMode = "NodeIP"
)

// BGPConfigurationSpec is the spec of a BGPConfiguration.
type BGPConfigurationSpec struct {
	// LogSeverityScreen is the BGP speaker's log level (default Info).
	// +kubebuilder:default=Info
	// +optional
	LogSeverityScreen string `json:"logSeverityScreen,omitempty"`
	// NodeToNodeMeshEnabled makes every node peer with every other (default true).
	// +optional
	NodeToNodeMeshEnabled *bool `json:"nodeToNodeMeshEnabled,omitempty"`
	// ASNumber is the cluster's AS number (default 64512).
	// +optional
	ASNumber *ASNumber `json:"asNumber,omitempty"`
	// ServiceLoadBalancerIPs are advertised LoadBalancer service ranges.
	// +optional
	ServiceLoadBalancerIPs []ServiceLoadBalancerIPBlock `json:"serviceLoadBalancerIPs,omitempty"`
	// ServiceExternalIPs are advertised external IP ranges.
	// +optional
	ServiceExternalIPs []ServiceExternalIPBlock `json:"serviceExternalIPs,omitempty"`
	// ServiceClusterIPs are advertised cluster IP ranges.
	// +optional
	ServiceClusterIPs []ServiceClusterIPBlock `json:"serviceClusterIPs,omitempty"`
	// Communities are named BGP community values.
	// +optional
	Communities []Community `json:"communities,omitempty"`
	// ListenPort is the BGP port (default 179).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	ListenPort uint16 `json:"listenPort,omitempty"`
	// PrefixAdvertisements attach communities to advertised prefixes.
	// +optional
	PrefixAdvertisements []PrefixAdvertisement `json:"prefixAdvertisements,omitempty"`
	// NodeMeshPassword authenticates mesh sessions.
	// +optional
	NodeMeshPassword *BGPPassword `json:"nodeMeshPassword,omitempty"`
	// NodeMeshMaxRestartTime is the graceful restart time of mesh sessions.
	// +optional
	NodeMeshMaxRestartTime *metav1.Duration `json:"nodeMeshMaxRestartTime,omitempty"`
	// BindMode is None (listen everywhere) or NodeIP.
	// +optional
	BindMode *BindMode `json:"bindMode,omitempty"`
	// IgnoredInterfaces are interface name patterns whose addresses are not exported.
	// +optional
	IgnoredInterfaces []string `json:"ignoredInterfaces,omitempty"`
	// LocalWorkloadPeeringIPV4 is the IPv4 address local workloads peer with.
	// +optional
	LocalWorkloadPeeringIPV4 string `json:"localWorkloadPeeringIPV4,omitempty"`
	// LocalWorkloadPeeringIPV6 is the IPv6 address local workloads peer with.
	// +optional
	LocalWorkloadPeeringIPV6 string `json:"localWorkloadPeeringIPV6,omitempty"`
	// ServiceLoadBalancerAggregation is Enabled (default) or Disabled.
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +kubebuilder:default=Enabled
	// +optional
	ServiceLoadBalancerAggregation *string `json:"serviceLoadBalancerAggregation,omitempty"`
	// ProgramClusterRoutes is Enabled, Disabled or EnabledNoEncapOnly (default).
	// +optional
	ProgramClusterRoutes *string `json:"programClusterRoutes,omitempty"`
	// IPv4NormalRoutePriority is the metric of IPv4 routes (default 1024).
	// +optional
	IPv4NormalRoutePriority *int `json:"ipv4NormalRoutePriority,omitempty"`
	// IPv6NormalRoutePriority is the metric of IPv6 routes (default 1024).
	// +optional
	IPv6NormalRoutePriority *int `json:"ipv6NormalRoutePriority,omitempty"`
}

// ServiceLoadBalancerIPBlock is an advertised LoadBalancer range.
type ServiceLoadBalancerIPBlock struct {
	// +optional
	CIDR string `json:"cidr,omitempty"`
}

// ServiceExternalIPBlock is an advertised external IP range.
type ServiceExternalIPBlock struct {
	// +optional
	CIDR string `json:"cidr,omitempty"`
}

// ServiceClusterIPBlock is an advertised cluster IP range.
type ServiceClusterIPBlock struct {
	// +optional
	CIDR string `json:"cidr,omitempty"`
}

// Community is a named BGP community ("aa:nn" or large "aa:nn:mm").
type Community struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Value string `json:"value,omitempty"`
}

// PrefixAdvertisement attaches communities (names or values) to a prefix.
type PrefixAdvertisement struct {
	// +optional
	CIDR string `json:"cidr,omitempty"`
	// +optional
	Communities []string `json:"communities,omitempty"`
}

// BGPConfigurationList is a list of BGPConfiguration.
//
// +kubebuilder:object:root=true
type BGPConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPConfiguration `json:"items"`
}

// ClusterInformation is the singleton "default" describing the cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,path=clusterinformations
type ClusterInformation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterInformationSpec `json:"spec,omitempty"`
}

// ClusterInformationSpec is the spec of a ClusterInformation.
type ClusterInformationSpec struct {
	// ClusterGUID identifies the cluster.
	// +optional
	ClusterGUID string `json:"clusterGUID,omitempty"`
	// ClusterType is a comma-separated list of cluster properties (k8s, kdd, bgp, ...).
	// +optional
	ClusterType string `json:"clusterType,omitempty"`
	// CalicoVersion is the version of the installed networking (tortie writes its own version).
	// +optional
	CalicoVersion string `json:"calicoVersion,omitempty"`
	// DatastoreReady false makes the CNI plugin refuse to set up new pods.
	// +optional
	DatastoreReady *bool `json:"datastoreReady,omitempty"`
	// Variant is the product variant.
	// +optional
	Variant string `json:"variant,omitempty"`
}

// ClusterInformationList is a list of ClusterInformation.
//
// +kubebuilder:object:root=true
type ClusterInformationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterInformation `json:"items"`
}

// KubeControllersConfiguration configures tortie-controllers (singleton "default").
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
type KubeControllersConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeControllersConfigurationSpec `json:"spec,omitempty"`
	// +optional
	Status KubeControllersConfigurationStatus `json:"status,omitempty"`
}

// KubeControllersConfigurationSpec is the spec of a KubeControllersConfiguration.
type KubeControllersConfigurationSpec struct {
	// +optional
	LogSeverityScreen string `json:"logSeverityScreen,omitempty"`
	// HealthChecks is Enabled (default) or Disabled.
	// +kubebuilder:default=Enabled
	// +optional
	HealthChecks string `json:"healthChecks,omitempty"`
	// +optional
	EtcdV3CompactionPeriod *metav1.Duration `json:"etcdV3CompactionPeriod,omitempty"`
	// +optional
	PrometheusMetricsPort *int `json:"prometheusMetricsPort,omitempty"`
	// +optional
	DebugProfilePort *int32 `json:"debugProfilePort,omitempty"`
	// Controllers enables and configures the individual controllers.
	// +optional
	Controllers ControllersConfig `json:"controllers,omitempty"`
}

// ControllersConfig enables controllers; a nil entry is disabled.
type ControllersConfig struct {
	// +optional
	Node *NodeControllerConfig `json:"node,omitempty"`
	// +optional
	Policy *ControllerConfig `json:"policy,omitempty"`
	// +optional
	WorkloadEndpoint *ControllerConfig `json:"workloadEndpoint,omitempty"`
	// +optional
	ServiceAccount *ControllerConfig `json:"serviceAccount,omitempty"`
	// +optional
	Namespace *ControllerConfig `json:"namespace,omitempty"`
	// +optional
	LoadBalancer *LoadBalancerControllerConfig `json:"loadBalancer,omitempty"`
	// +optional
	Migration *MigrationControllerConfig `json:"migration,omitempty"`
}

// MigrationControllerConfig configures Calico's data migrations in kube-controllers.
type MigrationControllerConfig struct {
	// PolicyNameMigrator is Enabled (default) or Disabled: it renames pre-v3.32 "default."-prefixed
	// policies.
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +kubebuilder:default=Enabled
	// +optional
	PolicyNameMigrator string `json:"policyNameMigrator,omitempty"`
}

// ControllerConfig is the common configuration of a controller.
type ControllerConfig struct {
	// ReconcilerPeriod is how often the controller resyncs (default 5m).
	// +optional
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
}

// NodeControllerConfig configures the node controller.
type NodeControllerConfig struct {
	// +optional
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
	// SyncLabels is Enabled (default) or Disabled.
	// +optional
	SyncLabels string `json:"syncLabels,omitempty"`
	// +optional
	HostEndpoint *AutoHostEndpointConfig `json:"hostEndpoint,omitempty"`
	// LeakGracePeriod is how long an unowned allocation lives before IPAM GC frees it (default 15m).
	// +optional
	LeakGracePeriod *metav1.Duration `json:"leakGracePeriod,omitempty"`
}

// AutoHostEndpointConfig configures automatic host endpoints.
type AutoHostEndpointConfig struct {
	// AutoCreate is Enabled or Disabled (default).
	// +optional
	AutoCreate string `json:"autoCreate,omitempty"`
	// CreateDefaultHostEndpoint is Enabled or Disabled: whether the "*" host endpoint is created.
	// +optional
	CreateDefaultHostEndpoint string `json:"createDefaultHostEndpoint,omitempty"`
	// Templates create extra host endpoints for the nodes they select.
	// +optional
	Templates []AutoHostEndpointTemplate `json:"templates,omitempty"`
}

// AutoHostEndpointTemplate describes host endpoints created for selected nodes.
type AutoHostEndpointTemplate struct {
	// +optional
	GenerateName string `json:"generateName,omitempty"`
	// +optional
	InterfaceCIDRs []string `json:"interfaceCIDRs,omitempty"`
	// +optional
	InterfacePattern string `json:"interfacePattern,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	NodeSelector string `json:"nodeSelector,omitempty"`
}

// LoadBalancerControllerConfig configures LoadBalancer IP assignment.
type LoadBalancerControllerConfig struct {
	// AssignIPs is AllServices (default) or RequestedServicesOnly.
	// +kubebuilder:validation:Enum=AllServices;RequestedServicesOnly
	// +kubebuilder:default=AllServices
	// +optional
	AssignIPs string `json:"assignIPs,omitempty"`
}

// KubeControllersConfigurationStatus is the configuration the controllers run with.
type KubeControllersConfigurationStatus struct {
	// +optional
	RunningConfig *KubeControllersConfigurationSpec `json:"runningConfig,omitempty"`
	// +optional
	EnvironmentVars map[string]string `json:"environmentVars,omitempty"`
}

// KubeControllersConfigurationList is a list of KubeControllersConfiguration.
//
// +kubebuilder:object:root=true
type KubeControllersConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KubeControllersConfiguration `json:"items"`
}
