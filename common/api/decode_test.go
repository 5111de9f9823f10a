package api

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecodeMixedFile(t *testing.T) {
	data, err := os.ReadFile("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data, "mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := NewIPPool()
	p.Name = "pool-a"
	p.Spec = IPPoolSpec{CIDR: "10.244.0.0/16", BlockSize: 26, IPIPMode: EncapNever, VXLANMode: EncapCrossSubnet, NATOutgoing: true, NodeSelector: "all()"}
	n := NewNetworkPolicy()
	n.Name, n.Namespace = "allow-web", "prod"
	n.Spec = NetworkPolicySpec{Selector: "app == 'web'", Order: ptr(100.0),
		Ingress: []Rule{
			{Action: Allow, Protocol: NewProtocol("TCP"), Source: EntityRule{Selector: "role == 'frontend'"},
				Destination: EntityRule{Ports: []Port{SinglePort(80), PortRange(8000, 8080), NamedPort("http")}}},
			{Action: Allow, Protocol: NewProtocol("ICMP"), ICMP: &ICMPFields{Type: ptr(8), Code: ptr(0)}},
		},
		Egress: []Rule{{Action: Allow, Protocol: &Protocol{Number: 17}, Destination: EntityRule{Ports: []Port{SinglePort(53)}}}},
	}
	g := NewGlobalNetworkPolicy()
	g.Name = "deny-all"
	g.Spec = GlobalNetworkPolicySpec{Tier: "default", Selector: "all()", Types: []PolicyType{PolicyTypeIngress, PolicyTypeEgress}}
	want := []Resource{p, n, g}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
	for _, o := range got {
		SetDefaults(o)
		if err := Validate(o); err != nil {
			t.Errorf("Validate(%s): %v", o.GetName(), err)
		}
	}
}

func TestDecodeForms(t *testing.T) {
	poolA := func() Resource { p := NewIPPool(); p.Name = "a"; p.Spec.CIDR = "10.0.0.0/16"; return p }
	poolB := func() Resource { p := NewIPPool(); p.Name = "b"; p.Spec.CIDR = "10.1.0.0/16"; return p }
	ipam := func() Resource { c := NewIPAMConfig(); c.Name = "default"; c.Spec.StrictAffinity = true; return c }
	tests := []struct {
		name string
		in   string
		want []Resource
	}{
		{"empty", "", nil},
		{"only comments and separators", "# nothing\n---\n---\n# more\n", nil},
		{"single yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n", []Resource{poolA()}},
		{"leading separator", "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n", []Resource{poolA()}},
		{"crd group", "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n", []Resource{poolA()}},
		{"json object", `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16"}}`, []Resource{poolA()}},
		{"json array", ` [{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16"}},
			{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"b"},"spec":{"cidr":"10.1.0.0/16"}}]`, []Resource{poolA(), poolB()}},
		{"json List", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16"}}]}`, []Resource{poolA()}},
		{"yaml IPPoolList", "apiVersion: projectcalico.org/v3\nkind: IPPoolList\nmetadata: {resourceVersion: \"5\"}\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: a}\n  spec: {cidr: 10.0.0.0/16}\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: b}\n  spec: {cidr: 10.1.0.0/16}\n", []Resource{poolA(), poolB()}},
		{"yaml sequence", "- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: a}\n  spec: {cidr: 10.0.0.0/16}\n", []Resource{poolA()}},
		{"empty list", "apiVersion: v1\nkind: List\nitems: []\n", nil},
		{"IPAMConfiguration alias", "apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\nspec: {strictAffinity: true}\n", []Resource{ipam()}},
		{"yaml flow mapping", "{apiVersion: projectcalico.org/v3, kind: IPPool, metadata: {name: a}, spec: {cidr: 10.0.0.0/16}}\n", []Resource{poolA()}},
		{"crlf and separator comment", "--- # first\r\napiVersion: projectcalico.org/v3\r\nkind: IPPool\r\nmetadata: {name: a}\r\nspec: {cidr: 10.0.0.0/16}\r\n", []Resource{poolA()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in), "in")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const hdr = "apiVersion: projectcalico.org/v3\nkind: "
	okPool := hdr + "IPPool\nmetadata: {name: ok}\nspec: {cidr: 10.0.0.0/16}\n"
	tests := []struct {
		name, in, want string
	}{
		{"unknown field", okPool + "---\n" + okPool + "---\n" + hdr + "NetworkPolicy\nmetadata:\n  name: allow-web\n  namespace: prod\nspec:\n  ingres:\n  - action: Allow\n",
			`policies.yaml: document 3 (NetworkPolicy "prod/allow-web"): unknown field "spec.ingres"; did you mean "spec.ingress"?`},
		{"unknown field without namespace", hdr + "NetworkPolicy\nmetadata: {name: allow-web}\nspec: {ingres: []}\n",
			`policies.yaml: document 1 (NetworkPolicy "allow-web"): unknown field "spec.ingres"; did you mean "spec.ingress"?`},
		{"nested unknown field", hdr + "GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    source: {selektor: all()}\n",
			`policies.yaml: document 1 (GlobalNetworkPolicy "p"): unknown field "spec.ingress[0].source.selektor"; did you mean "spec.ingress[0].source.selector"?`},
		{"wrong case", hdr + "IPPool\nmetadata: {name: p}\nspec: {CIDR: 10.0.0.0/16}\n",
			`policies.yaml: document 1 (IPPool "p"): unknown field "spec.CIDR"; did you mean "spec.cidr"?`},
		{"unknown far from anything", hdr + "IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, colour: blue}\n",
			`policies.yaml: document 1 (IPPool "p"): unknown field "spec.colour" (check its spelling, case and indentation)`},
		{"unknown metadata field", hdr + "IPPool\nmetadata: {name: p, lables: {a: b}}\nspec: {cidr: 10.0.0.0/16}\n",
			`policies.yaml: document 1 (IPPool "p"): unknown field "metadata.lables"; did you mean "metadata.labels"?`},
		{"status on a kind without one", hdr + "NetworkSet\nmetadata: {name: t, namespace: ns1}\nstatus: {}\n",
			`policies.yaml: document 1 (NetworkSet "ns1/t"): unknown field "status" (check its spelling, case and indentation)`},
		{"duplicate field", hdr + "IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}\nspec: {cidr: 10.1.0.0/16}\n",
			`policies.yaml: document 1: not valid YAML: line 5: key "spec" already set in map`},
		{"duplicate field in json", `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"a","cidr":"b"}}`,
			`policies.yaml: document 1 (IPPool "p"): duplicate field "spec.cidr"`},
		{"wrong type", hdr + "IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, blockSize: big}\n",
			`policies.yaml: document 1 (IPPool "p"): field "spec.blockSize": got a string, want a number`},
		{"wrong type bool", hdr + "IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, natOutgoing: 3}\n",
			`policies.yaml: document 1 (IPPool "p"): field "spec.natOutgoing": got a number, want true or false`},
		{"wrong type list", hdr + "GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {ingress: {action: Allow}}\n",
			`policies.yaml: document 1 (GlobalNetworkPolicy "p"): field "spec.ingress": got an object, want a list`},
		{"bad port", hdr + "GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [70000]}\n",
			`policies.yaml: document 1 (GlobalNetworkPolicy "p"): port 70000 is out of range 0-65535`},
		{"unknown kind", hdr + "IPPoll\nmetadata: {name: p}\n",
			`policies.yaml: document 1 (IPPoll "p"): unknown kind "IPPoll"; accepted kinds: ` + strings.Join(kindNames(), ", ")},
		{"kind in wrong case", hdr + "ippool\nmetadata: {name: p}\n",
			`policies.yaml: document 1 (ippool "p"): unknown kind "ippool"; did you mean "IPPool"?; accepted kinds: ` + strings.Join(kindNames(), ", ")},
		{"missing kind", "apiVersion: projectcalico.org/v3\nmetadata: {name: p}\n",
			`policies.yaml: document 1: kind is missing; set it to one of ` + strings.Join(kindNames(), ", ")},
		{"missing apiVersion", "kind: IPPool\nmetadata: {name: p}\n",
			`policies.yaml: document 1 (IPPool "p"): apiVersion is missing; set it to projectcalico.org/v3`},
		{"wrong apiVersion", "apiVersion: projectcalico.org/v1\nkind: IPPool\nmetadata: {name: p}\n",
			`policies.yaml: document 1 (IPPool "p"): apiVersion "projectcalico.org/v1" is not supported; use projectcalico.org/v3 (or crd.projectcalico.org/v1, or networking.k8s.io/v1 for Kubernetes NetworkPolicy)`},
		{"unsupported k8s kind", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: p}\n",
			`policies.yaml: document 1 (Ingress "p"): kind "Ingress" of networking.k8s.io/v1 is not supported; only NetworkPolicy is`},
		{"k8s unknown field", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{form: []}]}\n",
			`policies.yaml: document 1 (NetworkPolicy "x/p"): unknown field "spec.ingress[0].form"; did you mean "spec.ingress[0].from"?`},
		{"bad yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\n  metadata: x\n",
			`policies.yaml: document 1: not valid YAML: line 3: mapping values are not allowed in this context`},
		{"scalar document", "hello\n", `policies.yaml: document 1: expected an object with apiVersion, kind, metadata and spec`},
		{"bad json", `{"apiVersion": `, `policies.yaml: document 1: not valid JSON: unexpected end of JSON input`},
		{"list item error", `{"kind":"List","apiVersion":"v1","items":[{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"a"}},{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"b"},"spec":{"cidrs":"x"}}]}`,
			`policies.yaml: document 1, item 2 (IPPool "b"): unknown field "spec.cidrs"; did you mean "spec.cidr"?`},
		{"list item not an object", `[1]`, `policies.yaml: document 1, item 1: expected an object with apiVersion, kind, metadata and spec`},
		{"list with extra field", "apiVersion: v1\nkind: List\nitems: []\nextra: 1\n",
			`policies.yaml: document 1 (List): unknown field "extra" in a list; a list holds only apiVersion, kind, metadata and items`},
		{"kind not a string", "apiVersion: projectcalico.org/v3\nkind: 5\n",
			`policies.yaml: document 1: field "kind": got a number, want a string`},
		{"metadata not an object", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: x\n",
			`policies.yaml: document 1: field "metadata": got a string, want an object`},
		{"wrong type enum", hdr + "IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, allowedUses: [1]}\n",
			`policies.yaml: document 1 (IPPool "p"): field "spec.allowedUses": got a number, want a string`},
		{"wrong type uint16", hdr + "BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 70000}\n",
			`policies.yaml: document 1 (BGPConfiguration "default"): field "spec.listenPort": got 70000, want a number 0-65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in), "policies.yaml")
			if err == nil {
				t.Fatalf("Decode succeeded, want %q", tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("error is %T, want *DecodeError", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeK8sNetworkPolicy(t *testing.T) {
	in := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: prod
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector: {matchLabels: {role: fe}}
    ports:
    - port: 80
  - from:
    - ipBlock: {cidr: not-a-cidr}
`
	got, warnings, err := DecodeWithWarnings([]byte(in), "knp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := NewNetworkPolicy()
	want.Name, want.Namespace = "knp.default.web", "prod"
	want.Spec = NetworkPolicySpec{Tier: "default", Order: ptr(1000.0), Selector: "projectcalico.org/orchestrator == 'k8s' && app == 'web'",
		Types: []PolicyType{PolicyTypeIngress},
		Ingress: []Rule{{Action: Allow, Protocol: NewProtocol("TCP"),
			Source:      EntityRule{Selector: "projectcalico.org/orchestrator == 'k8s' && role == 'fe'"},
			Destination: EntityRule{Ports: []Port{SinglePort(80)}}}}}
	if diff := cmp.Diff([]Resource{want}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	wantWarn := []string{`knp.yaml: document 1 (NetworkPolicy "prod/web"): ingress rule 2 dropped: peer 1: ipBlock.cidr "not-a-cidr" is not a valid CIDR`}
	if diff := cmp.Diff(wantWarn, warnings); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

// positions lists decoded objects as "name@document.item" for compact comparison.
func positions(decoded []Decoded) []string {
	var out []string
	for _, d := range decoded {
		out = append(out, fmt.Sprintf("%s@%d.%d", d.Object.GetName(), d.Document, d.Item))
	}
	return out
}

// TestDecodeDocuments checks that DecodeDocuments reports every bad document, numbers documents and list
// items as DecodeError does, leaves out the objects of a bad document, and agrees with Decode.
func TestDecodeDocuments(t *testing.T) {
	const v3 = "apiVersion: projectcalico.org/v3\n"
	pool := func(name string) string {
		return v3 + "kind: IPPool\nmetadata: {name: " + name + "}\nspec: {cidr: 10.0.0.0/16}\n"
	}
	indent := func(s string) string {
		return "- " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
	}
	in := "# comments only: not counted\n---\n" + pool("a") +
		"---\nkind: IPPool\nmetadata: {name: no-version}\n" + // 2: bad
		"---\napiVersion: v1\nkind: List\nitems:\n" + indent(pool("b")) + indent(pool("c")) +
		"---\n" + v3 + "kind: IPPoolList\nitems:\n" + indent(pool("dropped")) + indent(v3+"kind: IPPool\nmetadata: {name: d}\nspec: {cidrs: x}") + // 4: bad item 2
		"--- {apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: t}}\n" +
		"---\n" + indent(pool("e")) + indent(pool("f")) +
		"...\n---\n# trailing comment\n" +
		"---\nhello\n" // 7: bad
	decoded, errs := DecodeDocuments([]byte(in), "in.yaml")
	if diff := cmp.Diff([]string{"a@1.0", "b@3.1", "c@3.2", "t@5.0", "e@6.1", "f@6.2"}, positions(decoded)); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	var msgs []string
	for _, err := range errs {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("error %v is %T, want *DecodeError", err, err)
		}
		msgs = append(msgs, err.Error())
	}
	wantMsgs := []string{
		`in.yaml: document 2 (IPPool "no-version"): apiVersion is missing; set it to projectcalico.org/v3`,
		`in.yaml: document 4, item 2 (IPPool "d"): unknown field "spec.cidrs"; did you mean "spec.cidr"?`,
		`in.yaml: document 7: expected an object with apiVersion, kind, metadata and spec`,
	}
	if diff := cmp.Diff(wantMsgs, msgs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	objs, err := Decode([]byte(in), "in.yaml")
	if objs != nil || err == nil || err.Error() != errs[0].Error() {
		t.Errorf("Decode = %v, %v; want nil and the first error %v", objs, err, errs[0])
	}

	// Positions of inputs without errors, and Decode returning the same objects.
	const tier = "{apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: %s}}\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"only comments", "# x\n---\n---\n", nil},
		{"leading separator", "---\n" + pool("a"), []string{"a@1.0"}},
		{"inline after ---", "--- " + fmt.Sprintf(tier, "t") + "--- # c\n...\n" + "--- " + fmt.Sprintf(tier, "u"), []string{"t@1.0", "u@2.0"}},
		{"flow mapping first", fmt.Sprintf(tier, "t") + "---\n" + fmt.Sprintf(tier, "u"), []string{"t@1.0", "u@2.0"}},
		{"flow sequence", "[" + strings.TrimSpace(fmt.Sprintf(tier, "t")) + "]\n---\n" + pool("a"), []string{"t@1.1", "a@2.0"}},
		{"no final newline", v3 + "kind: Tier\nmetadata: {name: t}\n---\n" + v3 + "kind: Tier\nmetadata: {name: u}", []string{"t@1.0", "u@2.0"}},
		{"json object", `{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"t"}}`, []string{"t@1.0"}},
		{"json array", `[{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"t"}},{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"u"}}]`, []string{"t@1.1", "u@1.2"}},
		{"json List", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"t"}}]}`, []string{"t@1.1"}},
		{"yaml sequence", indent(pool("a")) + indent(pool("b")), []string{"a@1.1", "b@1.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decoded, errs := DecodeDocuments([]byte(tt.in), "in")
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if diff := cmp.Diff(tt.want, positions(decoded)); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
			objs, err := Decode([]byte(tt.in), "in")
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != len(decoded) {
				t.Fatalf("Decode returned %d objects, DecodeDocuments %d", len(objs), len(decoded))
			}
			for i := range objs {
				if objs[i].GetName() != decoded[i].Object.GetName() {
					t.Errorf("object %d: Decode %q, DecodeDocuments %q", i, objs[i].GetName(), decoded[i].Object.GetName())
				}
			}
		})
	}
}

// TestDecodeDocumentsWarnings checks that each warning is attached to its object and named by its
// document, and that DecodeWithWarnings returns them all in order.
func TestDecodeDocumentsWarnings(t *testing.T) {
	knp := func(name string) string {
		return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name + ", namespace: ns}\n" +
			"spec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: bad}}]}]\n"
	}
	in := "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n---\n" + knp("w") + "---\n" + knp("x")
	decoded, errs := DecodeDocuments([]byte(in), "in")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := [][]string{nil,
		{`in: document 2 (NetworkPolicy "ns/w"): ingress rule 1 dropped: peer 1: ipBlock.cidr "bad" is not a valid CIDR`},
		{`in: document 3 (NetworkPolicy "ns/x"): ingress rule 1 dropped: peer 1: ipBlock.cidr "bad" is not a valid CIDR`},
	}
	var got [][]string
	for _, d := range decoded {
		got = append(got, d.Warnings)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	_, warnings, err := DecodeWithWarnings([]byte(in), "in")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(want[1], want[2]...), warnings); diff != "" {
		t.Errorf("DecodeWithWarnings warnings (-want +got):\n%s", diff)
	}
}

func TestEncode(t *testing.T) {
	p := NewIPPool()
	p.Name = "pool-a"
	p.Labels = map[string]string{"zone": "a"}
	p.Spec.CIDR = "10.0.0.0/16"
	p.Status = &IPPoolStatus{Conditions: []metav1.Condition{{Type: "Allocatable", Status: "True"}}}
	g := &GlobalNetworkPolicy{} // no TypeMeta: Encode fills it in
	g.Name = "p"
	g.Spec.Ingress = []Rule{{Action: Allow, Protocol: NewProtocol("TCP"), Destination: EntityRule{Ports: []Port{SinglePort(22), PortRange(1, 2)}}}}
	g.Spec.Order = ptr(10.5)

	y, err := EncodeYAML(p, g)
	if err != nil {
		t.Fatal(err)
	}
	wantYAML := `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  labels:
    zone: a
  name: pool-a
spec:
  cidr: 10.0.0.0/16
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: p
spec:
  ingress:
  - action: Allow
    destination:
      ports:
      - 22
      - "1:2"
    protocol: TCP
  order: 10.5
`
	if diff := cmp.Diff(wantYAML, string(y)); diff != "" {
		t.Errorf("EncodeYAML mismatch (-want +got):\n%s", diff)
	}
	if g.APIVersion != "" || p.Status == nil {
		t.Errorf("Encode modified its input")
	}
	j, err := EncodeJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "apiVersion": "projectcalico.org/v3",
  "kind": "IPPool",
  "metadata": {
    "labels": {
      "zone": "a"
    },
    "name": "pool-a"
  },
  "spec": {
    "cidr": "10.0.0.0/16"
  }
}
`
	if diff := cmp.Diff(wantJSON, string(j)); diff != "" {
		t.Errorf("EncodeJSON mismatch (-want +got):\n%s", diff)
	}
	// Round trips.
	for _, enc := range [][]byte{y, j} {
		back, err := Decode(enc, "enc")
		if err != nil {
			t.Fatalf("Decode(Encode): %v", err)
		}
		if len(back) == 0 || back[0].GetName() != "pool-a" {
			t.Errorf("round trip lost objects: %v", back)
		}
	}
	list, err := EncodeJSON(p, g)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(list, "list.json")
	if err != nil || len(back) != 2 {
		t.Fatalf("Decode(list) = %d objects, %v", len(back), err)
	}
	if !bytes.Contains(list, []byte(`"kind": "List"`)) {
		t.Errorf("list encoding: %s", list)
	}
}

// TestEncodeDecodeSamples round-trips one object of every kind through YAML and JSON. Status is not
// encoded, so it is cleared before comparing.
func TestEncodeDecodeSamples(t *testing.T) {
	samples := sampleObjects()
	want := make([]Resource, len(samples))
	for i, o := range samples {
		c := o.DeepCopyObject().(Resource)
		switch c := c.(type) {
		case *IPPool:
			c.Status = nil
		case *Node:
			c.Status = NodeStatus{}
		case *KubeControllersConfiguration:
			c.Status = KubeControllersConfigurationStatus{}
		case *CalicoNodeStatus:
			c.Status = CalicoNodeStatusStatus{}
		}
		want[i] = c
	}
	for _, enc := range []func(...Resource) ([]byte, error){EncodeYAML, EncodeJSON} {
		data, err := enc(samples...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(data, "samples")
		if err != nil {
			t.Fatalf("Decode: %v\n%s", err, data)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", diff)
		}
	}
}
