package api

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics and that what it accepts survives encoding: for any input
// Decode accepts, Decode(EncodeYAML(objs)) and Decode(EncodeJSON(objs)) succeed and encode to the same
// bytes again. It also checks that DecodeDocuments agrees with Decode and reports consistent positions.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if y, err := EncodeYAML(sampleObjects()...); err == nil {
		f.Add(y)
	}
	for _, s := range []string{
		"apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a, labels: {x: y}}\nspec: {cidr: 10.0.0.0/16, blockSize: 26, allowedUses: [Workload], assignmentMode: Manual}\n",
		`{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{"order":1.5,"ingress":[{"action":"Allow","protocol":"6","destination":{"ports":["1:2",3,"http"]}}]}}`,
		`[{"apiVersion":"crd.projectcalico.org/v1","kind":"IPAMBlock","metadata":{"name":"b"},"spec":{"cidr":"10.0.0.0/30","allocations":[0,null,null,null],"unallocated":[1,2,3],"attributes":[{"handle_id":"h","secondary":{"a":"b"}}],"strictAffinity":false,"affinityClaimTime":"2024-01-01T00:00:00.5Z"}}]`,
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: BGPPeer\n  metadata: {name: p}\n  spec: {peerIP: 10.0.0.1, asNumber: \"1.10\", keepaliveTime: 90s}\n",
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: w, namespace: n}\nspec:\n  podSelector: {matchLabels: {a: b}}\n  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 80, endPort: 90}, {port: http, protocol: UDP}]}]\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}]\n",
		"apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {vxlanPort: 4789, failsafeInboundHostPorts: [], kubeNodePortRanges: [\"30000:32767\"], iptablesRefreshInterval: 1m}\n",
		"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n}\nspec: {bgp: {ipv4Address: 10.0.0.1/24, asNumber: 64512}}\nstatus: {podCIDRs: [10.244.0.0/24]}\n",
		"---\n---\n",
		"{apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: t}}\n---\nhello\n---\n- {apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: u}}\n- [x]\n---\n[{apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: v}}]\n",
		"apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: \"on\"}\nspec: {cidr: \"yes\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode(data, "fuzz")
		checkDecodeDocuments(t, data, objs, err)
		if err != nil {
			return
		}
		for _, o := range objs {
			// Neither may panic on anything Decode returns.
			SetDefaults(o.DeepCopyObject().(Resource))
			_ = Validate(o)
		}
		if len(objs) == 0 {
			return
		}
		y1, err := EncodeYAML(objs...)
		if err != nil {
			t.Fatalf("EncodeYAML: %v", err)
		}
		back, err := Decode(y1, "encoded")
		if err != nil {
			t.Fatalf("Decode(EncodeYAML) failed: %v\n%s", err, y1)
		}
		if len(back) != len(objs) {
			t.Fatalf("Decode(EncodeYAML) returned %d objects, want %d", len(back), len(objs))
		}
		y2, err := EncodeYAML(back...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(y1, y2) {
			t.Fatalf("YAML round trip not stable:\n--- first\n%s\n--- second\n%s", y1, y2)
		}
		j1, err := EncodeJSON(objs...)
		if err != nil {
			t.Fatalf("EncodeJSON: %v", err)
		}
		backJ, err := Decode(j1, "encoded.json")
		if err != nil {
			t.Fatalf("Decode(EncodeJSON) failed: %v\n%s", err, j1)
		}
		y3, err := EncodeYAML(backJ...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(y1, y3) {
			t.Fatalf("JSON round trip differs from YAML:\n--- yaml\n%s\n--- via json\n%s", y1, y3)
		}
	})
}

// checkDecodeDocuments checks DecodeDocuments on data against Decode's result: its first error is
// Decode's, its objects are Decode's when there is none, every error is a *DecodeError of a later
// document than the one before, and objects come in (document, item) order, none from a bad document.
func checkDecodeDocuments(t *testing.T, data []byte, objs []Resource, err error) {
	t.Helper()
	decoded, errs := DecodeDocuments(data, "fuzz")
	if err != nil {
		if len(errs) == 0 || errs[0].Error() != err.Error() {
			t.Fatalf("Decode: %v; DecodeDocuments: %v", err, errs)
		}
	} else if len(errs) > 0 {
		t.Fatalf("Decode succeeded; DecodeDocuments: %v", errs)
	} else if len(decoded) != len(objs) {
		t.Fatalf("Decode returned %d objects, DecodeDocuments %d", len(objs), len(decoded))
	}
	bad := map[int]bool{}
	last := 0
	for _, e := range errs {
		var de *DecodeError
		if !errors.As(e, &de) || de.Document <= last {
			t.Fatalf("DecodeDocuments errors out of order or not *DecodeError: %v", errs)
		}
		last = de.Document
		bad[de.Document] = true
	}
	prevDoc, prevItem := 0, 0
	for i, d := range decoded {
		if err == nil && !reflect.DeepEqual(d.Object, objs[i]) {
			t.Fatalf("object %d differs from Decode's", i)
		}
		if d.Object == nil || d.Document < 1 || d.Item < 0 || bad[d.Document] {
			t.Fatalf("bad position or object %d: %+v (errors %v)", i, d, errs)
		}
		if d.Document < prevDoc || (d.Document == prevDoc && (d.Item == 0 || d.Item <= prevItem)) {
			t.Fatalf("object %d at document %d item %d after document %d item %d", i, d.Document, d.Item, prevDoc, prevItem)
		}
		prevDoc, prevItem = d.Document, d.Item
	}
}
