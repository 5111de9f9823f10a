package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FelixConfiguration holds agent settings: "default" for the cluster, "node.<name>" for one node. Unset
// fields keep their defaults (see FelixConfigurationDefaults); they are not written into stored objects.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type FelixConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              FelixConfigurationSpec `json:"spec,omitempty"`
}

// ProtoPort is a protocol, port and optional CIDR (used for fail-safe ports).
type ProtoPort struct {
	// Protocol is "TCP" or "UDP" (default TCP).
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// Port is the port number.
	Port uint16 `json:"port"`
	// Net restricts the fail-safe to a CIDR.
	// +optional
	Net string `json:"net,omitempty"`
}

// RouteTableIDRange is an inclusive range of routing table IDs.
type RouteTableIDRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// FelixConfigurationSpec is the spec of a FelixConfiguration. It holds the settings tortie uses and the
// commonly set Calico ones; every field is optional.
type FelixConfigurationSpec struct {
	// +optional
	UseInternalDataplaneDriver *bool `json:"useInternalDataplaneDriver,omitempty"`
	// +optional
	DataplaneDriver string `json:"dataplaneDriver,omitempty"`
	// IPv6Support enables IPv6 programming (default true).
	// +optional
	IPv6Support *bool `json:"ipv6Support,omitempty"`
	// IPForwarding is Enabled (default) or Disabled.
	// +optional
	IPForwarding string `json:"ipForwarding,omitempty"`

	// RouteRefreshInterval is how often routes are resynced (default 90s).
	// +optional
	RouteRefreshInterval *metav1.Duration `json:"routeRefreshInterval,omitempty"`
	// InterfaceRefreshInterval is how often interfaces are rescanned (default 90s).
	// +optional
	InterfaceRefreshInterval *metav1.Duration `json:"interfaceRefreshInterval,omitempty"`
	// IptablesRefreshInterval is how often iptables is resynced (default 180s).
	// +optional
	IptablesRefreshInterval *metav1.Duration `json:"iptablesRefreshInterval,omitempty"`
	// IptablesPostWriteCheckInterval is the delay before re-reading iptables after a write (default 5s).
	// +optional
	IptablesPostWriteCheckInterval *metav1.Duration `json:"iptablesPostWriteCheckInterval,omitempty"`
	// IptablesLockTimeout is how long to wait for the xtables lock (default 0: iptables-restore waits).
	// +optional
	IptablesLockTimeout *metav1.Duration `json:"iptablesLockTimeout,omitempty"`
	// IptablesLockProbeInterval is how often the xtables lock is probed (default 50ms).
	// +optional
	IptablesLockProbeInterval *metav1.Duration `json:"iptablesLockProbeInterval,omitempty"`
	// IpsetsRefreshInterval is how often IP sets are resynced (default 90s).
	// +optional
	IpsetsRefreshInterval *metav1.Duration `json:"ipsetsRefreshInterval,omitempty"`
	// MaxIpsetSize is the maxelem of IP sets (default 1048576).
	// +optional
	MaxIpsetSize *int `json:"maxIpsetSize,omitempty"`
	// IptablesBackend is Auto (default), Legacy or NFT.
	// +kubebuilder:validation:Pattern=`^(?i)(Auto|Legacy|NFT)?$`
	// +optional
	IptablesBackend *string `json:"iptablesBackend,omitempty"`
	// NFTablesMode is Auto (default), Enabled or Disabled.
	// +kubebuilder:validation:Enum=Auto;Enabled;Disabled
	// +kubebuilder:default=Auto
	// +optional
	NFTablesMode *string `json:"nftablesMode,omitempty"`
	// NetlinkTimeout bounds netlink calls (default 10s).
	// +optional
	NetlinkTimeout *metav1.Duration `json:"netlinkTimeout,omitempty"`
	// IptablesMarkMask is the packet mark bits the agent may use (default 0xffff0000).
	// +kubebuilder:validation:Format=int64
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	IptablesMarkMask *uint32 `json:"iptablesMarkMask,omitempty"`

	// InterfacePrefix is the prefix of workload interface names (default "cali").
	// +optional
	InterfacePrefix string `json:"interfacePrefix,omitempty"`
	// InterfaceExclude is a comma-separated list of interfaces (or /regex/) to ignore (default kube-ipvs0).
	// +optional
	InterfaceExclude string `json:"interfaceExclude,omitempty"`
	// ChainInsertMode is Insert (default) or Append.
	// +kubebuilder:validation:Pattern=`^(?i)(Insert|Append)?$`
	// +optional
	ChainInsertMode string `json:"chainInsertMode,omitempty"`
	// DefaultEndpointToHostAction is Drop (default), Return or Accept.
	// +kubebuilder:validation:Pattern=`^(?i)(Drop|Accept|Return)?$`
	// +optional
	DefaultEndpointToHostAction string `json:"defaultEndpointToHostAction,omitempty"`
	// IptablesFilterAllowAction is Accept (default) or Return.
	// +kubebuilder:validation:Pattern=`^(?i)(Accept|Return)?$`
	// +optional
	IptablesFilterAllowAction string `json:"iptablesFilterAllowAction,omitempty"`
	// IptablesMangleAllowAction is Accept (default) or Return.
	// +kubebuilder:validation:Pattern=`^(?i)(Accept|Return)?$`
	// +optional
	IptablesMangleAllowAction string `json:"iptablesMangleAllowAction,omitempty"`

	// +optional
	LogPrefix string `json:"logPrefix,omitempty"`
	// +optional
	LogFilePath string `json:"logFilePath,omitempty"`
	// +optional
	LogSeverityFile string `json:"logSeverityFile,omitempty"`
	// LogSeverityScreen is the console log level (default Info).
	// +optional
	LogSeverityScreen string `json:"logSeverityScreen,omitempty"`
	// +optional
	LogSeveritySys string `json:"logSeveritySys,omitempty"`

	// VXLANEnabled forces VXLAN on or off (default: on when a pool uses VXLAN).
	// +optional
	VXLANEnabled *bool `json:"vxlanEnabled,omitempty"`
	// VXLANPort is the VXLAN UDP port (default 4789).
	// +optional
	VXLANPort *int `json:"vxlanPort,omitempty"`
	// VXLANVNI is the VXLAN network identifier (default 4096).
	// +optional
	VXLANVNI *int `json:"vxlanVNI,omitempty"`
	// VXLANMTU is the IPv4 VXLAN device MTU (0 = detect).
	// +optional
	VXLANMTU *int `json:"vxlanMTU,omitempty"`
	// VXLANMTUV6 is the IPv6 VXLAN device MTU (0 = detect).
	// +optional
	VXLANMTUV6 *int `json:"vxlanMTUV6,omitempty"`
	// IPIPEnabled forces IPIP on or off (default: on when a pool uses IPIP).
	// +optional
	IPIPEnabled *bool `json:"ipipEnabled,omitempty"`
	// IPIPMTU is the IPIP device MTU (0 = detect).
	// +optional
	IPIPMTU *int `json:"ipipMTU,omitempty"`
	// MTUIfacePattern matches the host interfaces used for MTU detection.
	// +optional
	MTUIfacePattern string `json:"mtuIfacePattern,omitempty"`
	// AllowVXLANPacketsFromWorkloads lets workloads send VXLAN packets (default false).
	// +optional
	AllowVXLANPacketsFromWorkloads *bool `json:"allowVXLANPacketsFromWorkloads,omitempty"`
	// AllowIPIPPacketsFromWorkloads lets workloads send IPIP packets (default false).
	// +optional
	AllowIPIPPacketsFromWorkloads *bool `json:"allowIPIPPacketsFromWorkloads,omitempty"`

	// WireguardEnabled enables IPv4 WireGuard encryption (default false).
	// +optional
	WireguardEnabled *bool `json:"wireguardEnabled,omitempty"`
	// WireguardEnabledV6 enables IPv6 WireGuard encryption (default false).
	// +optional
	WireguardEnabledV6 *bool `json:"wireguardEnabledV6,omitempty"`
	// WireguardListeningPort is the IPv4 WireGuard port (default 51820).
	// +optional
	WireguardListeningPort *int `json:"wireguardListeningPort,omitempty"`
	// WireguardListeningPortV6 is the IPv6 WireGuard port (default 51821).
	// +optional
	WireguardListeningPortV6 *int `json:"wireguardListeningPortV6,omitempty"`
	// WireguardRoutingRulePriority is the priority of the WireGuard routing rule (default 99).
	// +optional
	WireguardRoutingRulePriority *int `json:"wireguardRoutingRulePriority,omitempty"`
	// WireguardInterfaceName is the IPv4 WireGuard device (default wireguard.cali).
	// +optional
	WireguardInterfaceName string `json:"wireguardInterfaceName,omitempty"`
	// WireguardInterfaceNameV6 is the IPv6 WireGuard device (default wg-v6.cali).
	// +optional
	WireguardInterfaceNameV6 string `json:"wireguardInterfaceNameV6,omitempty"`
	// WireguardMTU is the IPv4 WireGuard MTU (0 = detect).
	// +optional
	WireguardMTU *int `json:"wireguardMTU,omitempty"`
	// WireguardMTUV6 is the IPv6 WireGuard MTU (0 = detect).
	// +optional
	WireguardMTUV6 *int `json:"wireguardMTUV6,omitempty"`
	// WireguardHostEncryptionEnabled also encrypts host-to-host traffic (default false).
	// +optional
	WireguardHostEncryptionEnabled *bool `json:"wireguardHostEncryptionEnabled,omitempty"`
	// WireguardKeepAlive is the persistent keepalive interval (default 0 = off).
	// +optional
	WireguardKeepAlive *metav1.Duration `json:"wireguardKeepAlive,omitempty"`

	// ReportingInterval is how often the agent reports status (default 30s).
	// +optional
	ReportingInterval *metav1.Duration `json:"reportingInterval,omitempty"`
	// ReportingTTL is the time-to-live of status reports (default 90s).
	// +optional
	ReportingTTL *metav1.Duration `json:"reportingTTL,omitempty"`
	// EndpointReportingEnabled reports per-endpoint status (default false).
	// +optional
	EndpointReportingEnabled *bool `json:"endpointReportingEnabled,omitempty"`
	// EndpointReportingDelay rate-limits endpoint status reports (default 1s).
	// +optional
	EndpointReportingDelay *metav1.Duration `json:"endpointReportingDelay,omitempty"`

	// NATPortRange is the SNAT source port range.
	// +optional
	NATPortRange *Port `json:"natPortRange,omitempty"`
	// NATOutgoingAddress is the SNAT source address (default: the outgoing interface's).
	// +optional
	NATOutgoingAddress string `json:"natOutgoingAddress,omitempty"`
	// NATOutgoingExclusions is IPPoolsOnly (default) or IPPoolsAndHostIPs.
	// +kubebuilder:validation:Enum=IPPoolsOnly;IPPoolsAndHostIPs
	// +optional
	NATOutgoingExclusions *string `json:"natOutgoingExclusions,omitempty"`
	// DeviceRouteSourceAddress is the source address of routes to local workloads.
	// +optional
	DeviceRouteSourceAddress string `json:"deviceRouteSourceAddress,omitempty"`
	// DeviceRouteSourceAddressIPv6 is the IPv6 source address of routes to local workloads.
	// +optional
	DeviceRouteSourceAddressIPv6 string `json:"deviceRouteSourceAddressIPv6,omitempty"`
	// DeviceRouteProtocol is the protocol number of the agent's routes (default 3).
	// +optional
	DeviceRouteProtocol *int `json:"deviceRouteProtocol,omitempty"`
	// RemoveExternalRoutes removes routes in owned tables that the agent did not write (default true).
	// +optional
	RemoveExternalRoutes *bool `json:"removeExternalRoutes,omitempty"`
	// ProgramClusterRoutes is Enabled or Disabled; default EnabledIPIPOnly.
	// +optional
	ProgramClusterRoutes *string `json:"programClusterRoutes,omitempty"`
	// RouteSource is CalicoIPAM (default) or WorkloadIPs.
	// +kubebuilder:validation:Pattern=`^(?i)(WorkloadIPs|CalicoIPAM)?$`
	// +optional
	RouteSource string `json:"routeSource,omitempty"`
	// RouteTableRanges are the routing tables the agent may use.
	// +optional
	RouteTableRanges []RouteTableIDRange `json:"routeTableRanges,omitempty"`
	// RouteSyncDisabled turns off route programming.
	// +optional
	RouteSyncDisabled *bool `json:"routeSyncDisabled,omitempty"`
	// ExternalNodesCIDRList are non-cluster hosts allowed to send IPIP/VXLAN to nodes.
	// +optional
	ExternalNodesCIDRList *[]string `json:"externalNodesCIDRList,omitempty"`

	// FailsafeInboundHostPorts are always allowed into host endpoints; an empty list means none.
	// +optional
	FailsafeInboundHostPorts *[]ProtoPort `json:"failsafeInboundHostPorts,omitempty"`
	// FailsafeOutboundHostPorts are always allowed out of host endpoints; an empty list means none.
	// +optional
	FailsafeOutboundHostPorts *[]ProtoPort `json:"failsafeOutboundHostPorts,omitempty"`
	// KubeNodePortRanges are the Kubernetes node port ranges (default 30000:32767).
	// +optional
	KubeNodePortRanges *[]Port `json:"kubeNodePortRanges,omitempty"`
	// ServiceLoopPrevention is Drop (default), Reject or Disabled.
	// +kubebuilder:validation:Pattern=`^(?i)(Drop|Reject|Disabled)?$`
	// +optional
	ServiceLoopPrevention string `json:"serviceLoopPrevention,omitempty"`
	// WorkloadSourceSpoofing is Disabled (default) or Any.
	// +kubebuilder:validation:Pattern=`^(?i)(Disabled|Any)?$`
	// +optional
	WorkloadSourceSpoofing string `json:"workloadSourceSpoofing,omitempty"`
	// FloatingIPs is Disabled (default) or Enabled.
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	FloatingIPs *string `json:"floatingIPs,omitempty"`
	// PolicySyncPathPrefix enables the policy sync API under this directory.
	// +optional
	PolicySyncPathPrefix string `json:"policySyncPathPrefix,omitempty"`

	// HealthEnabled serves the health endpoint (default false).
	// +optional
	HealthEnabled *bool `json:"healthEnabled,omitempty"`
	// HealthHost is the health endpoint's address (default localhost).
	// +optional
	HealthHost *string `json:"healthHost,omitempty"`
	// HealthPort is the health endpoint's port (default 9099).
	// +optional
	HealthPort *int `json:"healthPort,omitempty"`
	// PrometheusMetricsEnabled serves metrics (default false).
	// +optional
	PrometheusMetricsEnabled *bool `json:"prometheusMetricsEnabled,omitempty"`
	// PrometheusMetricsHost is the metrics address (default all).
	// +optional
	PrometheusMetricsHost string `json:"prometheusMetricsHost,omitempty"`
	// PrometheusMetricsPort is the metrics port (default 9091).
	// +optional
	PrometheusMetricsPort *int `json:"prometheusMetricsPort,omitempty"`
	// UsageReportingEnabled reports anonymous usage (default true; tortie never sends it).
	// +optional
	UsageReportingEnabled *bool `json:"usageReportingEnabled,omitempty"`
	// DataplaneWatchdogTimeout is how long the dataplane loop may stall before health fails (default 90s).
	// +optional
	DataplaneWatchdogTimeout *metav1.Duration `json:"dataplaneWatchdogTimeout,omitempty"`

	// XDPEnabled enables XDP acceleration of untracked policy (default true).
	// +optional
	XDPEnabled *bool `json:"xdpEnabled,omitempty"`
	// GenericXDPEnabled allows generic (skb) XDP (default false).
	// +optional
	GenericXDPEnabled *bool `json:"genericXDPEnabled,omitempty"`
	// BPFEnabled switches to the eBPF dataplane (default false; not implemented by tortie).
	// +optional
	BPFEnabled *bool `json:"bpfEnabled,omitempty"`
	// BPFLogLevel is Off (default), Info or Debug.
	// +optional
	BPFLogLevel string `json:"bpfLogLevel,omitempty"`
	// BPFDataIfacePattern matches the host's data interfaces in eBPF mode.
	// +optional
	BPFDataIfacePattern string `json:"bpfDataIfacePattern,omitempty"`

	// WindowsManageFirewallRules is Enabled or Disabled (default).
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	WindowsManageFirewallRules *string `json:"windowsManageFirewallRules,omitempty"`

	// The settings below are Calico's too. tortie stores them so that nothing Calico wrote is lost, and its
	// agent reports the ones it does not act on (FelixIgnoredFields).

	// +kubebuilder:validation:Enum=DoNothing;Enable;Disable
	// +optional
	AWSSrcDstCheck *string `json:"awsSrcDstCheck,omitempty"`
	// +kubebuilder:validation:Enum=TC;TCX;Netkit
	// +optional
	BPFAttachType *string `json:"bpfAttachType,omitempty"`
	// +optional
	BPFCTLBLogFilter *string `json:"bpfCTLBLogFilter,omitempty"`
	// +kubebuilder:validation:Enum=TCP;Enabled;Disabled
	// +optional
	BPFConnectTimeLoadBalancing *string `json:"bpfConnectTimeLoadBalancing,omitempty"`
	// +optional
	BPFConnectTimeLoadBalancingEnabled *bool `json:"bpfConnectTimeLoadBalancingEnabled,omitempty"`
	// +kubebuilder:validation:Enum=Off;Debug
	// +optional
	BPFConntrackLogLevel *string `json:"bpfConntrackLogLevel,omitempty"`
	// +kubebuilder:validation:Enum=Auto;Userspace;BPFProgram
	// +optional
	BPFConntrackMode *string `json:"bpfConntrackMode,omitempty"`
	// +optional
	BPFConntrackTimeouts *BPFConntrackTimeouts `json:"bpfConntrackTimeouts,omitempty"`
	// +optional
	BPFDSROptoutCIDRs *[]string `json:"bpfDSROptoutCIDRs,omitempty"`
	// +optional
	BPFDisableGROForIfaces *string `json:"bpfDisableGROForIfaces,omitempty"`
	// +optional
	BPFDisableUnprivileged *bool `json:"bpfDisableUnprivileged,omitempty"`
	// +optional
	BPFEnforceRPF *string `json:"bpfEnforceRPF,omitempty"`
	// +optional
	BPFExcludeCIDRsFromNAT *[]string `json:"bpfExcludeCIDRsFromNAT,omitempty"`
	// +optional
	BPFExportBufferSizeMB *int `json:"bpfExportBufferSizeMB,omitempty"`
	// +optional
	BPFExtToServiceConnmark *int `json:"bpfExtToServiceConnmark,omitempty"`
	// +optional
	BPFExternalServiceMode *string `json:"bpfExternalServiceMode,omitempty"`
	// +optional
	BPFForceTrackPacketsFromIfaces *[]string `json:"bpfForceTrackPacketsFromIfaces,omitempty"`
	// +optional
	BPFHostConntrackBypass *bool `json:"bpfHostConntrackBypass,omitempty"`
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	BPFHostNetworkedNATWithoutCTLB *string `json:"bpfHostNetworkedNATWithoutCTLB,omitempty"`
	// +optional
	BPFIPFragTimeout *metav1.Duration `json:"bpfIPFragTimeout,omitempty"`
	// +optional
	BPFIPFragmentReassemblyEnabled *bool `json:"bpfIPFragmentReassemblyEnabled,omitempty"`
	// +kubebuilder:validation:Enum=Auto;Strict
	// +optional
	BPFJITHardening *string `json:"bpfJITHardening,omitempty"`
	// +optional
	BPFKubeProxyHealthzPort *int `json:"bpfKubeProxyHealthzPort,omitempty"`
	// +optional
	BPFKubeProxyIptablesCleanupEnabled *bool `json:"bpfKubeProxyIptablesCleanupEnabled,omitempty"`
	// +optional
	BPFKubeProxyMinSyncPeriod *metav1.Duration `json:"bpfKubeProxyMinSyncPeriod,omitempty"`
	// +optional
	BPFL3IfacePattern *string `json:"bpfL3IfacePattern,omitempty"`
	// +optional
	BPFLogFilters map[string]string `json:"bpfLogFilters,omitempty"`
	// +optional
	BPFMaglevMaxEndpointsPerService *int `json:"bpfMaglevMaxEndpointsPerService,omitempty"`
	// +optional
	BPFMaglevMaxServices *int `json:"bpfMaglevMaxServices,omitempty"`
	// +optional
	BPFMapSizeConntrack *int `json:"bpfMapSizeConntrack,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +optional
	BPFMapSizeConntrackCleanupQueue *int `json:"bpfMapSizeConntrackCleanupQueue,omitempty"`
	// +optional
	BPFMapSizeConntrackScaling *string `json:"bpfMapSizeConntrackScaling,omitempty"`
	// +optional
	BPFMapSizeIPSets *int `json:"bpfMapSizeIPSets,omitempty"`
	// +optional
	BPFMapSizeIfState *int `json:"bpfMapSizeIfState,omitempty"`
	// +optional
	BPFMapSizeNATAffinity *int `json:"bpfMapSizeNATAffinity,omitempty"`
	// +optional
	BPFMapSizeNATBackend *int `json:"bpfMapSizeNATBackend,omitempty"`
	// +optional
	BPFMapSizeNATFrontend *int `json:"bpfMapSizeNATFrontend,omitempty"`
	// +optional
	BPFMapSizePerCPUConntrack *int `json:"bpfMapSizePerCpuConntrack,omitempty"`
	// +optional
	BPFMapSizeRoute *int `json:"bpfMapSizeRoute,omitempty"`
	// +kubebuilder:validation:Enum=TunnelAddress;HostAddress
	// +optional
	BPFOverlayHostSourceIP *string `json:"bpfOverlayHostSourceIP,omitempty"`
	// +optional
	BPFPSNATPorts *intstr.IntOrString `json:"bpfPSNATPorts,omitempty"`
	// +optional
	BPFPolicyDebugEnabled *bool `json:"bpfPolicyDebugEnabled,omitempty"`
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	BPFProfiling *string `json:"bpfProfiling,omitempty"`
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	BPFRedirectToPeer *string `json:"bpfRedirectToPeer,omitempty"`
	// +optional
	CgroupV2Path *string `json:"cgroupV2Path,omitempty"`
	// +optional
	DebugDisableLogDropping *bool `json:"debugDisableLogDropping,omitempty"`
	// +optional
	DebugHost *string `json:"debugHost,omitempty"`
	// +optional
	DebugMemoryProfilePath *string `json:"debugMemoryProfilePath,omitempty"`
	// +optional
	DebugPort *int `json:"debugPort,omitempty"`
	// +optional
	DebugSimulateCalcGraphHangAfter *metav1.Duration `json:"debugSimulateCalcGraphHangAfter,omitempty"`
	// +optional
	DebugSimulateDataplaneApplyDelay *metav1.Duration `json:"debugSimulateDataplaneApplyDelay,omitempty"`
	// +optional
	DebugSimulateDataplaneHangAfter *metav1.Duration `json:"debugSimulateDataplaneHangAfter,omitempty"`
	// +optional
	DisableConntrackInvalidCheck *bool `json:"disableConntrackInvalidCheck,omitempty"`
	// +optional
	EndpointStatusPathPrefix *string `json:"endpointStatusPathPrefix,omitempty"`
	// +optional
	ExternalNodesList *[]string `json:"externalNodesList,omitempty"`
	// +optional
	FeatureDetectOverride *string `json:"featureDetectOverride,omitempty"`
	// +optional
	FeatureGates *string `json:"featureGates,omitempty"`
	// +optional
	FlowLogsCollectorDebugTrace *bool `json:"flowLogsCollectorDebugTrace,omitempty"`
	// +optional
	FlowLogsFlushInterval *metav1.Duration `json:"flowLogsFlushInterval,omitempty"`
	// +optional
	FlowLogsGoldmaneServer *string `json:"flowLogsGoldmaneServer,omitempty"`
	// +kubebuilder:validation:Enum=Disabled;Enabled
	// +optional
	FlowLogsLocalReporter *string `json:"flowLogsLocalReporter,omitempty"`
	// +kubebuilder:validation:Enum=None;Continuous
	// +optional
	FlowLogsPolicyEvaluationMode *string `json:"flowLogsPolicyEvaluationMode,omitempty"`
	// +optional
	GoGCThreshold *int `json:"goGCThreshold,omitempty"`
	// +optional
	GoMaxProcs *int `json:"goMaxProcs,omitempty"`
	// +optional
	GoMemoryLimitMB *int `json:"goMemoryLimitMB,omitempty"`
	// +optional
	HealthTimeoutOverrides *[]HealthTimeoutOverride `json:"healthTimeoutOverrides,omitempty"`
	// +optional
	IptablesFilterDenyAction *string `json:"iptablesFilterDenyAction,omitempty"`
	// +optional
	IptablesNATOutgoingInterfaceFilter *string `json:"iptablesNATOutgoingInterfaceFilter,omitempty"`
	// +optional
	IPv4ElevatedRoutePriority *int `json:"ipv4ElevatedRoutePriority,omitempty"`
	// +optional
	IPv4NormalRoutePriority *int `json:"ipv4NormalRoutePriority,omitempty"`
	// +optional
	IPv6ElevatedRoutePriority *int `json:"ipv6ElevatedRoutePriority,omitempty"`
	// +optional
	IPv6NormalRoutePriority *int `json:"ipv6NormalRoutePriority,omitempty"`
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +optional
	IstioAmbientMode *string `json:"istioAmbientMode,omitempty"`
	// +optional
	IstioDSCPMark *intstr.IntOrString `json:"istioDSCPMark,omitempty"`
	// +optional
	LiveMigrationRouteConvergenceTime *metav1.Duration `json:"liveMigrationRouteConvergenceTime,omitempty"`
	// +kubebuilder:validation:Enum=Disabled;PodsAndLoadBalancers
	// +optional
	LocalSubnetL2Reachability *string `json:"localSubnetL2Reachability,omitempty"`
	// +optional
	LocalSubnetL2ReachabilityRefreshInterval *string `json:"localSubnetL2ReachabilityRefreshInterval,omitempty"`
	// +optional
	LogActionRateLimit *string `json:"logActionRateLimit,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=9999
	// +optional
	LogActionRateLimitBurst *int `json:"logActionRateLimitBurst,omitempty"`
	// +optional
	LogDebugFilenameRegex *string `json:"logDebugFilenameRegex,omitempty"`
	// +optional
	MetadataAddr *string `json:"metadataAddr,omitempty"`
	// +optional
	MetadataPort *int `json:"metadataPort,omitempty"`
	// +optional
	NFTablesFilterAllowAction *string `json:"nftablesFilterAllowAction,omitempty"`
	// +optional
	NFTablesFilterDenyAction *string `json:"nftablesFilterDenyAction,omitempty"`
	// +optional
	NFTablesFlowTableDataIfacePattern *string `json:"nftablesFlowTableDataIfacePattern,omitempty"`
	// +kubebuilder:validation:Enum=All;Disabled
	// +kubebuilder:default=Disabled
	// +optional
	NFTablesFlowTableOffload *string `json:"nftablesFlowTableOffload,omitempty"`
	// +optional
	NFTablesMangleAllowAction *string `json:"nftablesMangleAllowAction,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	NFTablesMarkMask *int `json:"nftablesMarkMask,omitempty"`
	// +optional
	NFTablesRefreshInterval *string `json:"nftablesRefreshInterval,omitempty"`
	// +optional
	NodeSelector *string `json:"nodeSelector,omitempty"`
	// +optional
	OpenstackRegion *string `json:"openstackRegion,omitempty"`
	// +optional
	PrometheusGoMetricsEnabled *bool `json:"prometheusGoMetricsEnabled,omitempty"`
	// +optional
	PrometheusMetricsCAFile *string `json:"prometheusMetricsCAFile,omitempty"`
	// +optional
	PrometheusMetricsCertFile *string `json:"prometheusMetricsCertFile,omitempty"`
	// +kubebuilder:validation:Enum=RequireAndVerifyClientCert;RequireAnyClientCert;VerifyClientCertIfGiven;NoClientCert
	// +optional
	PrometheusMetricsClientAuth *string `json:"prometheusMetricsClientAuth,omitempty"`
	// +optional
	PrometheusMetricsKeyFile *string `json:"prometheusMetricsKeyFile,omitempty"`
	// +optional
	PrometheusProcessMetricsEnabled *bool `json:"prometheusProcessMetricsEnabled,omitempty"`
	// +optional
	PrometheusWireGuardMetricsEnabled *bool `json:"prometheusWireGuardMetricsEnabled,omitempty"`
	// +optional
	RequireMTUFile *bool `json:"requireMTUFile,omitempty"`
	// +optional
	RouteTableRange *RouteTableIDRange `json:"routeTableRange,omitempty"`
	// +optional
	SidecarAccelerationEnabled *bool `json:"sidecarAccelerationEnabled,omitempty"`
	// +optional
	UsageReportingInitialDelay *metav1.Duration `json:"usageReportingInitialDelay,omitempty"`
	// +optional
	UsageReportingInterval *metav1.Duration `json:"usageReportingInterval,omitempty"`
	// +optional
	WireguardThreadingEnabled *bool `json:"wireguardThreadingEnabled,omitempty"`
	// +optional
	XDPRefreshInterval *metav1.Duration `json:"xdpRefreshInterval,omitempty"`
}

// FelixConfigurationList is a list of FelixConfiguration.
//
// +kubebuilder:object:root=true
type FelixConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FelixConfiguration `json:"items"`
}

// BPFConntrackTimeouts are the eBPF dataplane's conntrack timeouts: durations or "Auto".
type BPFConntrackTimeouts struct {
	// +optional
	CreationGracePeriod *string `json:"creationGracePeriod,omitempty"`
	// +optional
	TCPSynSent *string `json:"tcpSynSent,omitempty"`
	// +optional
	TCPEstablished *string `json:"tcpEstablished,omitempty"`
	// +optional
	TCPFinsSeen *string `json:"tcpFinsSeen,omitempty"`
	// +optional
	TCPResetSeen *string `json:"tcpResetSeen,omitempty"`
	// +optional
	UDPTimeout *string `json:"udpTimeout,omitempty"`
	// +optional
	GenericTimeout *string `json:"genericTimeout,omitempty"`
	// +optional
	ICMPTimeout *string `json:"icmpTimeout,omitempty"`
}

// HealthTimeoutOverride changes the timeout of one named health reporter.
type HealthTimeoutOverride struct {
	Name    string `json:"name"`
	Timeout string `json:"timeout"`
}
