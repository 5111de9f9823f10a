package api

import (
	"net/netip"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default values that SetDefaults writes into objects.
const (
	DefaultIPv4BlockSize = 26
	DefaultIPv6BlockSize = 122
	DefaultNodeSelector  = "all()"
	DefaultASNumber      = 64512
	DefaultBGPListenPort = 179
	// DefaultKubeControllersMetricsPort is KubeControllersConfiguration's prometheusMetricsPort default.
	DefaultKubeControllersMetricsPort = 9094
	// DefaultLeakGracePeriod is how long IPAM garbage collection waits before freeing a leaked address.
	DefaultLeakGracePeriod = 15 * time.Minute
	// DefaultConfigName is the name of the cluster-wide BGPConfiguration, FelixConfiguration,
	// ClusterInformation, IPAMConfig and KubeControllersConfiguration.
	DefaultConfigName = "default"
)

// SetDefaults fills the unset fields of obj that Calico fills when an object is written, so that what is
// stored (and what every consumer reads) is explicit. It is idempotent, never overrides a set field,
// never renames an object and ignores kinds without defaults. Defaults per kind:
//
//   - IPPool: blockSize 26 (IPv4) or 122 (IPv6) when the CIDR parses; ipipMode and vxlanMode Never;
//     nodeSelector all(); allowedUses [Workload, Tunnel]; assignmentMode Automatic.
//   - NetworkPolicy, GlobalNetworkPolicy: tier "default"; types inferred from the rules when empty
//     ([Ingress] without egress rules, [Egress] with only egress rules, both with both). Order stays nil,
//     which sorts last. The label projectcalico.org/tier is set to the tier, as Calico sets it.
//   - StagedNetworkPolicy, StagedGlobalNetworkPolicy: types and the tier label as above (Calico leaves
//     the tier and stagedAction to the CRD schema's defaults).
//   - Tier: defaultAction Deny; the built-in tiers default, kube-admin and kube-baseline get their
//     well-known orders when none is set.
//   - BGPConfiguration "default" only: nodeToNodeMeshEnabled true, asNumber 64512, listenPort 179. Node
//     configurations ("node.<name>") are left alone because an unset field there means "inherit from
//     default", and stamping values would override the cluster-wide setting.
//   - IPAMConfig: autoAllocateBlocks true (strictAffinity false and maxBlocksPerHost 0 are the zero values).
//   - FelixConfiguration: only what calicoctl stamps: floatingIPs Disabled, bpfConnectTimeLoadBalancing
//     TCP, bpfHostNetworkedNATWithoutCTLB Enabled (both derived from the deprecated
//     bpfConnectTimeLoadBalancingEnabled when that is set). Other unset fields mean "use the default", and
//     a stamped default would shadow a cluster-wide value in a node.<name> object; see
//     FelixConfigurationDefaults for the effective values.
//   - KubeControllersConfiguration: prometheusMetricsPort 9094; leakGracePeriod 15m when the node
//     controller is configured; assignIPs AllServices when the load balancer controller is.
//
// Policy names are not rewritten. Before v3.32 Calico stored default-tier policies as "default.<name>";
// both spellings are valid names here and name different objects. Code that compares names across that
// boundary uses TrimTierPrefix. Renaming in a defaulting step would make an update or delete of an old
// object address a different one.
func SetDefaults(obj Resource) {
	switch o := obj.(type) {
	case *IPPool:
		defaultIPPool(&o.Spec)
	case *NetworkPolicy:
		if o.Spec.Tier == "" {
			o.Spec.Tier = DefaultTierName
		}
		if len(o.Spec.Types) == 0 {
			o.Spec.Types = InferPolicyTypes(len(o.Spec.Ingress) > 0, len(o.Spec.Egress) > 0)
		}
		setTierLabel(o)
	case *GlobalNetworkPolicy:
		if o.Spec.Tier == "" {
			o.Spec.Tier = DefaultTierName
		}
		if len(o.Spec.Types) == 0 {
			o.Spec.Types = InferPolicyTypes(len(o.Spec.Ingress) > 0, len(o.Spec.Egress) > 0)
		}
		setTierLabel(o)
	case *StagedNetworkPolicy:
		if len(o.Spec.Types) == 0 {
			o.Spec.Types = InferPolicyTypes(len(o.Spec.Ingress) > 0, len(o.Spec.Egress) > 0)
		}
		setTierLabel(o)
	case *StagedGlobalNetworkPolicy:
		if len(o.Spec.Types) == 0 {
			o.Spec.Types = InferPolicyTypes(len(o.Spec.Ingress) > 0, len(o.Spec.Egress) > 0)
		}
		setTierLabel(o)
	case *FelixConfiguration:
		defaultFelixConfiguration(&o.Spec)
	case *KubeControllersConfiguration:
		if o.Spec.PrometheusMetricsPort == nil {
			o.Spec.PrometheusMetricsPort = ptr(DefaultKubeControllersMetricsPort)
		}
		if n := o.Spec.Controllers.Node; n != nil && n.LeakGracePeriod == nil {
			n.LeakGracePeriod = &metav1.Duration{Duration: DefaultLeakGracePeriod}
		}
		if lb := o.Spec.Controllers.LoadBalancer; lb != nil && lb.AssignIPs == "" {
			lb.AssignIPs = "AllServices"
		}
	case *Tier:
		if o.Spec.DefaultAction == nil {
			o.Spec.DefaultAction = ptr(Deny)
		}
		if o.Spec.Order == nil {
			switch o.Name {
			case DefaultTierName:
				o.Spec.Order = ptr(float64(DefaultTierOrder))
			case KubeAdminTierName:
				o.Spec.Order = ptr(float64(KubeAdminTierOrder))
			case KubeBaselineTierName:
				o.Spec.Order = ptr(float64(KubeBaselineTierOrder))
			}
		}
	case *BGPConfiguration:
		if o.Name != DefaultConfigName {
			return
		}
		if o.Spec.NodeToNodeMeshEnabled == nil {
			o.Spec.NodeToNodeMeshEnabled = ptr(true)
		}
		if o.Spec.ASNumber == nil {
			o.Spec.ASNumber = NewASNumber(DefaultASNumber)
		}
		if o.Spec.ListenPort == 0 {
			o.Spec.ListenPort = DefaultBGPListenPort
		}
	case *IPAMConfig:
		if o.Spec.AutoAllocateBlocks == nil {
			o.Spec.AutoAllocateBlocks = ptr(true)
		}
	}
}

// defaultFelixConfiguration fills what calicoctl fills in every FelixConfiguration it writes (the
// Kubernetes datastore's CRD schema adds nftablesMode and nftablesFlowTableOffload on top).
func defaultFelixConfiguration(s *FelixConfigurationSpec) {
	if s.FloatingIPs == nil {
		s.FloatingIPs = ptr("Disabled")
	}
	if s.BPFConnectTimeLoadBalancing == nil {
		s.BPFConnectTimeLoadBalancing = ptr("TCP")
	}
	if s.BPFHostNetworkedNATWithoutCTLB == nil {
		s.BPFHostNetworkedNATWithoutCTLB = ptr("Enabled")
	}
	// The deprecated boolean, when set, decides both (as Calico does).
	if s.BPFConnectTimeLoadBalancingEnabled != nil {
		s.BPFHostNetworkedNATWithoutCTLB = ptr("Disabled")
		s.BPFConnectTimeLoadBalancing = ptr("Disabled")
		if *s.BPFConnectTimeLoadBalancingEnabled {
			s.BPFConnectTimeLoadBalancing = ptr("Enabled")
		}
	}
}

func defaultIPPool(s *IPPoolSpec) {
	if s.BlockSize == 0 {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			if p.Addr().Is4() {
				s.BlockSize = DefaultIPv4BlockSize
			} else {
				s.BlockSize = DefaultIPv6BlockSize
			}
		}
	}
	if s.IPIPMode == "" {
		s.IPIPMode = EncapNever
	}
	if s.VXLANMode == "" {
		s.VXLANMode = EncapNever
	}
	if s.NodeSelector == "" {
		s.NodeSelector = DefaultNodeSelector
	}
	if len(s.AllowedUses) == 0 {
		s.AllowedUses = []IPPoolAllowedUse{IPPoolAllowedUseWorkload, IPPoolAllowedUseTunnel}
	}
	if s.AssignmentMode == nil {
		s.AssignmentMode = ptr(AssignmentModeAutomatic)
	}
}

// InferPolicyTypes returns the policy types Calico infers when a policy gives none: Ingress unless the
// policy has only egress rules, plus Egress when it has egress rules.
func InferPolicyTypes(hasIngress, hasEgress bool) []PolicyType {
	var t []PolicyType
	if hasIngress || !hasEgress {
		t = append(t, PolicyTypeIngress)
	}
	if hasEgress {
		t = append(t, PolicyTypeEgress)
	}
	return t
}

// TrimTierPrefix returns a policy name without the "<tier>." prefix that Calico before v3.32 put on the
// names of stored policies ("default.allow-web" → "allow-web" for tier "default"). Names without the
// prefix are returned unchanged; an empty tier means "default".
func TrimTierPrefix(tier, name string) string {
	if tier == "" {
		tier = DefaultTierName
	}
	return strings.TrimPrefix(name, tier+".")
}

// FelixConfigurationDefaults returns the effective value of every FelixConfiguration field that has a
// default. Consumers layer it under the "default" object and a node's "node.<name>" object; it is never
// written to the datastore.
func FelixConfigurationDefaults() FelixConfigurationSpec {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	tcp := func(p uint16) ProtoPort { return ProtoPort{Protocol: ProtocolTCP, Port: p} }
	udp := func(p uint16) ProtoPort { return ProtoPort{Protocol: ProtocolUDP, Port: p} }
	return FelixConfigurationSpec{
		UseInternalDataplaneDriver:     ptr(true),
		IPv6Support:                    ptr(true),
		IPForwarding:                   "Enabled",
		RouteRefreshInterval:           d(90 * time.Second),
		InterfaceRefreshInterval:       d(90 * time.Second),
		IptablesRefreshInterval:        d(180 * time.Second),
		IptablesPostWriteCheckInterval: d(5 * time.Second),
		IptablesLockTimeout:            d(0),
		IptablesLockProbeInterval:      d(50 * time.Millisecond),
		IpsetsRefreshInterval:          d(90 * time.Second),
		MaxIpsetSize:                   ptr(1048576),
		IptablesBackend:                ptr("Auto"),
		NFTablesMode:                   ptr("Auto"),
		NetlinkTimeout:                 d(10 * time.Second),
		IptablesMarkMask:               ptr(uint32(0xffff0000)),
		InterfacePrefix:                "cali",
		InterfaceExclude:               "kube-ipvs0",
		ChainInsertMode:                "Insert",
		DefaultEndpointToHostAction:    "Drop",
		IptablesFilterAllowAction:      "Accept",
		IptablesMangleAllowAction:      "Accept",
		LogPrefix:                      "calico-packet",
		LogSeverityScreen:              "Info",
		LogSeverityFile:                "Info",
		LogSeveritySys:                 "Info",
		VXLANPort:                      ptr(4789),
		VXLANVNI:                       ptr(4096),
		VXLANMTU:                       ptr(0),
		VXLANMTUV6:                     ptr(0),
		IPIPMTU:                        ptr(0),
		AllowVXLANPacketsFromWorkloads: ptr(false),
		AllowIPIPPacketsFromWorkloads:  ptr(false),
		WireguardEnabled:               ptr(false),
		WireguardEnabledV6:             ptr(false),
		WireguardListeningPort:         ptr(51820),
		WireguardListeningPortV6:       ptr(51821),
		WireguardRoutingRulePriority:   ptr(99),
		WireguardInterfaceName:         "wireguard.cali",
		WireguardInterfaceNameV6:       "wg-v6.cali",
		WireguardMTU:                   ptr(0),
		WireguardMTUV6:                 ptr(0),
		WireguardHostEncryptionEnabled: ptr(false),
		WireguardKeepAlive:             d(0),
		ReportingInterval:              d(30 * time.Second),
		ReportingTTL:                   d(90 * time.Second),
		EndpointReportingEnabled:       ptr(false),
		EndpointReportingDelay:         d(time.Second),
		NATOutgoingExclusions:          ptr("IPPoolsOnly"),
		DeviceRouteProtocol:            ptr(3),
		RemoveExternalRoutes:           ptr(true),
		ProgramClusterRoutes:           ptr("EnabledIPIPOnly"),
		RouteSource:                    "CalicoIPAM",
		RouteTableRanges:               []RouteTableIDRange{{Min: 1, Max: 250}},
		RouteSyncDisabled:              ptr(false),
		ExternalNodesCIDRList:          &[]string{},
		FailsafeInboundHostPorts: &[]ProtoPort{
			tcp(22), udp(68), tcp(179), tcp(2379), tcp(2380), tcp(5473), tcp(6443), tcp(6666), tcp(6667),
		},
		FailsafeOutboundHostPorts: &[]ProtoPort{
			udp(53), udp(67), tcp(179), tcp(2379), tcp(2380), tcp(5473), tcp(6443), tcp(6666), tcp(6667),
		},
		KubeNodePortRanges:         &[]Port{PortRange(30000, 32767)},
		ServiceLoopPrevention:      "Drop",
		WorkloadSourceSpoofing:     "Disabled",
		FloatingIPs:                ptr("Disabled"),
		HealthEnabled:              ptr(false),
		HealthHost:                 ptr("localhost"),
		HealthPort:                 ptr(9099),
		PrometheusMetricsEnabled:   ptr(false),
		PrometheusMetricsPort:      ptr(9091),
		UsageReportingEnabled:      ptr(true),
		DataplaneWatchdogTimeout:   d(90 * time.Second),
		XDPEnabled:                 ptr(true),
		GenericXDPEnabled:          ptr(false),
		BPFEnabled:                 ptr(false),
		BPFLogLevel:                "Off",
		WindowsManageFirewallRules: ptr("Disabled"),
	}
}

func ptr[T any](v T) *T { return &v }
