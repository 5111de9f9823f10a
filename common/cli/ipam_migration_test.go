package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
)

// calicoEtcdDump is IPAM data as Calico wrote it to etcd (see the etcd package's tests).
const calicoEtcdDump = "../datastore/etcd/testdata/calico-ipam.etcd"

// calicoAllocated are the addresses the dump allocates.
var calicoAllocated = []string{"10.48.166.128", "10.48.166.129", "10.48.166.130", "10.48.166.192", "10.48.166.193", "10.48.166.194", "fd00:48::1"}

// TestIPAMMigrationFromCalicoEtcd is the move of an etcd-backed Calico cluster to tortie: tortie reads the
// datastore as Calico left it, reports it correctly, and its own allocations never collide with
// Calico's and are stored in Calico's layout.
func TestIPAMMigrationFromCalicoEtcd(t *testing.T) {
	env := etcdEnv(t)
	r := runner{t: t, env: env}
	r.must(0, "", "apply", "-f", "testdata/ipam/calico-cluster.yaml")
	cli := testenv.EtcdClient(t, strings.Split(env["ETCD_ENDPOINTS"], ","))
	loadEtcdDump(t, cli, calicoEtcdDump)

	out, _ := r.must(0, "", "ipam", "show", "--show-blocks")
	for _, want := range []string{
		"| IP Pool  | 10.48.0.0/16     |     65536 | 6 (0%)     | 65530 (100%) |                   |",
		"| Block    | 10.48.166.128/26 |        64 | 3 (5%)     | 61 (95%)     | host:calico-node1 |",
		"| Block    | 10.48.166.192/26 |        64 | 3 (5%)     | 61 (95%)     | host:calico-node2 |",
		"| Block    | fd00:48::/122    |        64 | 1 (2%)     | 63 (98%)     | host:calico-node1 |",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("ipam show --show-blocks lacks %q:\n%s", want, out)
		}
	}
	out, _ = r.must(0, "", "ipam", "show", "--ip", "10.48.166.194")
	if !strings.Contains(out, "IP 10.48.166.194 is in use\n") || !strings.Contains(out, "  pod: cache-0\n") {
		t.Errorf("ipam show --ip 10.48.166.194:\n%s", out)
	}
	out, _ = r.must(0, "", "ipam", "check")
	for _, want := range []string{
		"Found 2 IP pools, 3 IPAM blocks, 3 block affinities and 6 IPAM handles.",
		"Found 7 allocated addresses: 7 in use, 0 leaked.",
		"Check complete; found 0 problems.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ipam check lacks %q:\n%s", want, out)
		}
	}

	// tortie allocates on the same datastore: on Calico's node (its block first, then new blocks) and on
	// a new node. No address Calico allocated is handed out again.
	be, err := open.FromEnv(t.Context(), func(k string) string { return env[k] }, open.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	c := ipam.New(be)
	var got []netip.Addr
	for i := range 70 {
		for _, node := range []string{"calico-node1", "tortie-node3"} {
			res, err := c.AutoAssign(t.Context(), ipam.AutoAssignArgs{Num4: 1, Num6: 1, HandleID: fmt.Sprintf("k8s-pod-network.%s-%d", node, i),
				Hostname: node, HostLabels: map[string]string{}, Attrs: map[string]string{ipam.AttributeNode: node}})
			if err != nil || len(res.IPv4) != 1 || len(res.IPv6) != 1 {
				t.Fatalf("AutoAssign %d on %s: %v %v", i, node, res, err)
			}
			got = append(got, res.Addrs()...)
		}
	}
	for _, a := range calicoAllocated {
		if slices.Contains(got, netip.MustParseAddr(a)) {
			t.Errorf("tortie handed out %s, which Calico allocated", a)
		}
		if _, err := c.AssignIP(t.Context(), ipam.AssignIPArgs{IP: netip.MustParseAddr(a), HandleID: "k8s-pod-network.thief", Hostname: "tortie-node3"}); !errors.Is(err, ipam.ErrAlreadyAllocated) {
			t.Errorf("AssignIP %s (Calico's): %v, want ErrAlreadyAllocated", a, err)
		}
	}
	sorted := slices.SortedFunc(slices.Values(got), netip.Addr.Compare)
	if len(slices.Compact(sorted)) != len(got) {
		t.Errorf("tortie handed out an address twice")
	}
	// calico-node1 first filled its Calico block (61 free addresses), then claimed more.
	var inCalicoBlock int
	for _, a := range got {
		if netip.MustParsePrefix("10.48.166.128/26").Contains(a) {
			inCalicoBlock++
		}
	}
	if inCalicoBlock != 61 {
		t.Errorf("tortie allocated %d addresses of calico-node1's block, want its 61 free ones", inCalicoBlock)
	}
	// The other node's block kept its affinity.
	aff, err := be.Get(t.Context(), datastore.Key{Kind: api.KindBlockAffinity, Name: "calico-node2-10-48-166-192-26"})
	if err != nil || aff.(*api.BlockAffinity).Spec.State != api.BlockAffinityConfirmed {
		t.Errorf("calico-node2's affinity: %v %v", aff, err)
	}

	// Everything under /calico/ipam/v2 is in Calico's layout: no key of another shape, values with
	// exactly the model's fields.
	checkCalicoIPAMLayout(t, cli)
	// And nothing went to tortie's former layout.
	resp, err := cli.Get(t.Context(), "/calico/resources/v3/projectcalico.org/ipamblocks/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("%d keys under .../ipamblocks/ (%v), want none", resp.Count, err)
	}
}

func loadEtcdDump(t *testing.T, cli *clientv3.Client, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		key := sc.Text()
		if !sc.Scan() {
			t.Fatalf("%s: key %s has no value", file, key)
		}
		if _, err := cli.Put(t.Context(), key, sc.Text()); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkCalicoIPAMLayout checks every key under /calico/ipam/v2 against libcalico-go's key patterns and
// the top-level fields of its model values (field for field: omitempty fields may be absent).
func checkCalicoIPAMLayout(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	resp, err := cli.Get(t.Context(), "/calico/ipam/v2/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		key              *regexp.Regexp
		always, optional []string
	}
	shapes := []shape{
		{regexp.MustCompile(`^/calico/ipam/v2/assignment/ipv[46]/block/[0-9a-f.:]+-\d+$`),
			[]string{"cidr", "affinity", "allocations", "unallocated", "attributes", "sequenceNumber", "sequenceNumberForAllocation", "deleted"},
			[]string{"affinity_claim_time", "hostAffinity"}},
		{regexp.MustCompile(`^/calico/ipam/v2/(host|virtual)/[^/]+/ipv[46]/block/[0-9a-f.:]+-\d+$`), []string{"state", "deleted"}, nil},
		{regexp.MustCompile(`^/calico/ipam/v2/handle/[^/]+$`), []string{"block", "deleted"}, nil},
		{regexp.MustCompile(`^/calico/ipam/v2/config$`), nil,
			[]string{"strict_affinity", "auto_allocate_blocks", "maxBlocksPerHost", "kubeVirtVMAddressPersistence", "ipCooldownSeconds"}},
	}
	if len(resp.Kvs) < 20 {
		t.Errorf("only %d IPAM keys", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		i := slices.IndexFunc(shapes, func(s shape) bool { return s.key.Match(kv.Key) })
		if i < 0 {
			t.Errorf("key %s is not one of Calico's IPAM keys", kv.Key)
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(kv.Value, &fields); err != nil {
			t.Errorf("%s: %v", kv.Key, err)
			continue
		}
		for _, f := range shapes[i].always {
			if _, ok := fields[f]; !ok {
				t.Errorf("%s lacks %q: %s", kv.Key, f, kv.Value)
			}
		}
		for f := range fields {
			if !slices.Contains(shapes[i].always, f) && !slices.Contains(shapes[i].optional, f) {
				t.Errorf("%s has %q, which Calico's model does not: %s", kv.Key, f, kv.Value)
			}
		}
	}
}
