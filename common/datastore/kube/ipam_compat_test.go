package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestHostnameHash(t *testing.T) {
	// Values computed independently (SHA3-256, base32 without padding), as libcalico-go's
	// hashHostnameForLabel does.
	for node, want := range map[string]string{
		"calico-node1": "3C2XFPOK64NS3AXBZDKO2OBXASKBP2HWTPRCK5H7UIDZT7MJH42A",
		"tortie-node3": "TGO5OR477KVKZBYQVGWHPCQZBSXPZJNC3WEU4QJRQK4QBNJZFJMA",
	} {
		if got := HostnameHash(node); got != want {
			t.Errorf("HostnameHash(%q) = %s, want %s", node, got, want)
		}
	}
}

// loadCRs creates custom resources from a YAML file of crd.projectcalico.org/v1 objects, as written by
// Calico, straight through the API (not through tortie).
func loadCRs(t *testing.T, b *Backend, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var u unstructured.Unstructured
		// utiljson keeps integers as int64: sequence numbers do not fit a float64.
		if err := utiljson.Unmarshal(raw, &u.Object); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if u.Object == nil {
			continue
		}
		info, ok := api.LookupKind(u.GetKind())
		if !ok {
			t.Fatalf("%s: unknown kind %s", file, u.GetKind())
		}
		if _, err := b.dyn.Resource(crdGVR(info)).Create(ctxFor(t), &u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// TestCalicoIPAMObjects: IPAM custom resources written by Calico read correctly; tortie's IPAM shares
// the node's Calico block instead of claiming another; what tortie writes carries Calico's labels,
// timestamps and sequence numbers, so that Calico's label lookups find it.
func TestCalicoIPAMObjects(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cleanCRs(t, b, clientset(t, k))
	ctx := ctxFor(t)
	loadCRs(t, b, "testdata/calico-ipam-crs.yaml")

	obj, err := b.Get(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: "calico-node1-10-48-166-128-26"})
	if err != nil {
		t.Fatal(err)
	}
	aff := obj.(*api.BlockAffinity)
	if diff := cmp.Diff(api.BlockAffinitySpec{State: "confirmed", Node: "calico-node1", Type: "host", CIDR: "10.48.166.128/26", Deleted: "false"}, aff.Spec); diff != "" {
		t.Errorf("affinity (-want +got):\n%s", diff)
	}
	if _, shown := aff.Annotations[api.AnnotationMetadata]; shown {
		t.Errorf("the metadata annotation is shown: %v", aff.Annotations)
	}
	obj, err = b.Get(ctx, datastore.Key{Kind: api.KindIPAMBlock, Name: "10-48-166-128-26"})
	if err != nil {
		t.Fatal(err)
	}
	blk := obj.(*api.IPAMBlock)
	if blk.Spec.SequenceNumber != 1772359200123456791 || len(blk.Spec.Attributes) != 2 || *blk.Spec.Attributes[1].HandleID != "k8s-pod-network.3f0e1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7" {
		t.Errorf("block = %+v", blk.Spec)
	}

	pool := api.NewIPPool()
	pool.Name = "default-ipv4-ippool"
	pool.Spec = api.IPPoolSpec{CIDR: "10.48.0.0/16", BlockSize: 26, IPIPMode: api.EncapAlways, NodeSelector: "all()"}
	if _, err := b.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	c := ipam.New(b, ipam.WithClock(func() time.Time { return now }))

	// A pod on calico-node1 gets an address of calico-node1's block: no second block for the node.
	res, err := c.AutoAssign(ctx, ipam.AutoAssignArgs{Num4: 1, HandleID: "k8s-pod-network.tortie1", Hostname: "calico-node1", HostLabels: map[string]string{},
		Attrs: map[string]string{ipam.AttributeNode: "calico-node1", ipam.AttributeTimestamp: ipam.Timestamp(now)}})
	if err != nil || len(res.IPv4) != 1 {
		t.Fatalf("AutoAssign on calico-node1: %v %v", res, err)
	}
	if got := res.IPv4[0]; got != netip.MustParsePrefix("10.48.166.130/26") {
		t.Errorf("calico-node1 got %s, want the next free address of its Calico block, 10.48.166.130/26", got)
	}
	affs, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindBlockAffinity})
	if err != nil || len(affs) != 1 {
		t.Errorf("affinities after allocating on calico-node1: %d, %v; want the one Calico's", len(affs), err)
	}
	obj, _ = b.Get(ctx, datastore.Key{Kind: api.KindIPAMBlock, Name: "10-48-166-128-26"})
	blk = obj.(*api.IPAMBlock)
	if ts := blk.Spec.Attributes[len(blk.Spec.Attributes)-1].Secondary[ipam.AttributeTimestamp]; ts != "2026-03-02 08:00:00 +0000 UTC" {
		t.Errorf("timestamp attribute %q, want Calico's time.Time.String() form", ts)
	}

	// A new node claims a block: its affinity carries Calico's labels, so that Calico's lookup of the
	// node's affinities by label (libcalico-go CalculateBlockAffinityLabelSelector) finds it.
	if _, err := c.AutoAssign(ctx, ipam.AutoAssignArgs{Num4: 1, HandleID: "k8s-pod-network.tortie2", Hostname: "tortie-node3", HostLabels: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	sel := labels.SelectorFromSet(labels.Set{LabelHostnameHash: "TGO5OR477KVKZBYQVGWHPCQZBSXPZJNC3WEU4QJRQK4QBNJZFJMA", LabelAffinityType: "host", LabelIPVersion: "4"})
	found, err := b.dyn.Resource(crdGVR(kindInfo(t, api.KindBlockAffinity))).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Items) != 1 || !strings.HasPrefix(found.Items[0].GetName(), "tortie-node3-10-48-") {
		t.Fatalf("Calico's label lookup for tortie-node3 found %d affinities", len(found.Items))
	}
	var newBlock *api.IPAMBlock
	blocks, _, _ := b.List(ctx, datastore.ListOptions{Kind: api.KindIPAMBlock})
	for _, o := range blocks {
		if bo := o.(*api.IPAMBlock); bo.Spec.Affinity != nil && *bo.Spec.Affinity == "host:tortie-node3" {
			newBlock = bo
		}
	}
	if newBlock == nil {
		t.Fatal("no block for tortie-node3")
	}
	if start := uint64(now.UnixNano()); newBlock.Spec.SequenceNumber != start+1 {
		t.Errorf("new block's sequence number %d, want Calico's start (creation time in ns, %d) plus one allocation", newBlock.Spec.SequenceNumber, start)
	}

	// An IPAMConfig written without autoAllocateBlocks stores it as true: Calico reads absent as false.
	cfg := api.NewIPAMConfig()
	cfg.Name = api.IPAMConfigName
	cfg.Spec.StrictAffinity = true
	if _, err := b.Delete(ctx, datastore.Key{Kind: api.KindIPAMConfig, Name: api.IPAMConfigName}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	u, err := b.dyn.Resource(crdGVR(kindInfo(t, api.KindIPAMConfig))).Get(ctx, api.IPAMConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := unstructured.NestedBool(u.Object, "spec", "autoAllocateBlocks"); !ok || !v {
		t.Errorf("stored IPAMConfig spec = %v, want autoAllocateBlocks: true", u.Object["spec"])
	}
}

func kindInfo(t *testing.T, kind string) api.KindInfo {
	t.Helper()
	info, ok := api.LookupKind(kind)
	if !ok {
		t.Fatalf("kind %s is not registered", kind)
	}
	return info
}
