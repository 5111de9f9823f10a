package cli

import (
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/ipam"
)

// TestIPAMEtcd runs show, check and release against a real etcd, chosen through DATASTORE_TYPE and
// ETCD_ENDPOINTS as a user would; the allocations are made through the IPAM library on the same etcd,
// as the CNI plugin makes them.
func TestIPAMEtcd(t *testing.T) {
	env := etcdEnv(t)
	r := runner{t: t, env: env}
	r.must(0, "", "apply", "-f", "testdata/ipam/cluster.yaml")

	be, err := open.FromEnv(t.Context(), func(k string) string { return env[k] }, open.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	plantIPAM(t, be)
	// Leaks: a pod that never got its endpoint, and one on a node that is gone.
	ipamAssign(t, be, "10.244.0.3", "k8s-pod-network.ghost", "node1", "default/ghost")
	ipamAssign(t, be, "10.244.9.5", "k8s-pod-network.gone", "node-gone", "default/gone-0")

	out, _ := r.must(0, "", "ipam", "show", "--show-blocks")
	for _, want := range []string{
		"| IP Pool  | 10.244.0.0/16  |     65536 | 5 (0%)     | 65531 (100%) |                |",
		"| Block    | 10.244.0.0/26  |        64 | 3 (5%)     | 61 (95%)     | host:node1     |",
		"| Block    | 10.244.9.0/26  |        64 | 1 (2%)     | 63 (98%)     | host:node-gone |",
		"| Block    | fd00:244::/122 |        64 | 1 (2%)     | 63 (98%)     | host:node1     |",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("ipam show --show-blocks lacks %q:\n%s", want, out)
		}
	}
	out, _ = r.must(0, "", "ipam", "show", "-o", "json")
	var u struct {
		Pools []struct {
			CIDR              string
			Size, InUse, Free int64
		}
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatal(err)
	}
	if len(u.Pools) != 2 || u.Pools[0].CIDR != "10.244.0.0/16" || u.Pools[0].InUse != 5 || u.Pools[0].Free != 65531 {
		t.Errorf("ipam show -o json: %s", out)
	}
	out, _ = r.must(0, "", "ipam", "show", "--ip", "10.244.0.3")
	if !strings.HasPrefix(out, "IP 10.244.0.3 is in use\nHandle ID: k8s-pod-network.ghost\n") || !strings.Contains(out, "  pod: ghost\n") {
		t.Errorf("ipam show --ip:\n%s", out)
	}

	out, _ = r.must(1, "", "ipam", "check")
	for _, want := range []string{
		"10.244.0.3  handle k8s-pod-network.ghost, pod default/ghost, node node1",
		"10.244.9.5  handle k8s-pod-network.gone, pod default/gone-0, node node-gone",
		"node node-gone: 10.244.9.0/26",
		"Check complete; found 3 problems.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ipam check lacks %q:\n%s", want, out)
		}
	}

	report := filepath.Join(t.TempDir(), "report.json")
	r.must(1, "", "ipam", "check", "-o", report)
	out, stderr := r.must(0, "", "ipam", "release", "--from-report", report)
	if !strings.Contains(out, "Released 2 leaked addresses.\n") || !strings.Contains(out, "Released 1 block affinity and 0 empty blocks.\n") ||
		!strings.Contains(out, "Skipped 0 items.\n") || stderr != "" {
		t.Errorf("ipam release --from-report:\n%s%s", out, stderr)
	}
	out, _ = r.must(0, "", "ipam", "check")
	if !strings.HasSuffix(out, "Check complete; found 0 problems.\n") {
		t.Errorf("after release --from-report:\n%s", out)
	}
	c := ipam.New(be)
	for _, ip := range []string{"10.244.0.3", "10.244.9.5"} {
		if _, err := c.GetAssignmentAttributes(t.Context(), netip.MustParseAddr(ip)); !errors.Is(err, ipam.ErrNotAllocated) {
			t.Errorf("%s after release: %v, want not allocated", ip, err)
		}
	}

	_, stderr = r.must(1, "", "ipam", "release", "--ip", "10.244.0.2")
	if !strings.Contains(stderr, "is in use by workload endpoint shop/node1-k8s-web--0-eth0") {
		t.Errorf("release of an address in use: %s", stderr)
	}
	_, stderr = r.must(1, "", "ipam", "release", "--ip", "10.244.0.3")
	if !strings.Contains(stderr, "Error: IP address 10.244.0.3 is not assigned\n") {
		t.Errorf("release of a free address: %s", stderr)
	}
	ipamAssign(t, be, "10.244.0.4", "k8s-pod-network.ghost2", "node1", "default/ghost2")
	out, _ = r.must(0, "", "ipam", "release", "--ip", "10.244.0.4")
	if out != "Successfully released IP address 10.244.0.4 (handle k8s-pod-network.ghost2, pod default/ghost2, node node1)\n" {
		t.Errorf("ipam release --ip: %q", out)
	}
	if _, err := c.GetAssignmentAttributes(t.Context(), netip.MustParseAddr("10.244.0.4")); !errors.Is(err, ipam.ErrNotAllocated) {
		t.Errorf("10.244.0.4 after release: %v, want not allocated", err)
	}
}
