package kube

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
	"github.com/tortie-net/tortie/common/testenv"
)

func ptr[T any](v T) *T { return &v }

// richObjects returns an object of every custom-resource kind with most fields set, so that a field
// the CRD schema would prune or default shows up as a difference.
func richObjects() []api.Resource {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "demo"}, Annotations: map[string]string{"note": "sample"}}
	}
	dur := &metav1.Duration{Duration: 90 * time.Second}
	rules := []api.Rule{
		{Action: api.Allow, Protocol: api.NewProtocol("TCP"),
			Source:      api.EntityRule{Selector: "role == 'fe'", NamespaceSelector: "all()", Nets: []string{"10.0.0.0/8"}, NotNets: []string{"10.1.0.0/16"}},
			Destination: api.EntityRule{Ports: []api.Port{api.SinglePort(80), api.PortRange(8000, 8080), api.NamedPort("http")}, NotPorts: []api.Port{api.SinglePort(81)}},
			Metadata:    &api.RuleMetadata{Annotations: map[string]string{"why": "web"}}},
		{Action: api.Deny, IPVersion: ptr(4), Protocol: api.NewProtocol("ICMP"), ICMP: &api.ICMPFields{Type: ptr(8), Code: ptr(0)}, NotICMP: &api.ICMPFields{Type: ptr(3)}},
		{Action: api.Log, NotProtocol: api.NewProtocol("17"), Source: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"api"}, Selector: "team == 'x'"}, NotSelector: "has(x)"}},
		{Action: api.Pass, Destination: api.EntityRule{Services: &api.ServiceMatch{Name: "kubernetes", Namespace: "default"}},
			HTTP: &api.HTTPMatch{Methods: []string{"GET"}, Paths: []api.HTTPPath{{Exact: "/"}, {Prefix: "/api"}}}},
	}

	pool := api.NewIPPool()
	pool.ObjectMeta = meta("pool-a")
	pool.Spec = api.IPPoolSpec{CIDR: "10.244.0.0/16", VXLANMode: api.EncapCrossSubnet, IPIPMode: api.EncapNever, NATOutgoing: true, DisableBGPExport: true,
		BlockSize: 26, NodeSelector: "all()", NamespaceSelector: "has(x)", AllowedUses: []api.IPPoolAllowedUse{api.IPPoolAllowedUseWorkload, api.IPPoolAllowedUseTunnel},
		AssignmentMode: ptr(api.AssignmentModeAutomatic)}
	pool.Status = &api.IPPoolStatus{Conditions: []metav1.Condition{{Type: "Allocatable", Status: metav1.ConditionTrue, Reason: "OK", Message: "ok", LastTransitionTime: metav1.Unix(1700000000, 0)}}}

	np := api.NewNetworkPolicy()
	np.ObjectMeta = meta("allow-web")
	np.Namespace = "roundtrip"
	np.Spec = api.NetworkPolicySpec{Tier: "default", Order: ptr(100.5), Ingress: rules, Egress: rules[:1], Selector: "app == 'web'",
		Types: []api.PolicyType{api.PolicyTypeIngress, api.PolicyTypeEgress}, ServiceAccountSelector: "all()",
		PerformanceHints: []api.PolicyPerformanceHint{api.PerfHintAssumeNeededOnEveryNode}}

	gnp := api.NewGlobalNetworkPolicy()
	gnp.ObjectMeta = meta("host-fw")
	gnp.Spec = api.GlobalNetworkPolicySpec{Tier: "security", Order: ptr(10.0), Ingress: rules[:2], Selector: "has(host)", Types: []api.PolicyType{api.PolicyTypeIngress},
		DoNotTrack: true, ApplyOnForward: true, NamespaceSelector: "all()"}

	tier := api.NewTier()
	tier.ObjectMeta = meta("security")
	tier.Spec = api.TierSpec{Order: ptr(100.0), DefaultAction: ptr(api.Pass)}

	ns := api.NewNetworkSet()
	ns.ObjectMeta = meta("ext")
	ns.Namespace = "roundtrip"
	ns.Spec.Nets = []string{"1.2.3.4", "10.0.0.0/8"}

	gns := api.NewGlobalNetworkSet()
	gns.ObjectMeta = meta("ext")
	gns.Spec.Nets = []string{"2001:db8::/32"}

	hep := api.NewHostEndpoint()
	hep.ObjectMeta = meta("n1-eth0")
	hep.Spec = api.HostEndpointSpec{Node: "n1", InterfaceName: "eth0", ExpectedIPs: []string{"10.0.0.1"}, Profiles: []string{"kns.prod"},
		Ports: []api.EndpointPort{{Name: "ssh", Protocol: api.ProtocolFromString("TCP"), Port: 22}}}

	peer := api.NewBGPPeer()
	peer.ObjectMeta = meta("tor")
	peer.Spec = api.BGPPeerSpec{NodeSelector: "rack == 'a'", PeerIP: "10.0.0.254:179", ASNumber: 4200000000, LocalASNumber: api.NewASNumber(64512),
		KeepOriginalNextHop: true, NextHopMode: ptr(api.NextHopKeep), SourceAddress: api.SourceAddressUseNodeIP, MaxRestartTime: dur,
		Password:                 &api.BGPPassword{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "bgp"}, Key: "pw"}},
		NumAllowedLocalASNumbers: ptr(int32(1)), TTLSecurity: ptr(uint8(1)), KeepaliveTime: dur, ReachableBy: "10.0.0.1", Filters: []string{"f"},
		LocalWorkloadSelector: "all()", ReversePeering: ptr(api.ReversePeeringManual)}

	bgpc := api.NewBGPConfiguration()
	bgpc.ObjectMeta = meta("default")
	bgpc.Spec = api.BGPConfigurationSpec{LogSeverityScreen: "Info", NodeToNodeMeshEnabled: ptr(true), ASNumber: api.NewASNumber(64512),
		ServiceLoadBalancerIPs: []api.ServiceLoadBalancerIPBlock{{CIDR: "192.0.2.0/24"}}, ServiceClusterIPs: []api.ServiceClusterIPBlock{{CIDR: "10.96.0.0/12"}},
		Communities: []api.Community{{Name: "c", Value: "64512:1"}}, ListenPort: 179,
		PrefixAdvertisements: []api.PrefixAdvertisement{{CIDR: "10.244.0.0/16", Communities: []string{"c"}}}, NodeMeshMaxRestartTime: dur,
		BindMode: ptr(api.BindModeNodeIP), IgnoredInterfaces: []string{"docker*"}}

	fc := api.NewFelixConfiguration()
	fc.ObjectMeta = meta("default")
	fc.Spec = api.FelixConfigurationDefaults()
	fc.Spec.NATPortRange = ptr(api.PortRange(32768, 65535))

	ci := api.NewClusterInformation()
	ci.ObjectMeta = meta("default")
	ci.Spec = api.ClusterInformationSpec{ClusterGUID: "abc", ClusterType: "k8s,kdd", CalicoVersion: "v0.1.0", DatastoreReady: ptr(true), Variant: "Calico"}

	handle := "k8s-pod-network.abc123"
	block := api.NewIPAMBlock()
	block.ObjectMeta = meta(api.CIDRToName("10.244.0.0/30"))
	block.Spec = api.IPAMBlockSpec{CIDR: "10.244.0.0/30", Affinity: ptr("host:n1"), AffinityClaimTime: ptr(metav1.Unix(1700000000, 0)),
		Allocations: []*int{ptr(0), nil, nil, nil}, Unallocated: []int{1, 2, 3},
		Attributes:     []api.AllocationAttribute{{HandleID: &handle, Secondary: map[string]string{"node": "n1", "pod": "web-0"}, ReleasedAt: ptr(metav1.Unix(1700000000, 0))}},
		SequenceNumber: 7, SequenceNumberForAllocation: map[string]uint64{"0": 6}}

	aff := api.NewBlockAffinity()
	aff.ObjectMeta = meta(api.BlockAffinityName("n1", "10.244.0.0/30"))
	aff.Spec = api.BlockAffinitySpec{State: api.BlockAffinityConfirmed, Node: "n1", Type: api.AffinityTypeHost, CIDR: "10.244.0.0/30", Deleted: "false"}

	h := api.NewIPAMHandle()
	h.ObjectMeta = meta(handle)
	h.Spec = api.IPAMHandleSpec{HandleID: handle, Block: map[string]int{"10.244.0.0/30": 1}}

	ic := api.NewIPAMConfig()
	ic.ObjectMeta = meta("default")
	ic.Spec = api.IPAMConfigSpec{StrictAffinity: true, AutoAllocateBlocks: ptr(true), MaxBlocksPerHost: 4, IPCooldownSeconds: ptr(60)}

	res := api.NewIPReservation()
	res.ObjectMeta = meta("reserved")
	res.Spec.ReservedCIDRs = []string{"10.244.0.1", "10.244.1.0/24"}

	kcc := api.NewKubeControllersConfiguration()
	kcc.ObjectMeta = meta("default")
	kcc.Spec = api.KubeControllersConfigurationSpec{LogSeverityScreen: "Info", HealthChecks: "Enabled", EtcdV3CompactionPeriod: dur, PrometheusMetricsPort: ptr(9094),
		Controllers: api.ControllersConfig{
			Node:   &api.NodeControllerConfig{ReconcilerPeriod: dur, SyncLabels: "Enabled", HostEndpoint: &api.AutoHostEndpointConfig{AutoCreate: "Disabled"}, LeakGracePeriod: dur},
			Policy: &api.ControllerConfig{ReconcilerPeriod: dur}, WorkloadEndpoint: &api.ControllerConfig{}}}
	kcc.Status = api.KubeControllersConfigurationStatus{RunningConfig: kcc.Spec.DeepCopy(), EnvironmentVars: map[string]string{"DATASTORE_TYPE": "kubernetes"}}

	return []api.Resource{pool, np, gnp, tier, ns, gns, hep, peer, bgpc, fc, ci, block, aff, h, ic, res, kcc}
}

// TestCRDRoundTrip stores an object of every custom-resource kind in a real API server with the
// installed CRDs and reads it back unchanged: the CRD schemas neither prune nor default anything the
// Go types carry.
func TestCRDRoundTrip(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cs := clientset(t, k)
	ensureNamespace(t, cs, "roundtrip", nil)
	cleanCRs(t, b, cs) // singletons such as FelixConfiguration "default" may be left by other tests
	ctx := ctxFor(t)
	kinds := map[string]bool{}
	for _, obj := range richObjects() {
		key, err := datastore.KeyOf(obj)
		if err != nil {
			t.Fatal(err)
		}
		kinds[key.Kind] = true
		t.Run(key.Kind, func(t *testing.T) {
			created, err := b.Create(ctx, obj)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			t.Cleanup(func() { _, _ = b.Delete(ctxFor(t), key, "") })
			got, err := b.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			// What Calico adds to IPAM objects (ipam_compat.go) is stored and read back too.
			want := calicoIPAMForm(obj).DeepCopyObject().(api.Resource)
			want.SetUID(created.GetUID())
			want.SetCreationTimestamp(created.GetCreationTimestamp())
			if d := syncertest.Diff([]api.Resource{got}, []api.Resource{want}); d != "" {
				t.Errorf("read back differs:\n%s", d)
			}
		})
	}
	// Every kind stored as a custom resource is covered.
	for kind, h := range b.handlers {
		if _, isCRD := h.(*crdHandler); isCRD && !kinds[kind] {
			t.Errorf("no round-trip object for %s", kind)
		}
	}
}
