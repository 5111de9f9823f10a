package api

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sampleObjects returns one realistic, valid object of every registered kind, with most fields set.
func sampleObjects() []Resource {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "demo"}, Annotations: map[string]string{"note": "sample"}}
	}
	dur := &metav1.Duration{Duration: 90 * time.Second}
	tcp := NewProtocol("TCP")
	rules := []Rule{
		{Action: Allow, Protocol: tcp, Source: EntityRule{Selector: "role == 'fe'", NamespaceSelector: "all()", Nets: []string{"10.0.0.0/8"}, NotNets: []string{"10.1.0.0/16"}},
			Destination: EntityRule{Ports: []Port{SinglePort(80), PortRange(8000, 8080), NamedPort("http")}, NotPorts: []Port{SinglePort(81)}},
			Metadata:    &RuleMetadata{Annotations: map[string]string{"why": "web"}}},
		{Action: Deny, IPVersion: ptr(4), Protocol: NewProtocol("ICMP"), ICMP: &ICMPFields{Type: ptr(8), Code: ptr(0)}, NotICMP: &ICMPFields{Type: ptr(3)}},
		{Action: Log, NotProtocol: NewProtocol("17"), Source: EntityRule{ServiceAccounts: &ServiceAccountMatch{Names: []string{"api"}, Selector: "team == 'x'"}, NotSelector: "has(x)"}},
		{Action: Pass, Destination: EntityRule{Services: &ServiceMatch{Name: "kubernetes", Namespace: "default"}}, HTTP: &HTTPMatch{Methods: []string{"GET"}, Paths: []HTTPPath{{Exact: "/"}, {Prefix: "/api"}}}},
	}

	pool := NewIPPool()
	pool.ObjectMeta = meta("pool-a")
	pool.Spec = IPPoolSpec{CIDR: "10.244.0.0/16", VXLANMode: EncapCrossSubnet, IPIPMode: EncapNever, NATOutgoing: true, Disabled: false, DisableBGPExport: true,
		BlockSize: 26, NodeSelector: "all()", NamespaceSelector: "has(x)", AllowedUses: []IPPoolAllowedUse{IPPoolAllowedUseWorkload, IPPoolAllowedUseTunnel},
		AssignmentMode: ptr(AssignmentModeAutomatic)}
	pool.Status = &IPPoolStatus{Conditions: []metav1.Condition{{Type: "Allocatable", Status: metav1.ConditionTrue, Reason: "OK", Message: "ok", LastTransitionTime: metav1.Unix(1700000000, 0)}}}

	np := NewNetworkPolicy()
	np.ObjectMeta = meta("allow-web")
	np.Namespace = "prod"
	np.Spec = NetworkPolicySpec{Tier: "default", Order: ptr(100.5), Ingress: rules, Egress: rules[:1], Selector: "app == 'web'",
		Types: []PolicyType{PolicyTypeIngress, PolicyTypeEgress}, ServiceAccountSelector: "all()", PerformanceHints: []PolicyPerformanceHint{PerfHintAssumeNeededOnEveryNode}}

	gnp := NewGlobalNetworkPolicy()
	gnp.ObjectMeta = meta("host-fw")
	gnp.Spec = GlobalNetworkPolicySpec{Tier: "security", Order: ptr(10.0), Ingress: rules[:2], Selector: "has(host)", Types: []PolicyType{PolicyTypeIngress},
		DoNotTrack: true, ApplyOnForward: true, ServiceAccountSelector: "", NamespaceSelector: "all()", PerformanceHints: []PolicyPerformanceHint{PerfHintAssumeNeededOnEveryNode}}

	tier := NewTier()
	tier.ObjectMeta = meta("security")
	tier.Spec = TierSpec{Order: ptr(100.0), DefaultAction: ptr(Pass)}

	ns := NewNetworkSet()
	ns.ObjectMeta = meta("ext")
	ns.Namespace = "prod"
	ns.Spec.Nets = []string{"1.2.3.4", "10.0.0.0/8"}

	gns := NewGlobalNetworkSet()
	gns.ObjectMeta = meta("ext")
	gns.Spec.Nets = []string{"2001:db8::/32"}

	hep := NewHostEndpoint()
	hep.ObjectMeta = meta("n1-eth0")
	hep.Spec = HostEndpointSpec{Node: "n1", InterfaceName: "eth0", ExpectedIPs: []string{"10.0.0.1"}, Profiles: []string{"kns.prod"},
		Ports: []EndpointPort{{Name: "ssh", Protocol: ProtocolFromString("TCP"), Port: 22}}}

	pro := NewProfile()
	pro.ObjectMeta = meta("kns.prod")
	pro.Spec = ProfileSpec{Ingress: rules[:1], Egress: []Rule{{Action: Allow}}, LabelsToApply: map[string]string{"pcns.projectcalico.org/name": "prod"}}

	peer := NewBGPPeer()
	peer.ObjectMeta = meta("tor")
	peer.Spec = BGPPeerSpec{NodeSelector: "rack == 'a'", PeerIP: "10.0.0.254:179", ASNumber: 4200000000, LocalASNumber: NewASNumber(64512),
		KeepOriginalNextHop: true, NextHopMode: ptr(NextHopKeep), SourceAddress: SourceAddressUseNodeIP, MaxRestartTime: dur,
		Password:                 &BGPPassword{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "bgp"}, Key: "pw"}},
		NumAllowedLocalASNumbers: ptr(int32(1)), TTLSecurity: ptr(uint8(1)), KeepaliveTime: dur, ReachableBy: "10.0.0.1", Filters: []string{"f"},
		LocalWorkloadSelector: "all()", ReversePeering: ptr(ReversePeeringManual)}

	bgpc := NewBGPConfiguration()
	bgpc.ObjectMeta = meta("default")
	bgpc.Spec = BGPConfigurationSpec{LogSeverityScreen: "Info", NodeToNodeMeshEnabled: ptr(true), ASNumber: NewASNumber(64512),
		ServiceLoadBalancerIPs: []ServiceLoadBalancerIPBlock{{CIDR: "192.0.2.0/24"}}, ServiceExternalIPs: []ServiceExternalIPBlock{{CIDR: "198.51.100.0/24"}},
		ServiceClusterIPs: []ServiceClusterIPBlock{{CIDR: "10.96.0.0/12"}}, Communities: []Community{{Name: "c", Value: "64512:1"}}, ListenPort: 179,
		PrefixAdvertisements: []PrefixAdvertisement{{CIDR: "10.244.0.0/16", Communities: []string{"c"}}}, NodeMeshMaxRestartTime: dur,
		BindMode: ptr(BindModeNodeIP), IgnoredInterfaces: []string{"docker*"}, LocalWorkloadPeeringIPV4: "169.254.0.1", LocalWorkloadPeeringIPV6: "fe80::1",
		ServiceLoadBalancerAggregation: ptr("Enabled"), ProgramClusterRoutes: ptr("Enabled"), IPv4NormalRoutePriority: ptr(1024), IPv6NormalRoutePriority: ptr(1024)}

	fc := NewFelixConfiguration()
	fc.ObjectMeta = meta("default")
	fc.Spec = FelixConfigurationDefaults()
	fc.Spec.NATPortRange = ptr(PortRange(32768, 65535))

	ci := NewClusterInformation()
	ci.ObjectMeta = meta("default")
	ci.Spec = ClusterInformationSpec{ClusterGUID: "abc", ClusterType: "k8s,kdd", CalicoVersion: "v0.1.0", DatastoreReady: ptr(true), Variant: "Calico"}

	node := NewNode()
	node.ObjectMeta = meta("n1")
	node.Spec = NodeSpec{BGP: &NodeBGPSpec{ASNumber: NewASNumber(64512), IPv4Address: "10.0.0.5/24", IPv6Address: "fd00::5/64", IPv4IPIPTunnelAddr: "10.244.0.1",
		RouteReflectorClusterID: "224.0.0.1"}, IPv4VXLANTunnelAddr: "10.244.0.2", VXLANTunnelMACAddr: "66:aa:bb:cc:dd:ee", IPv6VXLANTunnelAddr: "fd00:244::1",
		VXLANTunnelMACAddrV6: "66:aa:bb:cc:dd:ef", OrchRefs: []OrchRef{{NodeName: "n1", Orchestrator: "k8s"}},
		Wireguard: &NodeWireguardSpec{InterfaceIPv4Address: "10.244.0.3", InterfaceIPv6Address: "fd00:244::3"},
		Addresses: []NodeAddress{{Address: "10.0.0.5", Type: "InternalIP"}}, Interfaces: []NodeInterface{{Name: "eth0", Addresses: []string{"10.0.0.5"}}}}
	node.Status = NodeStatus{WireguardPublicKey: "k", WireguardPublicKeyV6: "k6", PodCIDRs: []string{"10.244.0.0/24"}}

	wep := NewWorkloadEndpoint()
	wep.ObjectMeta = meta(WorkloadEndpointName("n1", "k8s", "web-0", "eth0"))
	wep.Namespace = "prod"
	wep.Spec = WorkloadEndpointSpec{Orchestrator: "k8s", Workload: "", Node: "n1", ContainerID: "abc123", Pod: "web-0", Endpoint: "eth0",
		ServiceAccountName: "default", IPNetworks: []string{"10.244.0.5/32"}, IPv4Gateway: "169.254.1.1", IPv6Gateway: "fe80::1",
		IPNATs: []IPNAT{{InternalIP: "10.244.0.5", ExternalIP: "192.0.2.5"}}, Profiles: []string{"kns.prod", "ksa.prod.default"},
		InterfaceName: "cali1234567890a", MAC: "ee:ee:ee:ee:ee:ee",
		Ports:                      []WorkloadEndpointPort{{Name: "http", Protocol: ProtocolFromString("TCP"), Port: 8080, HostPort: 80, HostIP: "10.0.0.5"}},
		AllowSpoofedSourcePrefixes: []string{"192.0.2.0/24"}}

	handle := "k8s-pod-network.abc123"
	block := NewIPAMBlock()
	block.ObjectMeta = meta(CIDRToName("10.244.0.0/30"))
	block.Spec = IPAMBlockSpec{CIDR: "10.244.0.0/30", Affinity: ptr("host:n1"), AffinityClaimTime: ptr(metav1.Unix(1700000000, 0)), StrictAffinity: false,
		Allocations: []*int{ptr(0), nil, nil, nil}, Unallocated: []int{1, 2, 3},
		Attributes:     []AllocationAttribute{{HandleID: &handle, Secondary: map[string]string{"node": "n1", "pod": "web-0"}, ReleasedAt: ptr(metav1.Unix(1700000000, 0))}},
		SequenceNumber: 7, SequenceNumberForAllocation: map[string]uint64{"0": 6}, Deleted: false}

	aff := NewBlockAffinity()
	aff.ObjectMeta = meta(BlockAffinityName("n1", "10.244.0.0/30"))
	aff.Spec = BlockAffinitySpec{State: BlockAffinityConfirmed, Node: "n1", Type: AffinityTypeHost, CIDR: "10.244.0.0/30", Deleted: "false"}

	h := NewIPAMHandle()
	h.ObjectMeta = meta(handle)
	h.Spec = IPAMHandleSpec{HandleID: handle, Block: map[string]int{"10.244.0.0/30": 1}, Deleted: false}

	ic := NewIPAMConfig()
	ic.ObjectMeta = meta("default")
	ic.Spec = IPAMConfigSpec{StrictAffinity: true, AutoAllocateBlocks: ptr(true), MaxBlocksPerHost: 4, IPCooldownSeconds: ptr(60), KubeVirtVMAddressPersistence: ptr("Enabled")}

	res := NewIPReservation()
	res.ObjectMeta = meta("reserved")
	res.Spec.ReservedCIDRs = []string{"10.244.0.1/32", "10.244.1.0/24"}

	kcc := NewKubeControllersConfiguration()
	kcc.ObjectMeta = meta("default")
	kcc.Spec = KubeControllersConfigurationSpec{LogSeverityScreen: "Info", HealthChecks: "Enabled", EtcdV3CompactionPeriod: dur, PrometheusMetricsPort: ptr(9094),
		DebugProfilePort: ptr(int32(0)), Controllers: ControllersConfig{
			Node:   &NodeControllerConfig{ReconcilerPeriod: dur, SyncLabels: "Enabled", HostEndpoint: &AutoHostEndpointConfig{AutoCreate: "Disabled"}, LeakGracePeriod: dur},
			Policy: &ControllerConfig{ReconcilerPeriod: dur}, WorkloadEndpoint: &ControllerConfig{}, ServiceAccount: &ControllerConfig{}, Namespace: &ControllerConfig{},
			LoadBalancer: &LoadBalancerControllerConfig{AssignIPs: "AllServices"}}}
	kcc.Status = KubeControllersConfigurationStatus{RunningConfig: kcc.Spec.DeepCopy(), EnvironmentVars: map[string]string{"DATASTORE_TYPE": "kubernetes"}}

	filter := NewBGPFilter()
	filter.ObjectMeta = meta("only-pods")
	filter.Spec = BGPFilterSpec{ExportV4: []BGPFilterRule{{Action: "Accept", CIDR: "10.244.0.0/16", MatchOperator: "In",
		PrefixLength: &BGPFilterPrefixLength{Min: ptr(int32(16)), Max: ptr(int32(26))}, Operations: []BGPFilterOperation{{AddCommunity: &BGPFilterAddCommunity{Value: "64512:100"}}}},
		{Action: "Reject"}}}

	cns := NewCalicoNodeStatus()
	cns.ObjectMeta = meta("n1-status")
	cns.Spec = CalicoNodeStatusSpec{Node: "n1", Classes: []NodeStatusClass{"Agent", "BGP"}, UpdatePeriodSeconds: ptr(int32(10))}
	cns.Status = CalicoNodeStatusStatus{LastUpdated: metav1.Unix(1700000000, 0), BGP: CalicoNodeBGPStatus{NumberEstablishedV4: 1,
		PeersV4: []BGPPeerStatus{{PeerIP: "10.0.0.254", Type: "GlobalPeer", State: "Established", Since: "09:00:00"}}}}

	snp := NewStagedNetworkPolicy()
	snp.ObjectMeta = meta("staged-web")
	snp.Namespace = "prod"
	snp.Spec = StagedNetworkPolicySpec{StagedAction: StagedActionSet, Tier: "default", Order: ptr(10.0), Ingress: rules[:1], Selector: "app == 'web'",
		Types: []PolicyType{PolicyTypeIngress}}

	sgnp := NewStagedGlobalNetworkPolicy()
	sgnp.ObjectMeta = meta("staged-host")
	sgnp.Spec = StagedGlobalNetworkPolicySpec{StagedAction: StagedActionDelete, Tier: "default", Selector: "has(host)", Types: []PolicyType{PolicyTypeIngress}}

	sknp := NewStagedKubernetesNetworkPolicy()
	sknp.ObjectMeta = meta("staged-knp")
	sknp.Namespace = "prod"
	sknp.Spec = StagedKubernetesNetworkPolicySpec{StagedAction: StagedActionSet, PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}

	return []Resource{pool, np, gnp, tier, ns, gns, hep, pro, peer, bgpc, fc, ci, node, wep, block, aff, h, ic, res, kcc, filter, cns, snp, sgnp, sknp}
}
