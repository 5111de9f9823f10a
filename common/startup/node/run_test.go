package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/startup/autodetect"
)

func TestRunFreshClusterAndIdempotent(t *testing.T) {
	be := memory.New()
	o := testOptions(t, be, map[string]string{"CLUSTER_TYPE": "k8s,bgp"})
	res := run(t, o)

	if res.NodeName != "node-1" || res.NodeNameSource != autodetect.NameFromOS {
		t.Errorf("node name = %q from %q", res.NodeName, res.NodeNameSource)
	}
	n := getNode(t, be, "node-1")
	if diff := cmp.Diff(&api.NodeBGPSpec{IPv4Address: "10.0.0.5/24"}, n.Spec.BGP); diff != "" {
		t.Errorf("Node spec.bgp (-want +got):\n%s", diff)
	}
	if res.IPv4.Source != autodetect.SourceAutodetected || res.IPv4.Interface != "eth0" {
		t.Errorf("IPv4 = %+v", res.IPv4)
	}

	pools := listPools(t, be)
	wantPool := api.IPPoolSpec{CIDR: "192.168.0.0/16", BlockSize: 26, IPIPMode: api.EncapNever, VXLANMode: api.EncapNever,
		NATOutgoing: true, NodeSelector: "all()", AllowedUses: []api.IPPoolAllowedUse{api.IPPoolAllowedUseWorkload, api.IPPoolAllowedUseTunnel},
		AssignmentMode: new(api.AssignmentModeAutomatic)}
	if len(pools) != 1 || pools[0].Name != DefaultIPv4PoolName {
		t.Fatalf("pools = %v, want only %s", pools, DefaultIPv4PoolName)
	}
	if diff := cmp.Diff(wantPool, pools[0].Spec); diff != "" {
		t.Errorf("default IPv4 pool (-want +got):\n%s", diff)
	}

	ci := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default")
	if ci.Spec.CalicoVersion != "v0.0.0-test" || ci.Spec.ClusterType != "k8s,bgp" || ci.Spec.DatastoreReady == nil || !*ci.Spec.DatastoreReady ||
		len(ci.Spec.ClusterGUID) != 32 {
		t.Errorf("ClusterInformation = %+v", ci.Spec)
	}
	fc := getObj[*api.FelixConfiguration](t, be, api.KindFelixConfiguration, "default")
	if fc.Spec.ReportingInterval == nil || fc.Spec.ReportingInterval.Duration != 0 || fc.Spec.LogSeverityScreen != "Info" {
		t.Errorf("FelixConfiguration default = %+v", fc.Spec)
	}
	nc := getObj[*api.FelixConfiguration](t, be, api.KindFelixConfiguration, "node.node-1")
	if nc.Spec.DefaultEndpointToHostAction != "Return" {
		t.Errorf("FelixConfiguration node.node-1 = %+v", nc.Spec)
	}
	getObj[*api.BGPConfiguration](t, be, api.KindBGPConfiguration, "default")
	ic := getObj[*api.IPAMConfig](t, be, api.KindIPAMConfig, "default")
	if ic.Spec.AutoAllocateBlocks == nil || !*ic.Spec.AutoAllocateBlocks || ic.Spec.StrictAffinity {
		t.Errorf("IPAMConfig = %+v", ic.Spec)
	}
	for _, tier := range []string{"default", "kube-admin", "kube-baseline"} {
		getObj[*api.Tier](t, be, api.KindTier, tier)
	}

	if got := readFile(t, o.Files.NodenameFile); got != "node-1" {
		t.Errorf("nodename file = %q", got)
	}
	if got := readFile(t, o.Files.TortieNodenameFile); got != "node-1" {
		t.Errorf("tortie nodename file = %q", got)
	}
	if got := readFile(t, o.Files.MTUFile); got != "1500" {
		t.Errorf("MTU file = %q, want 1500 (no encapsulation)", got)
	}
	if !res.Changed() {
		t.Error("first run reports no changes")
	}

	before := revisions(t, be)
	o.Rand = seeded(2) // a different GUID/ULA/MAC would show up as a change
	res2 := run(t, o)
	if res2.Changed() {
		t.Errorf("second run changed things: %q", res2.Changes)
	}
	if diff := cmp.Diff(before, revisions(t, be)); diff != "" {
		t.Errorf("second run wrote objects (-before +after):\n%s", diff)
	}
	if res2.NodeNameSource != autodetect.NameFromFile+": "+o.Files.TortieNodenameFile {
		t.Errorf("second run took the name from %q, want the stored file", res2.NodeNameSource)
	}
}

func TestRunNodeKeepsOtherFields(t *testing.T) {
	be := memory.New()
	n := api.NewNode()
	n.Name = "node-1"
	n.Labels = map[string]string{"zone": "a"}
	n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: "10.0.0.5/24", RouteReflectorClusterID: "224.0.0.1"}
	n.Spec.Wireguard = &api.NodeWireguardSpec{InterfaceIPv4Address: "192.168.5.1"}
	n.Status.WireguardPublicKey = ""
	if _, err := be.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t, be, map[string]string{"AS": "64513", "CALICO_K8S_NODE_REF": "k8s-node-1", "NO_DEFAULT_POOLS": "true"})
	res := run(t, o)
	got := getNode(t, be, "node-1")
	want := api.NodeSpec{
		BGP:      &api.NodeBGPSpec{IPv4Address: "10.0.0.5/24", RouteReflectorClusterID: "224.0.0.1", ASNumber: api.NewASNumber(64513)},
		OrchRefs: []api.OrchRef{{NodeName: "k8s-node-1", Orchestrator: "k8s"}},
	}
	// The WireGuard address is released: the node publishes no WireGuard key.
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("Node spec (-want +got):\n%s", diff)
	}
	if got.Labels["zone"] != "a" {
		t.Errorf("labels = %v", got.Labels)
	}
	if res.ASNumber == nil || *res.ASNumber != 64513 || res.K8sNodeName != "k8s-node-1" {
		t.Errorf("result AS %v, k8s node %q", res.ASNumber, res.K8sNodeName)
	}
	if res.IPv4.Source != autodetect.SourceExisting {
		t.Errorf("IPv4 source = %s, want existing (IP unset, Node has one)", res.IPv4.Source)
	}
}

func TestRunEnvErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"bad node name", map[string]string{"NODENAME": "Node_1"}, []string{`node name "Node_1" (from env: NODENAME)`, "set NODENAME"}},
		{"bad AS", map[string]string{"AS": "big"}, []string{"AS=\"big\"", "BGPConfiguration"}},
		{"bad IP", map[string]string{"IP": "10.0.0.300"}, []string{"IP=\"10.0.0.300\""}},
		{"bad method", map[string]string{"IP_AUTODETECTION_METHOD": "magic"}, []string{"IP_AUTODETECTION_METHOD=\"magic\""}},
		{"no address", map[string]string{"IP": "none"}, []string{"no IPv4 or IPv6 address", "CALICO_NETWORKING_BACKEND=none"}},
		{"bad DISABLE_NODE_IP_CHECK", map[string]string{"DISABLE_NODE_IP_CHECK": "maybe"}, []string{"DISABLE_NODE_IP_CHECK=\"maybe\""}},
		{"bad NO_DEFAULT_POOLS", map[string]string{"NO_DEFAULT_POOLS": "sometimes"}, []string{"NO_DEFAULT_POOLS=\"sometimes\""}},
		{"NO_DEFAULT_POOLS with CIDR", map[string]string{"NO_DEFAULT_POOLS": "true", "CALICO_IPV4POOL_CIDR": "10.1.0.0/16"},
			[]string{"NO_DEFAULT_POOLS=true conflicts with CALICO_IPV4POOL_CIDR=10.1.0.0/16"}},
		{"bad FELIX_IPV6SUPPORT", map[string]string{"FELIX_IPV6SUPPORT": "perhaps"}, []string{"FELIX_IPV6SUPPORT=\"perhaps\""}},
		{"bad FELIX_VXLANMTU", map[string]string{"FELIX_VXLANMTU": "big"}, []string{"FELIX_VXLANMTU=\"big\""}},
		{"bad tortie alias", map[string]string{"TORTIE_IPV4POOL_IPIP": "sometimes"}, []string{"TORTIE_IPV4POOL_IPIP=\"sometimes\"", "Always, CrossSubnet or Never"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), testOptions(t, memory.New(), tt.env))
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRunPolicyOnly(t *testing.T) {
	be := memory.New()
	res := run(t, testOptions(t, be, map[string]string{"CALICO_NETWORKING_BACKEND": "none", "IP": "none", "AS": "65000"}))
	n := getNode(t, be, "node-1")
	if n.Spec.BGP != nil {
		t.Errorf("policy-only node got BGP spec %+v", n.Spec.BGP)
	}
	if res.IPv4.Source != "" || res.ASNumber != nil {
		t.Errorf("result = %+v", res)
	}
}

func TestAddressConflict(t *testing.T) {
	other := func(t *testing.T, be datastore.Backend) {
		n := api.NewNode()
		n.Name = "node-2"
		n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: "10.0.0.5/16"}
		if _, err := be.Create(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("fatal", func(t *testing.T) {
		be := memory.New()
		other(t, be)
		_, err := Run(t.Context(), testOptions(t, be, nil))
		if err == nil || !strings.Contains(err.Error(), `IPv4 address 10.0.0.5 is already used by node "node-2"`) ||
			!strings.Contains(err.Error(), "DISABLE_NODE_IP_CHECK=true") {
			t.Fatalf("Run = %v, want the conflict", err)
		}
		if _, err := be.Get(t.Context(), datastore.Key{Kind: api.KindNode, Name: "node-1"}); !errors.Is(err, datastore.ErrNotFound) {
			t.Errorf("node-1 was registered despite the conflict: %v", err)
		}
	})
	t.Run("disabled check", func(t *testing.T) {
		be := memory.New()
		other(t, be)
		run(t, testOptions(t, be, map[string]string{"DISABLE_NODE_IP_CHECK": "true"}))
		if got := getNode(t, be, "node-1").Spec.BGP.IPv4Address; got != "10.0.0.5/24" {
			t.Errorf("node-1 address = %q", got)
		}
	})
	t.Run("autodetect clears the old address", func(t *testing.T) {
		be := memory.New()
		o := testOptions(t, be, map[string]string{"IP": "autodetect"})
		o.Interfaces = hostIfaces("10.0.0.9/24")
		run(t, o)
		other(t, be) // node-2 now has 10.0.0.5, and this host moves to 10.0.0.5
		o.Interfaces = hostIfaces("10.0.0.5/24")
		if _, err := Run(t.Context(), o); err == nil {
			t.Fatal("Run succeeded despite the conflict")
		}
		if bgp := getNode(t, be, "node-1").Spec.BGP; bgp != nil && bgp.IPv4Address != "" {
			t.Errorf("node-1 still holds %q; Calico clears an autodetected address after a conflict", bgp.IPv4Address)
		}
	})
	t.Run("unchanged address is not rechecked", func(t *testing.T) {
		be := memory.New()
		o := testOptions(t, be, nil)
		run(t, o)
		other(t, be) // a conflict appears later (another node misconfigured)
		run(t, o)    // Calico checks only when this node's address changes
	})
}

func TestCASRetryKeepsConcurrentWrites(t *testing.T) {
	mem := memory.New()
	be := &flakyBackend{Backend: mem, failures: 3}
	o := testOptions(t, be, map[string]string{"NO_DEFAULT_POOLS": "true"})
	run(t, o) // creates the Node
	be.failures, be.bumped = 3, 0
	o.Env = envOf(map[string]string{"NO_DEFAULT_POOLS": "true", "AS": "65001"})
	run(t, o)
	n := getNode(t, mem, "node-1")
	if n.Labels["concurrent"] != "writer" || n.Spec.BGP.ASNumber == nil || *n.Spec.BGP.ASNumber != 65001 {
		t.Errorf("after conflicts: labels %v, bgp %+v; want both writers' changes", n.Labels, n.Spec.BGP)
	}
	if be.bumped != 3 {
		t.Errorf("%d conflicts injected, want 3", be.bumped)
	}
}

func TestConcurrentNodesStartTogether(t *testing.T) {
	be := memory.New()
	const nodes = 6
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			o := testOptions(t, be, map[string]string{"NODENAME": fmt.Sprintf("node-%d", i), "CALICO_IPV4POOL_VXLAN": "Always"})
			o.Interfaces = hostIfaces(fmt.Sprintf("10.0.0.%d/24", 10+i))
			o.Rand = seeded(byte(i))
			_, errs[i] = Run(t.Context(), o)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if pools := listPools(t, be); len(pools) != 1 {
		t.Errorf("%d pools, want 1", len(pools))
	}
	seen := map[string]string{}
	for i := range nodes {
		n := getNode(t, be, fmt.Sprintf("node-%d", i))
		a := n.Spec.IPv4VXLANTunnelAddr
		if a == "" || n.Spec.VXLANTunnelMACAddr == "" {
			t.Errorf("node-%d: VXLAN address %q MAC %q", i, a, n.Spec.VXLANTunnelMACAddr)
		}
		if prev, dup := seen[a]; dup {
			t.Errorf("node-%d and %s share tunnel address %s", i, prev, a)
		}
		seen[a] = n.Name
	}
}

func TestKubernetesDatastoreOnMemory(t *testing.T) {
	t.Run("waits for the Node", func(t *testing.T) {
		be := kddBackend{memory.New()}
		o := testOptions(t, be, map[string]string{"CALICO_IPV4POOL_IPIP": "Always"})
		o.DatastoreType = DatastoreKubernetes
		o.NodeWaitInterval = 10 * time.Millisecond
		logger, waiting := newSignalLogger(t, "waiting for the Kubernetes Node to be registered")
		o.Logger = logger
		go func() {
			select {
			case <-waiting:
			case <-t.Context().Done():
				return
			}
			_ = be.addK8sNode(context.Background(), "node-1", map[string]string{"kubernetes.io/os": "linux"})
		}()
		res := run(t, o)
		n := getNode(t, be, "node-1")
		if n.Spec.BGP == nil || n.Spec.BGP.IPv4Address != "10.0.0.5/24" || n.Spec.BGP.IPv4IPIPTunnelAddr == "" {
			t.Errorf("Node spec.bgp = %+v", n.Spec.BGP)
		}
		if _, err := be.Get(t.Context(), datastore.Key{Kind: api.KindFelixConfiguration, Name: "node.node-1"}); !errors.Is(err, datastore.ErrNotFound) {
			t.Errorf("per-node FelixConfiguration written in the Kubernetes datastore: %v", err)
		}
		ci := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default")
		if ci.Spec.ClusterType != "kdd" {
			t.Errorf("clusterType = %q, want kdd", ci.Spec.ClusterType)
		}
		if res.DatastoreType != DatastoreKubernetes {
			t.Errorf("datastore type %q", res.DatastoreType)
		}
		before := revisions(t, be)
		if res := run(t, o); res.Changed() {
			t.Errorf("second run changed %q", res.Changes)
		}
		if diff := cmp.Diff(before, revisions(t, be)); diff != "" {
			t.Errorf("second run wrote (-before +after):\n%s", diff)
		}
	})
	t.Run("times out", func(t *testing.T) {
		o := testOptions(t, kddBackend{memory.New()}, nil)
		o.DatastoreType = DatastoreKubernetes
		o.NodeWaitTimeout, o.NodeWaitInterval = 100*time.Millisecond, 10*time.Millisecond
		_, err := Run(t.Context(), o)
		if err == nil || !strings.Contains(err.Error(), `the Kubernetes Node "node-1" does not exist after waiting 100ms`) {
			t.Fatalf("Run = %v", err)
		}
		if _, err := os.Stat(o.Files.NodenameFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("nodename file written although startup failed: %v", err)
		}
	})
}

func TestTunnelAddresses(t *testing.T) {
	be := memory.New()
	env := map[string]string{"NO_DEFAULT_POOLS": "true"}
	o := testOptions(t, be, env)
	ic := ipam.New(be)
	handleIPs := func(handle string) []netip.Addr {
		ips, err := ic.IPsByHandle(t.Context(), handle)
		if err != nil && !errors.Is(err, ipam.ErrHandleNotFound) {
			t.Fatal(err)
		}
		return ips
	}
	tunnel := func(res *Result, typ string) TunnelResult {
		for _, tr := range res.Tunnels {
			if tr.Type == typ {
				return tr
			}
		}
		t.Fatalf("no tunnel result of type %s", typ)
		return TunnelResult{}
	}

	// 1. An IPIP pool: an IPIP address is allocated with the right handle and attributes.
	createPool(t, be, "ipip", "10.10.0.0/16", func(s *api.IPPoolSpec) { s.IPIPMode = api.EncapAlways })
	res := run(t, o)
	ipipAddr := getNode(t, be, "node-1").Spec.BGP.IPv4IPIPTunnelAddr
	if tr := tunnel(res, ipam.AttributeTypeIPIP); tr.Action != TunnelAssigned || tr.Address != ipipAddr || tr.Handle != "ipip-tunnel-addr-node-1" {
		t.Errorf("IPIP result %+v, node address %q", tr, ipipAddr)
	}
	alloc, err := ic.GetAssignmentAttributes(t.Context(), netip.MustParseAddr(ipipAddr))
	if err != nil {
		t.Fatal(err)
	}
	if alloc.Handle != "ipip-tunnel-addr-node-1" || alloc.Attrs[ipam.AttributeType] != "ipipTunnelAddress" || alloc.Attrs[ipam.AttributeNode] != "node-1" {
		t.Errorf("allocation = %+v", alloc)
	}
	if !netip.MustParsePrefix("10.10.0.0/16").Contains(netip.MustParseAddr(ipipAddr)) {
		t.Errorf("IPIP address %s outside the pool", ipipAddr)
	}
	if got := readFile(t, o.Files.MTUFile); got != "1480" {
		t.Errorf("MTU with IPIP = %s, want 1480", got)
	}

	// 2. Running again keeps it and writes nothing.
	res = run(t, o)
	if tr := tunnel(res, ipam.AttributeTypeIPIP); tr.Action != TunnelKept || tr.Address != ipipAddr || res.Changed() {
		t.Errorf("second run: IPIP %+v, changes %q", tr, res.Changes)
	}

	// 3. Switch the pool to VXLAN: the IPIP address is released and cleared, a VXLAN address and MAC appear.
	updatePool(t, be, "ipip", func(s *api.IPPoolSpec) { s.IPIPMode, s.VXLANMode = api.EncapNever, api.EncapCrossSubnet })
	res = run(t, o)
	n := getNode(t, be, "node-1")
	if n.Spec.BGP.IPv4IPIPTunnelAddr != "" || len(handleIPs("ipip-tunnel-addr-node-1")) != 0 {
		t.Errorf("IPIP address not released: node %q, IPAM %v", n.Spec.BGP.IPv4IPIPTunnelAddr, handleIPs("ipip-tunnel-addr-node-1"))
	}
	if tr := tunnel(res, ipam.AttributeTypeIPIP); tr.Action != TunnelReleased {
		t.Errorf("IPIP action %s, want released", tr.Action)
	}
	vx := n.Spec.IPv4VXLANTunnelAddr
	mac := n.Spec.VXLANTunnelMACAddr
	if vx == "" || !validMAC(mac) {
		t.Fatalf("VXLAN address %q MAC %q", vx, mac)
	}
	if m := mustMAC(t, mac); m[0]&0x02 == 0 || m[0]&0x01 != 0 {
		t.Errorf("MAC %s is not locally administered unicast", mac)
	}
	if got := handleIPs("vxlan-tunnel-addr-node-1"); !slices.Equal(got, []netip.Addr{netip.MustParseAddr(vx)}) {
		t.Errorf("VXLAN handle holds %v, want %s", got, vx)
	}
	if got := readFile(t, o.Files.MTUFile); got != "1450" {
		t.Errorf("MTU with VXLAN = %s, want 1450", got)
	}

	// 4. Replace the pool: the address moves to the new pool; the MAC stays.
	updatePool(t, be, "ipip", func(s *api.IPPoolSpec) { s.Disabled = true })
	createPool(t, be, "vxlan2", "10.20.0.0/16", func(s *api.IPPoolSpec) { s.VXLANMode = api.EncapAlways })
	run(t, o)
	n = getNode(t, be, "node-1")
	if !netip.MustParsePrefix("10.20.0.0/16").Contains(netip.MustParseAddr(n.Spec.IPv4VXLANTunnelAddr)) {
		t.Errorf("VXLAN address %s not in the new pool", n.Spec.IPv4VXLANTunnelAddr)
	}
	if n.Spec.VXLANTunnelMACAddr != mac {
		t.Errorf("VXLAN MAC changed from %s to %s", mac, n.Spec.VXLANTunnelMACAddr)
	}
	if got := handleIPs("vxlan-tunnel-addr-node-1"); len(got) != 1 || got[0].String() != n.Spec.IPv4VXLANTunnelAddr {
		t.Errorf("VXLAN handle holds %v, want only %s (the old address must be released)", got, n.Spec.IPv4VXLANTunnelAddr)
	}
	if res := run(t, o); res.Changed() {
		t.Errorf("run after the move changed %q", res.Changes)
	}

	// 5. A nodeSelector that excludes this node: the address is released; the MAC is kept.
	updatePool(t, be, "vxlan2", func(s *api.IPPoolSpec) { s.NodeSelector = "role == 'edge'" })
	run(t, o)
	n = getNode(t, be, "node-1")
	if n.Spec.IPv4VXLANTunnelAddr != "" || len(handleIPs("vxlan-tunnel-addr-node-1")) != 0 {
		t.Errorf("VXLAN address kept for a pool that does not select the node: %q", n.Spec.IPv4VXLANTunnelAddr)
	}
	if n.Spec.VXLANTunnelMACAddr != mac {
		t.Errorf("MAC %q, want %s kept", n.Spec.VXLANTunnelMACAddr, mac)
	}
	if got := readFile(t, o.Files.MTUFile); got != "1450" {
		t.Errorf("MTU = %s: VXLAN is still in use by a pool (on other nodes), want 1450", got)
	}

	// 6. Label the node so the pool selects it again: the same MAC comes back with a new address.
	n.Labels = map[string]string{"role": "edge"}
	if _, err := be.Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	n = getNode(t, be, "node-1")
	if n.Spec.IPv4VXLANTunnelAddr == "" || n.Spec.VXLANTunnelMACAddr != mac {
		t.Errorf("VXLAN address %q MAC %q", n.Spec.IPv4VXLANTunnelAddr, n.Spec.VXLANTunnelMACAddr)
	}
}

func TestTunnelAddressOwnedBySomethingElse(t *testing.T) {
	be := memory.New()
	o := testOptions(t, be, map[string]string{"NO_DEFAULT_POOLS": "true"})
	createPool(t, be, "p", "10.10.0.0/24", func(s *api.IPPoolSpec) { s.IPIPMode = api.EncapAlways; s.BlockSize = 30 })
	ic := ipam.New(be)
	// A pod holds 10.10.0.1, and the Node (edited by hand) claims it as its IPIP address.
	if _, err := ic.AssignIP(t.Context(), ipam.AssignIPArgs{IP: netip.MustParseAddr("10.10.0.1"), HandleID: "k8s-pod-network.abc",
		Hostname: "node-1", Attrs: map[string]string{ipam.AttributeNamespace: "default", ipam.AttributePod: "web"}}); err != nil {
		t.Fatal(err)
	}
	n := api.NewNode()
	n.Name = "node-1"
	n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: "10.0.0.5/24", IPv4IPIPTunnelAddr: "10.10.0.1"}
	if _, err := be.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	res := run(t, o)
	got := getNode(t, be, "node-1").Spec.BGP.IPv4IPIPTunnelAddr
	if got == "10.10.0.1" || got == "" {
		t.Errorf("IPIP address = %q, want a new one", got)
	}
	alloc, err := ic.GetAssignmentAttributes(t.Context(), netip.MustParseAddr("10.10.0.1"))
	if err != nil || alloc.Handle != "k8s-pod-network.abc" {
		t.Errorf("the pod's address was touched: %+v, %v", alloc, err)
	}
	if len(res.Warnings) == 0 {
		t.Error("no warning about the address owned by something else")
	}
}

func TestTunnelAddressNodeLostReference(t *testing.T) {
	be := memory.New()
	o := testOptions(t, be, map[string]string{"CALICO_IPV4POOL_IPIP": "Always", "CALICO_IPV4POOL_CIDR": "10.30.0.0/16"})
	run(t, o)
	n := getNode(t, be, "node-1")
	old := n.Spec.BGP.IPv4IPIPTunnelAddr
	n.Spec.BGP.IPv4IPIPTunnelAddr = "" // hand-edited away; the allocation stays under the handle
	if _, err := be.Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	got, err := ipam.New(be).IPsByHandle(t.Context(), "ipip-tunnel-addr-node-1")
	if err != nil || len(got) != 1 {
		t.Fatalf("handle holds %v, %v; want exactly one address (the old %s released)", got, err, old)
	}
	if now := getNode(t, be, "node-1").Spec.BGP.IPv4IPIPTunnelAddr; now != got[0].String() {
		t.Errorf("node address %s, handle %s", now, got[0])
	}
}

func TestWireguardTunnelAddress(t *testing.T) {
	be := memory.New()
	o := testOptions(t, be, map[string]string{"CALICO_IPV4POOL_CIDR": "10.40.0.0/16"})
	res := run(t, o)
	for _, tr := range res.Tunnels {
		if tr.Action != TunnelNone {
			t.Errorf("tunnel %s: %s, want none", tr.Type, tr.Action)
		}
	}
	n := getNode(t, be, "node-1")
	n.Status.WireguardPublicKey = "key"
	if _, err := be.Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	if wg := getNode(t, be, "node-1").Spec.Wireguard; wg == nil || wg.InterfaceIPv4Address == "" {
		t.Errorf("no WireGuard address once the node has a key: %+v", wg)
	}
	o.Env = envOf(map[string]string{"CALICO_IPV4POOL_CIDR": "10.40.0.0/16", "FELIX_WIREGUARDHOSTENCRYPTIONENABLED": "true"})
	run(t, o)
	if wg := getNode(t, be, "node-1").Spec.Wireguard; wg != nil {
		t.Errorf("WireGuard address kept in host-encryption mode: %+v", wg)
	}
}

func TestMTU(t *testing.T) {
	for _, tt := range []struct {
		name  string
		env   map[string]string
		pools func(t *testing.T, be datastore.Backend)
		felix *api.FelixConfigurationSpec
		want  string
	}{
		{"no encapsulation", nil, nil, nil, "1500"},
		{"IPIP pool", map[string]string{"CALICO_IPV4POOL_IPIP": "CrossSubnet"}, nil, nil, "1480"},
		{"VXLAN pool", map[string]string{"CALICO_IPV4POOL_VXLAN": "Always"}, nil, nil, "1450"},
		{"VXLAN MTU from env", map[string]string{"CALICO_IPV4POOL_VXLAN": "Always", "FELIX_VXLANMTU": "1400"}, nil, nil, "1400"},
		{"VXLAN MTU tortie alias", map[string]string{"CALICO_IPV4POOL_VXLAN": "Always", "FELIX_VXLANMTU": "1400", "TORTIE_VXLANMTU": "1300"}, nil, nil, "1300"},
		{"VXLAN MTU from FelixConfiguration", map[string]string{"CALICO_IPV4POOL_VXLAN": "Always"}, nil,
			&api.FelixConfigurationSpec{VXLANMTU: new(1410)}, "1410"},
		{"IPIP forced off", map[string]string{"CALICO_IPV4POOL_IPIP": "Always", "FELIX_IPINIPENABLED": "false"}, nil, nil, "1500"},
		{"WireGuard", map[string]string{"FELIX_WIREGUARDENABLED": "true"}, nil, nil, "1440"},
		{"pool on other nodes only", map[string]string{"NO_DEFAULT_POOLS": "true"}, func(t *testing.T, be datastore.Backend) {
			createPool(t, be, "edge", "10.50.0.0/16", func(s *api.IPPoolSpec) { s.VXLANMode = api.EncapAlways; s.NodeSelector = "role == 'edge'" })
		}, nil, "1450"},
		{"no interface matches the pattern", map[string]string{"FELIX_MTUIFACEPATTERN": "^nomatch$"}, nil, nil, "1460"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := memory.New()
			if tt.pools != nil {
				tt.pools(t, be)
			}
			if tt.felix != nil {
				fc := api.NewFelixConfiguration()
				fc.Name = "default"
				fc.Spec = *tt.felix
				if _, err := be.Create(t.Context(), fc); err != nil {
					t.Fatal(err)
				}
			}
			o := testOptions(t, be, tt.env)
			res := run(t, o)
			if got := readFile(t, o.Files.MTUFile); got != tt.want {
				t.Errorf("MTU file = %s, want %s (result %+v, encap %+v)", got, tt.want, res.MTU, res.Encap)
			}
		})
	}
}

func TestKubernetesInternalIPFromDatastore(t *testing.T) {
	be := kddBackend{memory.New()}
	n := api.NewNode()
	n.Name = "node-1"
	n.Spec.Addresses = []api.NodeAddress{{Address: "10.0.0.5", Type: "InternalIP"}}
	if _, err := be.Backend.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t, be, map[string]string{"IP": "autodetect", "IP_AUTODETECTION_METHOD": "kubernetes-internal-ip"})
	o.DatastoreType = DatastoreKubernetes
	o.Interfaces = autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{
		iface("eth1", 1500, "172.16.0.2/24"), iface("eth0", 1500, "10.0.0.5/24"),
	}}
	res := run(t, o)
	if res.IPv4.Prefix.String() != "10.0.0.5/24" {
		t.Errorf("IPv4 = %+v", res.IPv4)
	}
}

func TestNodenameFileOverrides(t *testing.T) {
	be := memory.New()
	dir := t.TempDir()
	env := map[string]string{
		"CALICO_NODENAME_FILE": filepath.Join(dir, "calico-name"),
		"TORTIE_NODENAME_FILE": filepath.Join(dir, "tortie-name"),
		"NODENAME":             "named-by-env",
		"NO_DEFAULT_POOLS":     "true",
	}
	o := testOptions(t, be, env)
	o.Files.NodenameFile, o.Files.TortieNodenameFile = "", "" // from the environment
	res := run(t, o)
	for _, p := range []string{env["CALICO_NODENAME_FILE"], env["TORTIE_NODENAME_FILE"]} {
		if got := readFile(t, p); got != "named-by-env" {
			t.Errorf("%s = %q", p, got)
		}
	}
	if res.NodeNameSource != "env: NODENAME" {
		t.Errorf("source %q", res.NodeNameSource)
	}
}

func TestOptionsValidation(t *testing.T) {
	if _, err := Run(t.Context(), Options{}); err == nil {
		t.Error("Run without a backend succeeded")
	}
	o := testOptions(t, memory.New(), nil)
	o.DatastoreType = "zookeeper"
	if _, err := Run(t.Context(), o); err == nil || !strings.Contains(err.Error(), "zookeeper") {
		t.Errorf("Run with a bad datastore type = %v", err)
	}
}

func mustMAC(t *testing.T, s string) []byte {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWindowsNode* (Windows nodes' VXLAN tunnel endpoint) are in windows_test.go.

func TestDefaultIPv6Support(t *testing.T) {
	o, err := Options{Backend: memory.New(), GOOS: "windows"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.IPv6Supported() {
		t.Error("IPv6 reported supported on Windows; Calico never creates the default IPv6 pool there")
	}
	o, _ = Options{Backend: memory.New(), GOOS: "linux"}.withDefaults()
	_, statErr := os.Stat("/proc/sys/net/ipv6")
	if o.IPv6Supported() != (statErr == nil) {
		t.Errorf("IPv6Supported = %t, /proc/sys/net/ipv6: %v", o.IPv6Supported(), statErr)
	}
	if o.Files.NodenameFile != "/var/lib/calico/nodename" || o.Files.MTUFile != "/var/lib/calico/mtu" || o.Files.TortieNodenameFile != "/var/lib/tortie/nodename" {
		t.Errorf("default files %+v", o.Files)
	}
	if o.DatastoreType != DatastoreEtcd {
		t.Errorf("datastore type for the memory backend %q", o.DatastoreType)
	}
}
