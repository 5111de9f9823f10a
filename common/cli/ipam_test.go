package cli

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

const ipamIn = "testdata/ipam/"

// ipamTimestamp is the timestamp attribute of the planted allocations (fixed, for the golden files).
const ipamTimestamp = "2026-01-02T03:04:05Z"

// ipamAssign allocates ip to handle on node through the IPAM library, as the CNI plugin or node startup
// would; pod is "namespace/name", or "" for a tunnel address.
func ipamAssign(t *testing.T, be datastore.Backend, ip, handle, node, pod string) {
	t.Helper()
	attrs := map[string]string{ipam.AttributeNode: node, ipam.AttributeTimestamp: ipamTimestamp}
	use := api.IPPoolAllowedUseWorkload
	if ns, name, ok := strings.Cut(pod, "/"); ok {
		attrs[ipam.AttributeNamespace], attrs[ipam.AttributePod] = ns, name
	} else {
		attrs[ipam.AttributeType] = ipam.AttributeTypeVXLAN
		use = api.IPPoolAllowedUseTunnel
	}
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	_, err := ipam.New(be, ipam.WithClock(clock)).AssignIP(t.Context(), ipam.AssignIPArgs{
		IP: netip.MustParseAddr(ip), HandleID: handle, Attrs: attrs, Hostname: node, IntendedUse: use})
	if err != nil {
		t.Fatalf("assigning %s to %s: %v", ip, handle, err)
	}
}

// plantIPAM allocates the addresses that testdata/ipam/cluster.yaml's nodes and pods use.
func plantIPAM(t *testing.T, be datastore.Backend) {
	t.Helper()
	ipamAssign(t, be, "10.244.0.1", "vxlan-tunnel-addr-node1", "node1", "")
	ipamAssign(t, be, "10.244.0.2", "k8s-pod-network.web0", "node1", "shop/web-0")
	ipamAssign(t, be, "fd00:244::2", "k8s-pod-network.web0", "node1", "shop/web-0")
	ipamAssign(t, be, "10.244.0.66", "k8s-pod-network.db0", "node2", "data/db-0")
}

// goldenIPAM compares the transcript with testdata/ipam/<name>.golden, with dir written as $TMP.
func (s *session) goldenIPAM(name, dir string) {
	s.t.Helper()
	if dir != "" {
		t := strings.ReplaceAll(s.transcript.String(), dir, "$TMP")
		s.transcript.Reset()
		s.transcript.WriteString(t)
	}
	s.golden(filepath.Join("ipam", name))
}

func TestIPAMShow(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "apply -f "+ipamIn+"cluster.yaml")
	plantIPAM(t, s.be)
	ipamAssign(t, s.be, "10.244.3.7", "k8s-pod-network.ghost", "node2", "default/ghost")

	s.must(0, "", "ipam show")
	s.must(0, "", "ipam show --show-blocks")
	out, _ := s.must(0, "", "ipam show -o json")
	var u struct {
		Pools []struct {
			CIDR              string
			Size, InUse, Free int64
		}
		Blocks *[]struct{}
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatal(err)
	}
	if len(u.Pools) != 2 || u.Pools[0].CIDR != "10.244.0.0/16" || u.Pools[0].Size != 65536 || u.Pools[0].InUse != 4 ||
		u.Pools[0].Free != 65532 || u.Blocks != nil {
		t.Errorf("ipam show -o json = %+v", u)
	}
	s.must(0, "", "ipam show --show-blocks -o json")
	s.must(0, "", "ipam show --ip 10.244.0.2")
	s.must(0, "", "ipam show --ip fd00:244::2")
	s.must(0, "", "ipam show --ip 10.244.0.2 -o json")
	s.must(0, "", "ipam show --ip 10.244.0.9")
	s.must(0, "", "ipam show --ip 10.244.0.9 -o json")
	s.must(0, "", "ipam show --ip 192.168.7.7")

	// Reserved addresses get their own column; free excludes them.
	s.must(0, `apiVersion: projectcalico.org/v3
kind: IPReservation
metadata: {name: keep}
spec: {reservedCIDRs: [10.244.0.0/30, 10.244.200.0/24]}
`, "apply -f -")
	s.must(0, "", "ipam show --show-blocks")
	// A disabled pool is marked: its free addresses are not handed out.
	s.must(0, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-off}\nspec: {cidr: 10.99.0.0/24, disabled: true}\n", "apply -f -")
	s.must(0, "", "ipam show")
	s.goldenIPAM("show", "")
}

func TestIPAMCheck(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "apply -f "+ipamIn+"cluster.yaml")
	plantIPAM(t, s.be)
	out, _ := s.must(0, "", "ipam check")
	if !strings.HasSuffix(out, "Check complete; found 0 problems.\n") {
		t.Errorf("clean cluster: %s", out)
	}

	// A leak: a CNI ADD that allocated and died before the endpoint was written.
	ipamAssign(t, s.be, "10.244.0.3", "k8s-pod-network.ghost", "node1", "default/ghost")
	// Twelve more, so that the list is cut without --show-problem-ips.
	for i := range 12 {
		ipamAssign(t, s.be, netip.AddrFrom4([4]byte{10, 244, 0, byte(70 + i)}).String(), "k8s-pod-network.many", "node2", "default/many")
	}
	out, _ = s.must(1, "", "ipam check")
	if !strings.Contains(out, "10.244.0.3  handle k8s-pod-network.ghost, pod default/ghost, node node1") ||
		!strings.HasSuffix(out, "Check complete; found 13 problems.\n") {
		t.Errorf("with leaks: %s", out)
	}
	s.must(1, "", "ipam check --show-problem-ips")
	s.must(1, "", "ipam check --show-all-ips")

	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	s.must(1, "", "ipam check -o "+report)
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r ipam.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Leaked) != 13 || r.Leaked[0].IP != netip.MustParseAddr("10.244.0.3") || r.Leaked[0].Handle != "k8s-pod-network.ghost" ||
		r.Leaked[0].SequenceNumber == nil {
		t.Errorf("report leaked = %+v", r.Leaked)
	}

	// The other findings: an endpoint whose address is not allocated, a node that is gone, a handle
	// without addresses, an address with two owners.
	s.must(0, `apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node2-k8s-cache--0-eth0, namespace: data}
spec: {orchestrator: k8s, node: node2, pod: cache-0, endpoint: eth0, interfaceName: cali11, ipNetworks: [10.244.0.67/32]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node2-k8s-copy--0-eth0, namespace: data}
spec: {orchestrator: k8s, node: node2, pod: copy-0, endpoint: eth0, interfaceName: cali12, ipNetworks: [10.244.0.66/32]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node2-k8s-host--0-eth0, namespace: data}
spec: {orchestrator: k8s, node: node2, pod: host-0, endpoint: eth0, interfaceName: cali13, ipNetworks: [192.168.50.5/32]}
`, "apply -f -")
	ipamAssign(t, s.be, "10.244.9.5", "k8s-pod-network.gone", "node-gone", "default/gone-0")
	h := api.NewIPAMHandle()
	h.Name = "k8s-pod-network.empty"
	h.Spec.HandleID = h.Name
	h.Spec.Block = map[string]int{"10.244.0.0/26": 1}
	if _, err := s.be.Create(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	s.must(1, "", "ipam check")
	skipGoldenOnWindows(t)
	s.goldenIPAM("check", dir)
}

func TestIPAMRelease(t *testing.T) {
	s := newSession(t)
	s.must(0, "", "apply -f "+ipamIn+"cluster.yaml")
	plantIPAM(t, s.be)
	ipamAssign(t, s.be, "10.244.0.3", "k8s-pod-network.ghost", "node1", "default/ghost")

	// One address.
	s.must(0, "", "ipam release --ip 10.244.0.3")
	s.must(1, "", "ipam release --ip 10.244.0.3")
	s.must(1, "", "ipam release --ip 10.244.77.1")
	s.must(1, "", "ipam release --ip 10.244.0.2")
	s.must(0, "", "ipam check")

	// From a report: a leak on a node that is gone, and a handle without addresses.
	ipamAssign(t, s.be, "10.244.9.5", "k8s-pod-network.gone", "node-gone", "default/gone-0")
	h := api.NewIPAMHandle()
	h.Name = "k8s-pod-network.empty"
	h.Spec.HandleID = h.Name
	h.Spec.Block = map[string]int{"10.244.0.0/26": 1}
	if _, err := s.be.Create(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	s.must(1, "", "ipam check -o "+report)
	s.must(0, "", "ipam release --from-report "+report)
	out, _ := s.must(0, "", "ipam check")
	if !strings.HasSuffix(out, "Check complete; found 0 problems.\n") {
		t.Errorf("after release --from-report:\n%s", out)
	}
	if n := s.count(api.KindIPAMBlock); n != 3 {
		t.Errorf("%d blocks left, want 3 (node-gone's block is released)", n)
	}
	// The same report again: everything changed since, nothing is touched.
	s.must(0, "", "ipam release --from-report "+report)

	// A leak whose pod shows up between check and release is skipped; so is one released by hand.
	ipamAssign(t, s.be, "10.244.0.4", "k8s-pod-network.late", "node1", "default/late-0")
	ipamAssign(t, s.be, "10.244.0.5", "k8s-pod-network.byhand", "node1", "default/byhand-0")
	report2 := filepath.Join(dir, "report2.json")
	s.must(1, "", "ipam check -o "+report2)
	s.must(0, `apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-late--0-eth0, namespace: default}
spec: {orchestrator: k8s, node: node1, pod: late-0, endpoint: eth0, interfaceName: cali21, ipNetworks: [10.244.0.4/32]}
`, "apply -f -")
	s.must(0, "", "ipam release --ip 10.244.0.5")
	// Released and allocated again to another pod: the new allocation has another handle and
	// sequence number, and is not touched.
	ipamAssign(t, s.be, "10.244.0.5", "k8s-pod-network.new", "node1", "default/new-0")
	s.must(0, "", "ipam release --from-report "+report2)
	if _, err := ipam.New(s.be).GetAssignmentAttributes(t.Context(), netip.MustParseAddr("10.244.0.5")); err != nil {
		t.Errorf("the reallocated address was released: %v", err)
	}
	s.must(0, "", "ipam release --ip 10.244.0.5")

	// --force releases an address in use; check then reports the endpoint's address as not allocated.
	s.must(0, "", "ipam release --ip 10.244.0.66 --force")
	s.must(1, "", "ipam check")
	skipGoldenOnWindows(t)
	s.goldenIPAM("release", dir)
}

func TestIPAMBadInput(t *testing.T) {
	s := newSession(t)
	s.must(2, "", "ipam release --ip 10.244.0.3 --from-report "+ipamIn+"empty-report.json")
	s.must(2, "", "ipam release")
	s.must(2, "", "ipam release --ip 10.244.0.300")
	s.must(2, "", "ipam release --ip 10.244.0.0/26")
	s.must(2, "", "ipam release --ip")
	s.must(2, "", "ipam release extra")
	s.must(2, "", "ipam show --ip nonsense")
	s.must(2, "", "ipam show --ip 10.244.0.2 --show-blocks")
	s.must(2, "", "ipam show -o yaml")
	s.must(2, "", "ipam nosuch")
	s.must(1, "", "ipam release --from-report "+ipamIn+"does-not-exist.json")
	s.must(1, "", "ipam release --from-report "+ipamIn+"malformed-report.json")
	s.must(1, "", "ipam release --from-report "+ipamIn+"calicoctl-report.json")
	s.must(1, "", "ipam release --from-report "+ipamIn+"empty-report.json")
	s.must(1, "", "ipam release --from-report "+ipamIn+"bad-ip-report.json")
	if len(s.overrides) != 0 {
		t.Errorf("bad input opened the datastore %d time(s)", len(s.overrides))
	}
	skipGoldenOnWindows(t)
	s.goldenIPAM("bad-input", "")
}

func TestIPAMHelp(t *testing.T) {
	s := newSession(t)
	for _, c := range []string{"ipam", "ipam --help", "ipam show --help", "ipam check --help", "ipam release --help"} {
		s.must(0, "", c)
	}
	s.goldenIPAM("help", "")
}
