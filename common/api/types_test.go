package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestPortJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    Port
		out     string
		wantErr string
	}{
		{in: `80`, want: SinglePort(80), out: `80`},
		{in: `"80"`, want: SinglePort(80), out: `80`},
		{in: `0`, want: SinglePort(0), out: `0`},
		{in: `65535`, want: SinglePort(65535), out: `65535`},
		{in: `"1000:2000"`, want: PortRange(1000, 2000), out: `"1000:2000"`},
		{in: `"80:80"`, want: SinglePort(80), out: `80`},
		{in: `"http"`, want: NamedPort("http"), out: `"http"`},
		{in: `"2000:1000"`, want: PortRange(2000, 1000), out: `"2000:1000"`},
		{in: `65536`, wantErr: "port 65536 is out of range 0-65535"},
		{in: `-1`, wantErr: "port -1 is out of range 0-65535"},
		{in: `"65536"`, wantErr: `port "65536" must be a number 0-65535, a range "min:max" or a port name`},
		{in: `"1:x"`, wantErr: `port range "1:x" must be "min:max" with numbers 0-65535`},
		{in: `"1:70000"`, wantErr: `port range "1:70000" must be "min:max" with numbers 0-65535`},
		{in: `1.5`, wantErr: `port must be a number 0-65535, a range "min:max" or a port name, got 1.5`},
		{in: `true`, wantErr: `port must be a number 0-65535, a range "min:max" or a port name, got true`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p Port
			err := json.Unmarshal([]byte(tt.in), &p)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, p); diff != "" {
				t.Errorf("Unmarshal(%s) mismatch (-want +got):\n%s", tt.in, diff)
			}
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.out {
				t.Errorf("Marshal = %s, want %s", b, tt.out)
			}
		})
	}
}

func TestProtocolJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    Protocol
		out     string
		ports   bool
		wantErr string
	}{
		{in: `"TCP"`, want: Protocol{Name: "TCP"}, out: `"TCP"`, ports: true},
		{in: `"udp"`, want: Protocol{Name: "udp"}, out: `"udp"`, ports: true},
		{in: `"SCTP"`, want: Protocol{Name: "SCTP"}, out: `"SCTP"`, ports: true},
		{in: `"ICMP"`, want: Protocol{Name: "ICMP"}, out: `"ICMP"`},
		{in: `6`, want: Protocol{Number: 6}, out: `6`, ports: true},
		{in: `"17"`, want: Protocol{Number: 17}, out: `17`, ports: true},
		{in: `132`, want: Protocol{Number: 132}, out: `132`, ports: true},
		{in: `1`, want: Protocol{Number: 1}, out: `1`},
		{in: `255`, want: Protocol{Number: 255}, out: `255`},
		{in: `256`, wantErr: "protocol number 256 is out of range 1-255"},
		{in: `-3`, wantErr: "protocol number -3 is out of range 1-255"},
		{in: `{}`, wantErr: "protocol must be a name or a number 1-255, got {}"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p Protocol
			err := json.Unmarshal([]byte(tt.in), &p)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, p); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			b, _ := json.Marshal(p)
			if string(b) != tt.out {
				t.Errorf("Marshal = %s, want %s", b, tt.out)
			}
			if got := p.SupportsPorts(); got != tt.ports {
				t.Errorf("SupportsPorts() = %v, want %v", got, tt.ports)
			}
		})
	}
}

func TestASNumberJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    ASNumber
		wantErr string
	}{
		{in: `64512`, want: 64512},
		{in: `"64512"`, want: 64512},
		{in: `"1.10"`, want: 65546},
		{in: `4294967295`, want: 4294967295},
		{in: `4294967296`, wantErr: `AS number must be a number 0-4294967295 or "<0-65535>.<0-65535>", got 4294967296`},
		{in: `"65536.1"`, wantErr: `AS number "65536.1" must be a number 0-4294967295 or "<0-65535>.<0-65535>"`},
		{in: `"abc"`, wantErr: `AS number "abc" must be a number 0-4294967295 or "<0-65535>.<0-65535>"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var a ASNumber
			err := json.Unmarshal([]byte(tt.in), &a)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || a != tt.want {
				t.Fatalf("Unmarshal(%s) = %d, %v; want %d", tt.in, a, err, tt.want)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	want := map[string]struct {
		plural     string
		namespaced bool
	}{
		"IPPool": {"ippools", false}, "NetworkPolicy": {"networkpolicies", true},
		"GlobalNetworkPolicy": {"globalnetworkpolicies", false}, "Tier": {"tiers", false},
		"NetworkSet": {"networksets", true}, "GlobalNetworkSet": {"globalnetworksets", false},
		"HostEndpoint": {"hostendpoints", false}, "Profile": {"profiles", false},
		"BGPPeer": {"bgppeers", false}, "BGPConfiguration": {"bgpconfigurations", false},
		"FelixConfiguration": {"felixconfigurations", false}, "ClusterInformation": {"clusterinformations", false},
		"Node": {"nodes", false}, "WorkloadEndpoint": {"workloadendpoints", true},
		"IPAMBlock": {"ipamblocks", false}, "BlockAffinity": {"blockaffinities", false},
		"IPAMHandle": {"ipamhandles", false}, "IPAMConfig": {"ipamconfigs", false},
		"IPReservation":                {"ipreservations", false},
		"KubeControllersConfiguration": {"kubecontrollersconfigurations", false},
	}
	kinds := Kinds()
	if len(kinds) != len(want) {
		t.Fatalf("Kinds() has %d kinds, want %d", len(kinds), len(want))
	}
	for _, k := range kinds {
		t.Run(k.Kind, func(t *testing.T) {
			w, ok := want[k.Kind]
			if !ok {
				t.Fatalf("unexpected kind %s", k.Kind)
			}
			if k.Plural != w.plural || k.Namespaced != w.namespaced {
				t.Errorf("plural, namespaced = %s, %v; want %s, %v", k.Plural, k.Namespaced, w.plural, w.namespaced)
			}
			obj := k.New()
			if got, want := obj.GetObjectKind().GroupVersionKind(), (schema.GroupVersionKind{Group: Group, Version: Version, Kind: k.Kind}); got != want {
				t.Errorf("New() GVK = %v, want %v", got, want)
			}
			info, err := KindOf(obj)
			if err != nil || info.Kind != k.Kind {
				t.Errorf("KindOf(New()) = %v, %v", info.Kind, err)
			}
			for _, n := range append([]string{k.Kind, k.Plural, strings.ToUpper(k.Plural)}, k.ShortNames...) {
				if got, ok := LookupKind(n); !ok || got.Kind != k.Kind {
					t.Errorf("LookupKind(%q) = %v, %v", n, got.Kind, ok)
				}
			}
			// DeepCopyObject returns an equal, distinct object.
			cp := obj.DeepCopyObject()
			if diff := cmp.Diff(obj, cp); diff != "" {
				t.Errorf("DeepCopyObject mismatch:\n%s", diff)
			}
		})
	}
	for _, short := range []string{"pool", "ippool", "np", "policy", "gnp", "gns", "netset", "hep", "wep", "bgppeer", "node", "felixconfig", "bgpconfig", "ipamconfiguration"} {
		if _, ok := LookupKind(short); !ok {
			t.Errorf("LookupKind(%q) not found", short)
		}
	}
}

func TestCIDRToName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.0/26", "10-0-0-0-26"},
		{"192.168.1.64/26", "192-168-1-64-26"},
		{"fd00::/122", "fd00---122"},
		{"FD00:0:0::40/122", "fd00--40-122"},
		{"2001:db8:1:2::/64", "2001-db8-1-2---64"},
		{"not-a-cidr", "not-a-cidr"},
	}
	for _, tt := range tests {
		if got := CIDRToName(tt.in); got != tt.want {
			t.Errorf("CIDRToName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBlockAffinityName(t *testing.T) {
	if got, want := BlockAffinityName("node-1", "10.0.0.0/26"), "node-1-10-0-0-0-26"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Calico's shortening (libcalico-go's block affinity client): host cut to 252-len(cidr name)-13,
	// then "-<cidr name>-" and 11 hex digits of sha256("<host>+<cidr name>").
	long := strings.Repeat("a", 250)
	got := BlockAffinityName(long, "10.0.0.0/26")
	if want := strings.Repeat("a", 228) + "-10-0-0-0-26-8f7e6ea6753"; got != want {
		t.Errorf("shortened name = %q, want Calico's %q", got, want)
	}
	if got == BlockAffinityName(long, "10.0.0.64/26") {
		t.Errorf("two long names collide: %q", got)
	}
	if parts := ShortenedBlockAffinityName(got); len(parts) != 1 || parts[0].Host != strings.Repeat("a", 228) || parts[0].CIDR.String() != "10.0.0.0/26" {
		t.Errorf("ShortenedBlockAffinityName(%q) = %v", got, parts)
	}
	if parts := ShortenedBlockAffinityName("node-1-10-0-0-0-26"); parts != nil {
		t.Errorf("ShortenedBlockAffinityName of a plain name = %v", parts)
	}
}

func TestSplitBlockAffinityName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"node-1-10-0-0-0-26", []string{"node-1 10.0.0.0/26"}},
		{"n-fd00---122", []string{"n fd00::/122"}},
		// Both readings are names BlockAffinityName gives; the datastore decides which exists.
		{"a-1---122", []string{"a 1::/122"}},
		{"node-fd00-1---122", []string{"node-fd00 1::/122", "node fd00:1::/122"}},
		{"10-0-0-0-26", nil},
		{"node-10-0-0-1-26", nil}, // host bits set: no block has that name
	} {
		var got []string
		for _, p := range SplitBlockAffinityName(tc.name) {
			got = append(got, p.Host+" "+p.CIDR.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("SplitBlockAffinityName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseCIDRName(t *testing.T) {
	for _, cidr := range []string{"10.0.0.0/26", "192.168.255.252/30", "fd00::/122", "fd00:1:2::40/122", "::/0", "2001:db8::/64"} {
		p, ok := ParseCIDRName(CIDRToName(cidr))
		if !ok || p.String() != cidr {
			t.Errorf("ParseCIDRName(%q) = %v, %v; want %s", CIDRToName(cidr), p, ok, cidr)
		}
	}
	for _, bad := range []string{"", "26", "10-0-0-26", "10-0-0-1-26", "x-y", "FD00---122", "fd00--0-122"} {
		if p, ok := ParseCIDRName(bad); ok {
			t.Errorf("ParseCIDRName(%q) = %v, want no CIDR", bad, p)
		}
	}
}

func TestIPAMHandleName(t *testing.T) {
	for id, want := range map[string]string{
		"k8s-pod-network.0123abcd": "k8s-pod-network.0123abcd",
		"Net.ABC":                  "net.abc", // Calico: strings.ToLower
	} {
		if got := IPAMHandleName(id); got != want {
			t.Errorf("IPAMHandleName(%q) = %q, want %q", id, got, want)
		}
		if HashedIPAMHandleName(IPAMHandleName(id)) {
			t.Errorf("HashedIPAMHandleName(%q) = true", IPAMHandleName(id))
		}
	}
	if n := IPAMHandleName("under_score"); !HashedIPAMHandleName(n) {
		t.Errorf("IPAMHandleName(under_score) = %q, want a hashed name", n)
	}
}

func TestWorkloadEndpointName(t *testing.T) {
	tests := []struct {
		node, orch, workload, endpoint, want string
	}{
		{"node1", "k8s", "web", "eth0", "node1-k8s-web-eth0"},
		{"node-1", "k8s", "web-0", "eth0", "node--1-k8s-web--0-eth0"},
		{"ip-10-0-0-1.ec2.internal", "k8s", "coredns-5d78c9869d-abcde", "eth0", "ip--10--0--0--1.ec2.internal-k8s-coredns--5d78c9869d--abcde-eth0"},
		{"win-node", "k8s", "iis", "ethernet-1", "win--node-k8s-iis-ethernet--1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := WorkloadEndpointName(tt.node, tt.orch, tt.workload, tt.endpoint)
			if got != tt.want {
				t.Fatalf("WorkloadEndpointName = %q, want %q", got, tt.want)
			}
			n, o, w, e, err := ParseWorkloadEndpointName(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tt.node, tt.orch, tt.workload, tt.endpoint}, []string{n, o, w, e}); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
	_, _, _, _, err := ParseWorkloadEndpointName("node-k8s-pod")
	if want := `workload endpoint name "node-k8s-pod" does not have the form <node>-<orchestrator>-<workload>-<endpoint> (with '-' inside a part doubled)`; err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %q", err, want)
	}
}

func TestProfileNames(t *testing.T) {
	if got := NamespaceProfileName("prod"); got != "kns.prod" {
		t.Errorf("NamespaceProfileName = %q", got)
	}
	if got := ServiceAccountProfileName("prod", "api"); got != "ksa.prod.api" {
		t.Errorf("ServiceAccountProfileName = %q", got)
	}
}

func TestIPAMBlockJSONNames(t *testing.T) {
	zero, h := 0, "k8s-pod-network.abc"
	b := NewIPAMBlock()
	b.Name = "10-0-0-0-30"
	b.Spec = IPAMBlockSpec{
		CIDR: "10.0.0.0/30", Affinity: ptr("host:node1"),
		Allocations: []*int{&zero, nil, nil, nil}, Unallocated: []int{1, 2, 3},
		Attributes:                  []AllocationAttribute{{HandleID: &h, Secondary: map[string]string{"node": "node1"}}},
		SequenceNumber:              1,
		SequenceNumberForAllocation: map[string]uint64{"0": 0},
	}
	got, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"IPAMBlock","apiVersion":"projectcalico.org/v3","metadata":{"name":"10-0-0-0-30"},"spec":{"cidr":"10.0.0.0/30","affinity":"host:node1","strictAffinity":false,"allocations":[0,null,null,null],"unallocated":[1,2,3],"attributes":[{"handle_id":"k8s-pod-network.abc","secondary":{"node":"node1"}}],"sequenceNumber":1,"sequenceNumberForAllocation":{"0":0},"deleted":false}}`
	if string(got) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
}
