package api

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetDefaults(t *testing.T) {
	allowRule := Rule{Action: Allow}
	tests := []struct {
		name string
		in   Resource
		want Resource
	}{
		{
			name: "IPv4 pool",
			in:   &IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: IPPoolSpec{CIDR: "10.0.0.0/16"}},
			want: &IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: IPPoolSpec{
				CIDR: "10.0.0.0/16", BlockSize: 26, IPIPMode: EncapNever, VXLANMode: EncapNever, NodeSelector: "all()",
				AllowedUses:    []IPPoolAllowedUse{IPPoolAllowedUseWorkload, IPPoolAllowedUseTunnel},
				AssignmentMode: ptr(AssignmentModeAutomatic),
			}},
		},
		{
			name: "IPv6 pool",
			in:   &IPPool{Spec: IPPoolSpec{CIDR: "fd00::/48"}},
			want: &IPPool{Spec: IPPoolSpec{
				CIDR: "fd00::/48", BlockSize: 122, IPIPMode: EncapNever, VXLANMode: EncapNever, NodeSelector: "all()",
				AllowedUses:    []IPPoolAllowedUse{IPPoolAllowedUseWorkload, IPPoolAllowedUseTunnel},
				AssignmentMode: ptr(AssignmentModeAutomatic),
			}},
		},
		{
			name: "pool with everything set is unchanged",
			in: &IPPool{Spec: IPPoolSpec{CIDR: "10.0.0.0/16", BlockSize: 24, IPIPMode: EncapAlways, VXLANMode: EncapCrossSubnet,
				NodeSelector: "os == 'linux'", AllowedUses: []IPPoolAllowedUse{IPPoolAllowedUseLoadBalancer}, AssignmentMode: ptr(AssignmentModeManual)}},
			want: &IPPool{Spec: IPPoolSpec{CIDR: "10.0.0.0/16", BlockSize: 24, IPIPMode: EncapAlways, VXLANMode: EncapCrossSubnet,
				NodeSelector: "os == 'linux'", AllowedUses: []IPPoolAllowedUse{IPPoolAllowedUseLoadBalancer}, AssignmentMode: ptr(AssignmentModeManual)}},
		},
		{
			name: "pool with unparsable CIDR keeps blockSize 0",
			in:   &IPPool{Spec: IPPoolSpec{CIDR: "nope"}},
			want: &IPPool{Spec: IPPoolSpec{CIDR: "nope", IPIPMode: EncapNever, VXLANMode: EncapNever, NodeSelector: "all()",
				AllowedUses: []IPPoolAllowedUse{IPPoolAllowedUseWorkload, IPPoolAllowedUseTunnel}, AssignmentMode: ptr(AssignmentModeAutomatic)}},
		},
		{
			name: "policy without rules is ingress",
			in:   &NetworkPolicy{},
			want: &NetworkPolicy{ObjectMeta: tierLabel("default"), Spec: NetworkPolicySpec{Tier: "default", Types: []PolicyType{PolicyTypeIngress}}},
		},
		{
			name: "policy with ingress rules only",
			in:   &NetworkPolicy{Spec: NetworkPolicySpec{Ingress: []Rule{allowRule}}},
			want: &NetworkPolicy{ObjectMeta: tierLabel("default"), Spec: NetworkPolicySpec{Tier: "default", Ingress: []Rule{allowRule}, Types: []PolicyType{PolicyTypeIngress}}},
		},
		{
			name: "policy with egress rules only",
			in:   &NetworkPolicy{Spec: NetworkPolicySpec{Egress: []Rule{allowRule}}},
			want: &NetworkPolicy{ObjectMeta: tierLabel("default"), Spec: NetworkPolicySpec{Tier: "default", Egress: []Rule{allowRule}, Types: []PolicyType{PolicyTypeEgress}}},
		},
		{
			name: "global policy with both",
			in:   &GlobalNetworkPolicy{Spec: GlobalNetworkPolicySpec{Ingress: []Rule{allowRule}, Egress: []Rule{allowRule}}},
			want: &GlobalNetworkPolicy{ObjectMeta: tierLabel("default"), Spec: GlobalNetworkPolicySpec{Tier: "default", Ingress: []Rule{allowRule}, Egress: []Rule{allowRule},
				Types: []PolicyType{PolicyTypeIngress, PolicyTypeEgress}}},
		},
		{
			name: "explicit types and tier kept, order stays nil",
			in:   &GlobalNetworkPolicy{Spec: GlobalNetworkPolicySpec{Tier: "security", Types: []PolicyType{PolicyTypeEgress}}},
			want: &GlobalNetworkPolicy{ObjectMeta: tierLabel("security"), Spec: GlobalNetworkPolicySpec{Tier: "security", Types: []PolicyType{PolicyTypeEgress}}},
		},
		{
			name: "policy name with default. prefix is not renamed",
			in:   &NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default.allow"}},
			want: &NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default.allow", Labels: map[string]string{LabelTier: "default"}}, Spec: NetworkPolicySpec{Tier: "default", Types: []PolicyType{PolicyTypeIngress}}},
		},
		{
			name: "tier",
			in:   &Tier{ObjectMeta: metav1.ObjectMeta{Name: "security"}},
			want: &Tier{ObjectMeta: metav1.ObjectMeta{Name: "security"}, Spec: TierSpec{DefaultAction: ptr(Deny)}},
		},
		{
			name: "default tier gets its order",
			in:   &Tier{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			want: &Tier{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: TierSpec{Order: ptr(1e6), DefaultAction: ptr(Deny)}},
		},
		{
			name: "kube-admin tier keeps Pass",
			in:   &Tier{ObjectMeta: metav1.ObjectMeta{Name: "kube-admin"}, Spec: TierSpec{DefaultAction: ptr(Pass)}},
			want: &Tier{ObjectMeta: metav1.ObjectMeta{Name: "kube-admin"}, Spec: TierSpec{Order: ptr(1000.0), DefaultAction: ptr(Pass)}},
		},
		{
			name: "BGPConfiguration default",
			in:   &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			want: &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{
				NodeToNodeMeshEnabled: ptr(true), ASNumber: NewASNumber(64512), ListenPort: 179}},
		},
		{
			name: "BGPConfiguration default keeps explicit false and AS",
			in: &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{
				NodeToNodeMeshEnabled: ptr(false), ASNumber: NewASNumber(65000), ListenPort: 1179}},
			want: &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{
				NodeToNodeMeshEnabled: ptr(false), ASNumber: NewASNumber(65000), ListenPort: 1179}},
		},
		{
			name: "BGPConfiguration per node is not defaulted",
			in:   &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "node.n1"}},
			want: &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "node.n1"}},
		},
		{
			name: "FelixConfiguration gets what calicoctl stamps only",
			in:   &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			want: &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: FelixConfigurationSpec{
				FloatingIPs: ptr("Disabled"), BPFConnectTimeLoadBalancing: ptr("TCP"), BPFHostNetworkedNATWithoutCTLB: ptr("Enabled")}},
		},
		{
			name: "FelixConfiguration deprecated CTLB boolean decides",
			in: &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "node.n1"}, Spec: FelixConfigurationSpec{
				FloatingIPs: ptr("Enabled"), BPFConnectTimeLoadBalancingEnabled: ptr(true)}},
			want: &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "node.n1"}, Spec: FelixConfigurationSpec{
				FloatingIPs: ptr("Enabled"), BPFConnectTimeLoadBalancingEnabled: ptr(true), BPFConnectTimeLoadBalancing: ptr("Enabled"),
				BPFHostNetworkedNATWithoutCTLB: ptr("Disabled")}},
		},
		{
			name: "KubeControllersConfiguration",
			in: &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: KubeControllersConfigurationSpec{
				Controllers: ControllersConfig{Node: &NodeControllerConfig{}, LoadBalancer: &LoadBalancerControllerConfig{}}}},
			want: &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: KubeControllersConfigurationSpec{
				PrometheusMetricsPort: ptr(9094), Controllers: ControllersConfig{Node: &NodeControllerConfig{LeakGracePeriod: &metav1.Duration{Duration: 15 * time.Minute}},
					LoadBalancer: &LoadBalancerControllerConfig{AssignIPs: "AllServices"}}}},
		},
		{
			name: "staged policy gets types and tier label",
			in:   &StagedNetworkPolicy{Spec: StagedNetworkPolicySpec{Tier: "security", Egress: []Rule{allowRule}}},
			want: &StagedNetworkPolicy{ObjectMeta: tierLabel("security"), Spec: StagedNetworkPolicySpec{Tier: "security", Egress: []Rule{allowRule}, Types: []PolicyType{PolicyTypeEgress}}},
		},
		{
			name: "IPAMConfig",
			in:   &IPAMConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			want: &IPAMConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: IPAMConfigSpec{AutoAllocateBlocks: ptr(true)}},
		},
		{
			name: "IPAMConfig keeps autoAllocateBlocks false",
			in:   &IPAMConfig{Spec: IPAMConfigSpec{AutoAllocateBlocks: ptr(false), StrictAffinity: true, MaxBlocksPerHost: 4}},
			want: &IPAMConfig{Spec: IPAMConfigSpec{AutoAllocateBlocks: ptr(false), StrictAffinity: true, MaxBlocksPerHost: 4}},
		},
		{
			name: "kinds without defaults",
			in:   &HostEndpoint{Spec: HostEndpointSpec{Node: "n"}},
			want: &HostEndpoint{Spec: HostEndpointSpec{Node: "n"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			SetDefaults(tt.in)
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("SetDefaults mismatch (-want +got):\n%s", diff)
			}
			again := tt.in.DeepCopyObject().(Resource)
			SetDefaults(again)
			if diff := cmp.Diff(tt.in, again); diff != "" {
				t.Errorf("SetDefaults is not idempotent (-first +second):\n%s", diff)
			}
		})
	}
}

func TestInferPolicyTypes(t *testing.T) {
	tests := []struct {
		in, eg bool
		want   []PolicyType
	}{
		{false, false, []PolicyType{PolicyTypeIngress}},
		{true, false, []PolicyType{PolicyTypeIngress}},
		{false, true, []PolicyType{PolicyTypeEgress}},
		{true, true, []PolicyType{PolicyTypeIngress, PolicyTypeEgress}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, InferPolicyTypes(tt.in, tt.eg)); diff != "" {
			t.Errorf("InferPolicyTypes(%v, %v) mismatch:\n%s", tt.in, tt.eg, diff)
		}
	}
}

func TestTrimTierPrefix(t *testing.T) {
	tests := []struct{ tier, name, want string }{
		{"default", "default.allow", "allow"},
		{"", "default.allow", "allow"},
		{"default", "allow", "allow"},
		{"security", "security.block", "block"},
		{"security", "default.block", "default.block"},
	}
	for _, tt := range tests {
		if got := TrimTierPrefix(tt.tier, tt.name); got != tt.want {
			t.Errorf("TrimTierPrefix(%q, %q) = %q, want %q", tt.tier, tt.name, got, tt.want)
		}
	}
}

func TestFelixConfigurationDefaults(t *testing.T) {
	d := FelixConfigurationDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"vxlanPort", *d.VXLANPort, 4789},
		{"vxlanVNI", *d.VXLANVNI, 4096},
		{"interfacePrefix", d.InterfacePrefix, "cali"},
		{"iptablesRefreshInterval", d.IptablesRefreshInterval.Duration, 180 * time.Second},
		{"routeRefreshInterval", d.RouteRefreshInterval.Duration, 90 * time.Second},
		{"ipsetsRefreshInterval", d.IpsetsRefreshInterval.Duration, 90 * time.Second},
		{"healthPort", *d.HealthPort, 9099},
		{"prometheusMetricsPort", *d.PrometheusMetricsPort, 9091},
		{"iptablesMarkMask", *d.IptablesMarkMask, uint32(0xffff0000)},
		{"maxIpsetSize", *d.MaxIpsetSize, 1048576},
		{"wireguardListeningPort", *d.WireguardListeningPort, 51820},
		{"wireguardInterfaceName", d.WireguardInterfaceName, "wireguard.cali"},
		{"deviceRouteProtocol", *d.DeviceRouteProtocol, 3},
		{"defaultEndpointToHostAction", d.DefaultEndpointToHostAction, "Drop"},
		{"reportingInterval", d.ReportingInterval.Duration, 30 * time.Second},
		{"kubeNodePortRanges", (*d.KubeNodePortRanges)[0].String(), "30000:32767"},
		{"failsafeInboundHostPorts", len(*d.FailsafeInboundHostPorts), 9},
		{"failsafeInboundHostPorts[0]", (*d.FailsafeInboundHostPorts)[0], ProtoPort{Protocol: "TCP", Port: 22}},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", c.name, diff)
		}
	}
	// The defaults are themselves a valid FelixConfiguration.
	fc := NewFelixConfiguration()
	fc.Name = "default"
	fc.Spec = d
	if err := Validate(fc); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
}

func tierLabel(tier string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Labels: map[string]string{LabelTier: tier}}
}

func TestFelixIgnoredFields(t *testing.T) {
	s := FelixConfigurationSpec{
		VXLANPort: ptr(4790), LogSeverityScreen: "Debug", // implemented
		BPFEnabled: ptr(false), WireguardEnabled: ptr(false), // false asks for nothing
		BPFConnectTimeLoadBalancing: ptr("TCP"), FloatingIPs: ptr("Disabled"), // calicoctl's stamped defaults
		XDPEnabled: ptr(true), NFTablesFlowTableOffload: ptr("All"), FlowLogsFlushInterval: &metav1.Duration{Duration: time.Minute},
		BPFConntrackTimeouts: &BPFConntrackTimeouts{TCPSynSent: ptr("20s")},
	}
	want := []string{"bpfConntrackTimeouts", "flowLogsFlushInterval", "nftablesFlowTableOffload", "xdpEnabled"}
	if diff := cmp.Diff(want, FelixIgnoredFields(&s)); diff != "" {
		t.Errorf("FelixIgnoredFields mismatch (-want +got):\n%s", diff)
	}
	// Every implemented name is a field of the type.
	crd := loadCRDs(t)[KindFelixConfiguration]
	ours := schemaPaths(crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
	for name := range FelixImplementedFields {
		if _, ok := ours["spec."+name]; !ok {
			t.Errorf("FelixImplementedFields names %q, which is no FelixConfiguration field", name)
		}
	}
}
