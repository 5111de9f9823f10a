package etcd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
)

// The shapes of libcalico-go's backend model values (lib/backend/model: block.go, block_affinity.go,
// ipam_handle.go, ipam_config.go), written here from those facts so that the tests read what tortie
// stores the way Calico reads it. Unknown fields are an error, as they would be lost on Calico's side.
type (
	modelBlock struct {
		CIDR                        string            `json:"cidr"`
		Affinity                    *string           `json:"affinity"`
		AffinityClaimTime           *metav1.Time      `json:"affinity_claim_time,omitempty"`
		Allocations                 []*int            `json:"allocations"`
		Unallocated                 []int             `json:"unallocated"`
		Attributes                  []modelAttribute  `json:"attributes"`
		SequenceNumber              uint64            `json:"sequenceNumber"`
		SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation"`
		Deleted                     bool              `json:"deleted"`
		HostAffinity                *string           `json:"hostAffinity,omitempty"`
	}
	modelAttribute struct {
		HandleID            *string           `json:"handle_id,omitempty"`
		ActiveOwnerAttrs    map[string]string `json:"secondary,omitempty"`
		AlternateOwnerAttrs map[string]string `json:"alternateOwnerAttrs,omitempty"`
		ReleasedAt          *metav1.Time      `json:"releasedAt,omitempty"`
	}
	modelAffinity struct {
		State   string `json:"state"`
		Deleted bool   `json:"deleted"`
	}
	modelHandle struct {
		Block   map[string]int `json:"block"`
		Deleted bool           `json:"deleted"`
	}
	modelConfig struct {
		StrictAffinity               bool    `json:"strict_affinity,omitempty"`
		AutoAllocateBlocks           bool    `json:"auto_allocate_blocks,omitempty"`
		MaxBlocksPerHost             int     `json:"maxBlocksPerHost,omitempty"`
		KubeVirtVMAddressPersistence *string `json:"kubeVirtVMAddressPersistence,omitempty"`
		IPCooldownSeconds            int     `json:"ipCooldownSeconds,omitempty"`
	}
)

// decodeModel decodes a stored value strictly into a model shape and re-encodes it: the result is what
// Calico would write back after reading it.
func decodeModel[T any](t *testing.T, key string, val []byte) []byte {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(val))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: value %s does not decode as Calico's model: %v", key, val, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// modelRoundTrip decodes an IPAM value with the model shape its key calls for.
func modelRoundTrip(t *testing.T, key string, val []byte) []byte {
	t.Helper()
	rel := key[strings.Index(key, etcd.IPAMPrefix)+len(etcd.IPAMPrefix):]
	switch {
	case strings.HasPrefix(rel, "/assignment/"):
		return decodeModel[modelBlock](t, key, val)
	case strings.HasPrefix(rel, "/host/"), strings.HasPrefix(rel, "/virtual/"):
		return decodeModel[modelAffinity](t, key, val)
	case strings.HasPrefix(rel, "/handle/"):
		return decodeModel[modelHandle](t, key, val)
	case rel == "/config":
		return decodeModel[modelConfig](t, key, val)
	}
	t.Fatalf("%s is not an IPAM key", key)
	return nil
}

type kvPair struct{ key, value string }

// readDump reads an `etcdctl get --prefix /calico/ipam/v2` listing: a key line, then a value line.
func readDump(t *testing.T, file string) []kvPair {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []kvPair
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k := sc.Text()
		if !sc.Scan() {
			t.Fatalf("%s: key %s has no value line", file, k)
		}
		out = append(out, kvPair{k, sc.Text()})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// loadDump puts a dump under the backend's prefix, as Calico left it.
func loadDump(t *testing.T, cli *clientv3.Client, prefix string, kvs []kvPair) {
	t.Helper()
	for _, kv := range kvs {
		if _, err := cli.Put(t.Context(), prefix+kv.key, kv.value); err != nil {
			t.Fatal(err)
		}
	}
}

// backendWithPrefix is newBackend with its prefix known to the test.
func backendWithPrefix(t *testing.T) (*etcd.Backend, string) {
	t.Helper()
	prefix := fmt.Sprintf("/test-%d-%d", os.Getpid(), prefixes.Add(1))
	b, err := etcd.New(etcd.Config{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, prefix
}

func rawGet(t *testing.T, cli *clientv3.Client, key string) []byte {
	t.Helper()
	resp, err := cli.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("raw Get %s: %d keys", key, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

const calicoDump = "testdata/calico-ipam.etcd"

// TestIPAMCalicoDump reads IPAM data as Calico stores it, and writes it back unchanged, byte for byte.
func TestIPAMCalicoDump(t *testing.T) {
	b, prefix := backendWithPrefix(t)
	ctx := t.Context()
	dump := readDump(t, calicoDump)
	loadDump(t, b.Client(), prefix, dump)

	// Every fixture value is exactly what Calico's model encodes (the fixture itself is faithful).
	for _, kv := range dump {
		if got := modelRoundTrip(t, kv.key, []byte(kv.value)); string(got) != kv.value {
			t.Errorf("fixture %s is not in Calico's canonical form:\n got %s\nwant %s", kv.key, got, kv.value)
		}
	}

	names := map[string][]string{}
	for _, kind := range []string{api.KindIPAMBlock, api.KindBlockAffinity, api.KindIPAMHandle, api.KindIPAMConfig} {
		objs, _, err := b.List(ctx, datastore.ListOptions{Kind: kind})
		if err != nil {
			t.Fatalf("List %s: %v", kind, err)
		}
		for _, o := range objs {
			names[kind] = append(names[kind], o.GetName())
			// Writing back what was read stores exactly Calico's bytes.
			before := prefix + calicoKey(t, o)
			if _, err := b.Update(ctx, o); err != nil {
				t.Fatalf("Update %s %s: %v", kind, o.GetName(), err)
			}
			after := rawGet(t, b.Client(), before)
			var want string
			for _, kv := range dump {
				if prefix+kv.key == before {
					want = kv.value
				}
			}
			if string(after) != want {
				t.Errorf("%s %s written back as\n%s\nwant Calico's\n%s", kind, o.GetName(), after, want)
			}
		}
	}
	wantNames := map[string][]string{
		api.KindIPAMBlock:     {"10-48-166-128-26", "10-48-166-192-26", "fd00-48---122"},
		api.KindBlockAffinity: {"calico-node1-10-48-166-128-26", "calico-node1-fd00-48---122", "calico-node2-10-48-166-192-26"},
		api.KindIPAMHandle: {
			"ipip-tunnel-addr-calico-node1", "ipip-tunnel-addr-calico-node2",
			"k8s-pod-network.0011223344556677889900aabbccddeeff0011223344556677889900aabbccdd",
			"k8s-pod-network.3f0e1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
			"k8s-pod-network.9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9",
			"k8s-pod-network.c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
		},
		api.KindIPAMConfig: {"default"},
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("names listed (-want +got):\n%s", diff)
	}

	// Objects read by name carry Calico's contents in tortie's types.
	obj, err := b.Get(ctx, datastore.Key{Kind: api.KindIPAMBlock, Name: "10-48-166-128-26"})
	if err != nil {
		t.Fatal(err)
	}
	blk := obj.(*api.IPAMBlock)
	claim := metav1.NewTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	zero, one, two := 0, 1, 2
	web0 := "k8s-pod-network.3f0e1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"
	if diff := cmp.Diff(api.IPAMBlockSpec{
		CIDR: "10.48.166.128/26", Affinity: new("host:calico-node1"), AffinityClaimTime: &claim,
		Allocations: append([]*int{&zero, &one, &two}, make([]*int, 61)...),
		Unallocated: seq(3, 64),
		Attributes: []api.AllocationAttribute{
			{HandleID: new("ipip-tunnel-addr-calico-node1"), Secondary: map[string]string{"node": "calico-node1", "type": "ipipTunnelAddress"}},
			{HandleID: &web0, Secondary: map[string]string{"namespace": "shop", "node": "calico-node1", "pod": "web-0", "timestamp": "2026-03-01 10:00:05.000000001 +0000 UTC"}},
			{HandleID: new("k8s-pod-network.9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9"), Secondary: map[string]string{"namespace": "data", "node": "calico-node1", "pod": "db-0", "timestamp": "2026-03-01 10:01:17.5 +0000 UTC"}},
		},
		SequenceNumber:              1772359200123456792,
		SequenceNumberForAllocation: map[string]uint64{"0": 1772359200123456789, "1": 1772359200123456790, "2": 1772359200123456791},
	}, blk.Spec); diff != "" {
		t.Errorf("block (-want +got):\n%s", diff)
	}
	obj, err = b.Get(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: "calico-node1-fd00-48---122"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(api.BlockAffinitySpec{State: "confirmed", Node: "calico-node1", Type: "host", CIDR: "fd00:48::/122", Deleted: "false"},
		obj.(*api.BlockAffinity).Spec); diff != "" {
		t.Errorf("affinity (-want +got):\n%s", diff)
	}
	obj, err = b.Get(ctx, datastore.Key{Kind: api.KindIPAMHandle, Name: web0})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(api.IPAMHandleSpec{HandleID: web0, Block: map[string]int{"10.48.166.128/26": 1, "fd00:48::/122": 1}},
		obj.(*api.IPAMHandle).Spec); diff != "" {
		t.Errorf("handle (-want +got):\n%s", diff)
	}
	obj, err = b.Get(ctx, datastore.Key{Kind: api.KindIPAMConfig, Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(api.IPAMConfigSpec{AutoAllocateBlocks: new(true)}, obj.(*api.IPAMConfig).Spec); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// calicoKey is where Calico keeps an IPAM object (libcalico-go's model key paths).
func calicoKey(t *testing.T, obj api.Resource) string {
	t.Helper()
	dash := func(cidr string) string { return strings.Replace(cidr, "/", "-", 1) }
	ver := func(cidr string) string {
		if strings.Contains(cidr, ":") {
			return "6"
		}
		return "4"
	}
	switch o := obj.(type) {
	case *api.IPAMBlock:
		return "/calico/ipam/v2/assignment/ipv" + ver(o.Spec.CIDR) + "/block/" + dash(o.Spec.CIDR)
	case *api.BlockAffinity:
		return "/calico/ipam/v2/" + o.Spec.Type + "/" + o.Spec.Node + "/ipv" + ver(o.Spec.CIDR) + "/block/" + dash(o.Spec.CIDR)
	case *api.IPAMHandle:
		return "/calico/ipam/v2/handle/" + o.Spec.HandleID
	case *api.IPAMConfig:
		return "/calico/ipam/v2/config"
	}
	t.Fatalf("%T is not an IPAM kind", obj)
	return ""
}

func TestIPAMPath(t *testing.T) {
	b, prefix := backendWithPrefix(t)
	for key, want := range map[datastore.Key]string{
		{Kind: api.KindIPAMBlock, Name: "10-48-166-128-26"}:           "/calico/ipam/v2/assignment/ipv4/block/10.48.166.128-26",
		{Kind: api.KindIPAMBlock, Name: "fd00-48---122"}:              "/calico/ipam/v2/assignment/ipv6/block/fd00:48::-122",
		{Kind: api.KindBlockAffinity, Name: "node1-10-48-166-128-26"}: "/calico/ipam/v2/host/node1/ipv4/block/10.48.166.128-26",
		{Kind: api.KindIPAMHandle, Name: "k8s-pod-network.abc"}:       "/calico/ipam/v2/handle/k8s-pod-network.abc",
		{Kind: api.KindIPAMConfig, Name: "default"}:                   "/calico/ipam/v2/config",
		{Kind: api.KindIPPool, Name: "default-ipv4-ippool"}:           "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
	} {
		if got, err := b.Path(key); err != nil || got != prefix+want {
			t.Errorf("Path(%v) = %q, %v; want %q", key, got, err, prefix+want)
		}
	}
	if got, err := b.Path(datastore.Key{Kind: api.KindIPAMBlock, Name: "blocky"}); err == nil {
		t.Errorf("Path of a block name that is no CIDR = %q", got)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestIPAMStoredForm checks the keys and values tortie writes: Calico's paths, and values that decode
// strictly as Calico's model and re-encode to the same bytes.
func TestIPAMStoredForm(t *testing.T) {
	b, prefix := backendWithPrefix(t)
	ctx := t.Context()
	blk := api.NewIPAMBlock()
	blk.Name = "fd00-1---122"
	blk.Spec = api.IPAMBlockSpec{CIDR: "fd00:1::/122", Affinity: new("host:n1"), Allocations: make([]*int, 64),
		Unallocated: seq(0, 64), Attributes: []api.AllocationAttribute{}, SequenceNumber: 42}
	aff := api.NewBlockAffinity()
	aff.Name = "n1-10-0-0-0-26"
	aff.Spec = api.BlockAffinitySpec{State: api.BlockAffinityPending, Node: "n1", Type: "host", CIDR: "10.0.0.0/26", Deleted: "false"}
	virt := api.NewBlockAffinity()
	virt.Name = "load-balancer-10-0-1-0-26"
	virt.Spec = api.BlockAffinitySpec{State: api.BlockAffinityConfirmed, Node: "load-balancer", Type: "virtual", CIDR: "10.0.1.0/26", Deleted: "false"}
	h := api.NewIPAMHandle()
	h.Name = "k8s-pod-network.abc"
	h.Spec = api.IPAMHandleSpec{HandleID: "k8s-pod-network.abc", Block: map[string]int{"10.0.0.0/26": 2}}
	odd := api.NewIPAMHandle()
	odd.Name = api.IPAMHandleName("odd_handle")
	odd.Spec = api.IPAMHandleSpec{HandleID: "odd_handle", Block: map[string]int{"10.0.0.0/26": 1}}
	cfg := api.NewIPAMConfig()
	cfg.Name = "default"
	cfg.Spec = api.IPAMConfigSpec{StrictAffinity: true, MaxBlocksPerHost: 4}

	for _, tc := range []struct {
		obj  api.Resource
		path string
		want string
	}{
		{blk, "/calico/ipam/v2/assignment/ipv6/block/fd00:1::-122",
			`{"cidr":"fd00:1::/122","affinity":"host:n1","allocations":[` + strings.Repeat("null,", 63) + `null],"unallocated":[` +
				strings.Trim(strings.Join(strings.Fields(fmt.Sprint(seq(0, 64))), ","), "[]") + `],"attributes":[],"sequenceNumber":42,"sequenceNumberForAllocation":{},"deleted":false}`},
		{aff, "/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26", `{"state":"pending","deleted":false}`},
		{virt, "/calico/ipam/v2/virtual/load-balancer/ipv4/block/10.0.1.0-26", `{"state":"confirmed","deleted":false}`},
		{h, "/calico/ipam/v2/handle/k8s-pod-network.abc", `{"block":{"10.0.0.0/26":2},"deleted":false}`},
		{odd, "/calico/ipam/v2/handle/odd_handle", `{"block":{"10.0.0.0/26":1},"deleted":false}`},
		// Calico reads a missing auto_allocate_blocks as false: tortie's default (true) is written out.
		{cfg, "/calico/ipam/v2/config", `{"strict_affinity":true,"auto_allocate_blocks":true,"maxBlocksPerHost":4}`},
	} {
		created, err := b.Create(ctx, tc.obj)
		if err != nil {
			t.Fatalf("Create %s %s: %v", tc.obj.GetObjectKind().GroupVersionKind().Kind, tc.obj.GetName(), err)
		}
		key, _ := datastore.KeyOf(tc.obj)
		if path := calicoKey(t, tc.obj); path != tc.path {
			t.Fatalf("test bug: %s is at %s", key, path)
		}
		val := rawGet(t, b.Client(), prefix+tc.path)
		if string(val) != tc.want {
			t.Errorf("%s =\n%s\nwant\n%s", tc.path, val, tc.want)
		}
		if again := modelRoundTrip(t, tc.path, val); string(again) != string(val) {
			t.Errorf("%s: Calico would rewrite %s as %s", tc.path, val, again)
		}
		got, err := b.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %v: %v", key, err)
		}
		if got.GetResourceVersion() != created.GetResourceVersion() {
			t.Errorf("Get %v: revision %s, Create said %s", key, got.GetResourceVersion(), created.GetResourceVersion())
		}
		if _, err := b.Create(ctx, tc.obj); !errors.Is(err, datastore.ErrAlreadyExists) {
			t.Errorf("second Create %v: %v, want ErrAlreadyExists", key, err)
		}
	}

	// A name that the contents do not give could never be found again: refused, naming the right one.
	bad := aff.DeepCopy()
	bad.Name = "my-affinity"
	if _, err := b.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), `name it "n1-10-0-0-0-26"`) {
		t.Errorf("Create of a misnamed affinity: %v", err)
	}
	badCfg := cfg.DeepCopy()
	badCfg.Name = "other"
	if _, err := b.Create(ctx, badCfg); err == nil || !strings.Contains(err.Error(), `single object named "default"`) {
		t.Errorf("Create of IPAMConfig other: %v", err)
	}
}

// TestIPAMCAS checks compare-and-swap, deletes and watches on IPAM keys.
func TestIPAMCAS(t *testing.T) {
	b, _ := backendWithPrefix(t)
	ctx := t.Context()
	aff := api.NewBlockAffinity()
	aff.Name = "n1-10-0-0-0-26"
	aff.Spec = api.BlockAffinitySpec{State: api.BlockAffinityPending, Node: "n1", Type: "host", CIDR: "10.0.0.0/26", Deleted: "false"}

	_, rev, err := b.List(ctx, datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindBlockAffinity}, rev)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// A block under /assignment must not show up in the affinity watch.
	blk := api.NewIPAMBlock()
	blk.Name = "10-0-0-0-26"
	blk.Spec = api.IPAMBlockSpec{CIDR: "10.0.0.0/26", Allocations: make([]*int, 64), Unallocated: seq(0, 64)}
	if _, err := b.Create(ctx, blk); err != nil {
		t.Fatal(err)
	}

	created, err := b.Create(ctx, aff)
	if err != nil {
		t.Fatal(err)
	}
	upd := created.(*api.BlockAffinity).DeepCopy()
	upd.Spec.State = api.BlockAffinityConfirmed
	confirmed, err := b.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, upd); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("Update at a stale revision: %v, want ErrConflict", err)
	}
	if _, err := b.Delete(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name}, created.GetResourceVersion()); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("Delete at a stale revision: %v, want ErrConflict", err)
	}
	deleted, err := b.Delete(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name}, confirmed.GetResourceVersion())
	if err != nil {
		t.Fatal(err)
	}
	if deleted.(*api.BlockAffinity).Spec.State != api.BlockAffinityConfirmed {
		t.Errorf("Delete returned %+v", deleted)
	}
	if _, err := b.Get(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name}); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if _, err := b.Delete(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name}, ""); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Delete of a missing affinity: %v", err)
	}

	var got []string
	for len(got) < 3 {
		select {
		case ev := <-w.Events():
			s := fmt.Sprintf("%s %s", ev.Type, ev.Key.Name)
			if ev.Object != nil {
				s += " " + ev.Object.(*api.BlockAffinity).Spec.State
			}
			got = append(got, s)
		case <-time.After(30 * time.Second):
			t.Fatalf("watch: got %q, then nothing", got)
		}
	}
	want := []string{"Added n1-10-0-0-0-26 pending", "Modified n1-10-0-0-0-26 confirmed", "Deleted n1-10-0-0-0-26 confirmed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}
}

// TestIPAMAmbiguousNames: a name with several readings finds the object that exists, and shortened
// affinity names and hashed handle names are found by scanning.
func TestIPAMAmbiguousNames(t *testing.T) {
	b, _ := backendWithPrefix(t)
	ctx := t.Context()
	for _, tc := range []struct{ host, cidr, typ string }{
		{"node", "fd00:1::/122", "host"},    // name node-fd00-1---122 ...
		{"node-fd00", "1::/122", "virtual"}, // ... and so is this one's
		{strings.Repeat("h", 250), "10.0.0.0/26", "host"},
		{strings.Repeat("h", 250), "10.0.0.64/26", "host"},
	} {
		a := api.NewBlockAffinity()
		a.Name = api.BlockAffinityName(tc.host, tc.cidr)
		a.Spec = api.BlockAffinitySpec{State: api.BlockAffinityConfirmed, Node: tc.host, Type: tc.typ, CIDR: tc.cidr, Deleted: "false"}
		if _, err := b.Create(ctx, a); err != nil {
			t.Fatalf("Create %s: %v", a.Name, err)
		}
		got, err := b.Get(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: a.Name})
		if err != nil {
			t.Fatalf("Get %s: %v", a.Name, err)
		}
		if s := got.(*api.BlockAffinity).Spec; s.Node != tc.host || s.CIDR != tc.cidr || s.Type != tc.typ {
			t.Errorf("Get %s = %+v", a.Name, s)
		}
	}
	// Both readings of node-fd00-1---122 exist: names collide (as they would in Kubernetes); List shows
	// both, Get finds one.
	objs, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil || len(objs) != 4 {
		t.Fatalf("List: %d objects, %v", len(objs), err)
	}

	h := api.NewIPAMHandle()
	h.Name = api.IPAMHandleName("Odd Handle")
	h.Spec = api.IPAMHandleSpec{HandleID: "Odd Handle", Block: map[string]int{"10.0.0.0/26": 1}}
	if _, err := b.Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, datastore.Key{Kind: api.KindIPAMHandle, Name: h.Name})
	if err != nil || got.(*api.IPAMHandle).Spec.HandleID != "Odd Handle" {
		t.Fatalf("Get %s: %v %v", h.Name, got, err)
	}
	if _, err := b.Delete(ctx, datastore.Key{Kind: api.KindIPAMHandle, Name: h.Name}, got.GetResourceVersion()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, datastore.Key{Kind: api.KindIPAMBlock, Name: "not-a-cidr"}); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Get of a block name that is no CIDR: %v, want ErrNotFound", err)
	}
}
