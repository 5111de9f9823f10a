//go:build linux

package lab

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/testenv"
	"github.com/tortie-net/tortie/installer/kubernetes/helm"
)

func TestParseCRUDArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want crudArgs
		ok   bool
	}{
		{args: []string{"apply", "-f", "-"}, want: crudArgs{verb: "apply", file: "-"}, ok: true},
		{args: []string{"apply", "--filename=x.yaml"}, want: crudArgs{verb: "apply", file: "x.yaml"}, ok: true},
		{args: []string{"delete", "--skip-not-exists", "-f", "-"}, want: crudArgs{verb: "delete", file: "-", skip: true, rest: []string{"--skip-not-exists"}}, ok: true},
		{args: []string{"apply", "--skip-not-exists", "-f", "-"}},
		{args: []string{"apply", "-f", "a", "-f", "b"}},
		{args: []string{"apply"}},
		{args: []string{"get", "networkpolicy"}},
		{args: []string{"policy", "trace", "x/a", "x/b"}},
		{args: nil},
	} {
		got, ok := parseCRUDArgs(tc.args)
		if ok != tc.ok || (ok && !cmp.Equal(got, tc.want, cmp.AllowUnexported(crudArgs{}))) {
			t.Errorf("parseCRUDArgs(%q) = %+v, %t; want %+v, %t", tc.args, got, ok, tc.want, tc.ok)
		}
	}
}

func TestK8sNetworkPolicies(t *testing.T) {
	in := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec: {selector: all()}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: x}
spec: {podSelector: {}}
---
apiVersion: v1
kind: List
items:
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: b}, spec: {podSelector: {}}}
`
	nps, err := k8sNetworkPolicies([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, np := range nps {
		got = append(got, np.Namespace+"/"+np.Name)
	}
	if want := []string{"x/a", "default/b"}; !cmp.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	json := `[{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"c","namespace":"y"},"spec":{"podSelector":{}}}]`
	if nps, err := k8sNetworkPolicies([]byte(json)); err != nil || len(nps) != 1 || nps[0].Name != "c" {
		t.Errorf("JSON array: %v %v", nps, err)
	}
}

func TestFindKubeAPIServer(t *testing.T) {
	cache := t.TempDir()
	env := map[string]string{"TORTIE_CACHE": cache}
	if got := FindKubeAPIServer(func(k string) string { return env[k] }); got != "" {
		t.Errorf("empty cache: %q", got)
	}
	bin := filepath.Join(cache, "kube-apiserver-0123456789ab")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "kube-apiserver-notexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := FindKubeAPIServer(func(k string) string { return env[k] }); got != bin {
		t.Errorf("cache: %q, want %q", got, bin)
	}
	env[KubeAPIServerEnv] = "/opt/kas"
	if got := FindKubeAPIServer(func(k string) string { return env[k] }); got != "/opt/kas" {
		t.Errorf("%s: %q", KubeAPIServerEnv, got)
	}
	o := UpOptions{Nodes: 1, Encap: "vxlan", Datastore: "kubernetes", Dataplane: "auto", PodCIDR: DefaultPodCIDR,
		Underlay: DefaultUnderlay, NodeBin: "n", CNIBin: "c", LabBin: "l"}
	if err := o.Check(); err == nil || !strings.Contains(err.Error(), "ci/build-kube-apiserver.sh") {
		t.Errorf("Check without a kube-apiserver: %v", err)
	}
}

// kubeLab is a Lab on a real kube-apiserver (common/testenv) with tortie's CRDs, without nodes or
// network namespaces: the Kubernetes half of the lab, tested apart from the kernel half.
func kubeLab(t *testing.T) *Lab {
	t.Helper()
	k := testenv.KubeAPIServer(t)
	be, err := kube.New(kube.Config{RESTConfig: k.RestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	crds, err := fs.Sub(helm.Chart, "tortie/crds")
	if err != nil {
		t.Fatal(err)
	}
	if err := be.EnsureCRDs(t.Context(), crds); err != nil {
		t.Fatal(err)
	}
	s := &State{Datastore: "kubernetes", Kubeconfig: k.Kubeconfig(), APIServerURL: k.Host(), Namespaces: map[string]map[string]string{}, Pods: map[string]*Pod{}}
	cs, err := kubeClient(s)
	if err != nil {
		t.Fatal(err)
	}
	return &Lab{dir: t.TempDir(), s: s, be: be, obj: kubeObjects{cs: cs, be: be}, unlock: func() {}}
}

// TestKubeObjects: namespaces, pods and nodes as Kubernetes objects, and the WorkloadEndpoint the
// kube datastore derives from the Pod.
func TestKubeObjects(t *testing.T) {
	l := kubeLab(t)
	ctx := t.Context()
	o := l.obj.(kubeObjects)
	if err := l.AddNamespace(ctx, "shop", map[string]string{"team": "web"}); err != nil {
		t.Fatal(err)
	}
	if err := l.LabelNamespace(ctx, "shop", map[string]string{"team": "db"}); err != nil {
		t.Fatal(err)
	}
	prof, err := l.be.Get(ctx, datastore.Key{Kind: api.KindProfile, Name: "kns.shop"})
	if err != nil {
		t.Fatal(err)
	}
	if got := prof.(*api.Profile).Spec.LabelsToApply["pcns.team"]; got != "db" {
		t.Errorf("profile kns.shop labelsToApply %v, want pcns.team=db", prof.(*api.Profile).Spec.LabelsToApply)
	}
	// testenv's API server runs the ServiceAccount admission plugin (the lab's does not): give the
	// namespace the account the controller-manager would.
	if _, err := o.cs.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	n := &Node{Name: "n1", IP: netip.MustParsePrefix("172.31.0.11/24")}
	if err := o.addNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := o.addNode(ctx, n); err != nil {
		t.Fatalf("registering a node again: %v", err)
	}
	node, err := l.be.Get(ctx, datastore.Key{Kind: api.KindNode, Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if addrs := node.(*api.Node).Spec.Addresses; len(addrs) == 0 || addrs[0].Address != "172.31.0.11" {
		t.Errorf("Node n1 addresses %v, want the InternalIP 172.31.0.11", addrs)
	}

	p := &Pod{Namespace: "shop", Name: "web", Labels: map[string]string{"app": "web"}, ContainerID: strings.Repeat("ab", 32),
		Ports: []Port{{Name: "http", Port: 80, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"}}}
	if err := o.createPod(ctx, n, p, netip.MustParseAddr("10.0.1.1")); err != nil {
		t.Fatal(err)
	}
	if p.UID == "" {
		t.Error("createPod recorded no uid")
	}
	pod, err := o.cs.CoreV1().Pods("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Annotations[api.AnnotationIPAddrs]; got != `["10.0.1.1"]` {
		t.Errorf("ipAddrs annotation %q", got)
	}
	p.IP = netip.MustParseAddr("10.0.1.1")
	if err := o.podStarted(ctx, n, p); err != nil {
		t.Fatal(err)
	}
	if err := l.LabelPod(ctx, "shop/web", nil); err == nil {
		t.Error("LabelPod of a pod the lab does not hold: no error")
	}
	p.Labels = map[string]string{"app": "api", "tier": "1"}
	if err := o.labelPod(ctx, n, p); err != nil {
		t.Fatal(err)
	}
	key := datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: "shop", Name: api.WorkloadEndpointName("n1", "k8s", "web", "eth0")}
	obj, err := l.be.Get(ctx, key)
	if err != nil {
		t.Fatalf("the WorkloadEndpoint derived from Pod shop/web: %v", err)
	}
	w := obj.(*api.WorkloadEndpoint)
	wantLabels := map[string]string{"app": "api", "tier": "1", api.LabelNamespace: "shop", api.LabelOrchestrator: api.OrchestratorKubernetes,
		api.LabelServiceAccount: "default"}
	if diff := cmp.Diff(wantLabels, w.Labels); diff != "" {
		t.Errorf("endpoint labels (-want +got):\n%s", diff)
	}
	wantPorts := []api.WorkloadEndpointPort{{Name: "http", Protocol: api.ProtocolFromString("TCP"), Port: 80}, {Name: "dns", Protocol: api.ProtocolFromString("UDP"), Port: 53}}
	if diff := cmp.Diff(wantPorts, w.Spec.Ports); diff != "" {
		t.Errorf("endpoint ports (-want +got):\n%s", diff)
	}
	if !cmp.Equal(w.Spec.IPNetworks, []string{"10.0.1.1/32"}) || w.Spec.Node != "n1" {
		t.Errorf("endpoint node %q addresses %v", w.Spec.Node, w.Spec.IPNetworks)
	}
	if err := o.deletePod(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := l.be.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("endpoint after the Pod's deletion: %v", err)
	}

	// ns del finalizes the Namespace (no namespace controller runs) and takes its policies along.
	l.Tortiectl(ctx, []string{"apply", "-f", "-"}, strings.NewReader(
		`{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: k, namespace: shop}, spec: {podSelector: {}}}
---
{apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: c, namespace: shop}, spec: {selector: all()}}`), os.Stderr, os.Stderr)
	if err := l.DeleteNamespace(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Namespace shop after DeleteNamespace: %v", err)
	}
	if err := l.AddNamespace(ctx, "shop", nil); err != nil {
		t.Errorf("adding a deleted namespace again: %v", err)
	}
	if pols, _, err := l.be.List(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: "shop"}); err != nil || len(pols) != 0 {
		t.Errorf("policies in the re-added namespace: %v %v", pols, err)
	}
}

// TestKubeApply: apply/delete -f on the Kubernetes datastore write Kubernetes NetworkPolicies as
// networking.k8s.io objects and the rest through tortiectl, and write nothing when any document is bad.
func TestKubeApply(t *testing.T) {
	l := kubeLab(t)
	ctx := t.Context()
	if err := l.AddNamespace(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	cs := l.obj.(kubeObjects).cs
	run := func(stdin string, args ...string) (string, int) {
		var out strings.Builder
		code := l.Tortiectl(context.Background(), args, strings.NewReader(stdin), &out, &out)
		return out.String(), code
	}
	knp := `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: x}, spec: {podSelector: {}, policyTypes: [Ingress]}}`
	gnp := `{apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: g}, spec: {selector: all(), types: [Ingress]}}`
	badGNP := `{apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: bad}, spec: {selector: "not a selector ((("}}`
	badKNP := `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: Bad_Name, namespace: x}, spec: {podSelector: {}}}`

	exists := func() (k, g bool) {
		_, err := cs.NetworkingV1().NetworkPolicies("x").Get(ctx, "deny", metav1.GetOptions{})
		k = err == nil
		_, err = l.be.Get(ctx, datastore.Key{Kind: api.KindGlobalNetworkPolicy, Name: "g"})
		return k, err == nil
	}
	for _, bad := range []string{knp + "\n---\n" + badGNP, badKNP + "\n---\n" + gnp, gnp + "\n---\n" + badKNP} {
		out, code := run(bad, "apply", "-f", "-")
		if code == 0 {
			t.Errorf("apply of bad input succeeded:\n%s\n%s", bad, out)
		}
		if k, g := exists(); k || g {
			t.Errorf("apply of bad input wrote something (knp %t, gnp %t):\n%s\n%s", k, g, bad, out)
		}
	}
	out, code := run(knp+"\n---\n"+gnp, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	if k, g := exists(); !k || !g {
		t.Fatalf("after apply: knp %t, gnp %t\n%s", k, g, out)
	}
	// Applying again updates.
	if out, code := run(knp, "apply", "-f", "-"); code != 0 {
		t.Errorf("apply again: exit %d\n%s", code, out)
	}
	if out, code := run(knp+"\n---\n"+gnp, "delete", "-f", "-"); code != 0 {
		t.Fatalf("delete: exit %d\n%s", code, out)
	}
	if k, g := exists(); k || g {
		t.Errorf("after delete: knp %t, gnp %t", k, g)
	}
	if out, code := run(knp, "delete", "-f", "-"); code == 0 {
		t.Errorf("delete of a missing policy succeeded:\n%s", out)
	}
	if out, code := run(knp+"\n---\n"+gnp, "delete", "--skip-not-exists", "-f", "-"); code != 0 || !strings.Contains(out, "Skipped 1 'NetworkPolicy'") {
		t.Errorf("delete --skip-not-exists of missing policies: exit %d\n%s", code, out)
	}
}
