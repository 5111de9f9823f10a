//go:build linux

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tortie-net/tortie/linux/lab"
	"github.com/tortie-net/tortie/platform/dptest/policy"
)

// kubeCases are the conformance cases TestKubeDatastore plays on the Kubernetes datastore: no
// policy, a Kubernetes default-deny, namespace and named-port selection (from the Pods' container
// ports), a Calico GlobalNetworkPolicy, a pod's and a namespace's labels changed, and a Kubernetes
// NetworkPolicy deleted, and service accounts (ServiceAccount objects with labels, the Pods'
// serviceAccountName) selected by a rule and by a policy's serviceAccountSelector.
var kubeCases = []string{
	"k8s-no-policy",
	"k8s-deny-all-ingress-x",
	"k8s-namespaceselector-ingress",
	"k8s-named-port",
	"gnp-deny-all-ingress-z",
	"k8s-pod-label-churn",
	"k8s-namespace-label-churn",
	"k8s-policy-deleted",
	"calico-serviceaccount-selector",
	"calico-policy-serviceaccountselector",
}

// TestKubeDatastore: `up --datastore kubernetes` — a real kube-apiserver the lab starts over its
// embedded etcd, tortie's CRDs, Namespace, Pod and Node objects written as kubectl and the kubelet
// would, and WorkloadEndpoints derived from the Pods by the kube datastore — on three nodes over
// VXLAN, with a selection of the conformance cases compared as TestConformance compares them.
func TestKubeDatastore(t *testing.T) {
	if os.Getenv(lab.KubeAPIServerEnv) == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is unset in CI: ci/test.sh sources ci/test-env.sh, which builds the kube-apiserver and exports it", lab.KubeAPIServerEnv)
		}
		t.Skipf("%s is unset: `source ci/test-env.sh` builds (or finds the cached) kube-apiserver and exports it", lab.KubeAPIServerEnv)
	}
	all, err := policy.LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*policy.Case{}
	for i := range all {
		byName[all[i].Name] = &all[i]
	}

	const nodes = 3
	l := newLab(t, "--nodes", "3", "--pod-cidr", "10.0.0.0/16", "--encap", "vxlan", "--datastore", "kubernetes")
	cs := kubeClientFor(t, filepath.Join(l.dir, "kubeconfig"))
	ctx := t.Context()

	// up registered the nodes as kubelets would.
	kn, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range kn.Items {
		names = append(names, n.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"n1", "n2", "n3"}) {
		t.Fatalf("Kubernetes Nodes: %v, want n1 n2 n3", names)
	}
	if out := l.must("", "status"); !strings.Contains(out, "(kubernetes, pid") || !strings.Contains(out, "kube-apiserver https://") {
		t.Errorf("status does not show the Kubernetes datastore:\n%s", out)
	}

	for _, ns := range policy.Namespaces {
		l.must("", "ns", "add", ns, "--label", "ns="+ns)
		for _, p := range policy.PodNames {
			l.must("", "sa", "add", ns+"/sa-"+p, "--label", "sa="+p) // ServiceAccount objects
		}
	}
	for _, id := range modelPods() {
		addModelPod(l, id, nodes)
	}
	// The lab wrote Kubernetes objects: Namespaces with their labels, Pods on their nodes with the
	// --ip annotation, the declared named ports, and a status the kubelet would report.
	for _, ns := range policy.Namespaces {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Namespace %s: %v", ns, err)
		}
		if n.Labels["ns"] != ns {
			t.Errorf("Namespace %s labels %v, want ns=%s", ns, n.Labels, ns)
		}
	}
	pod, err := cs.CoreV1().Pods("y").Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Pod y/b: %v", err)
	}
	if pod.Spec.NodeName != "n2" || pod.Labels["pod"] != "b" || pod.Status.PodIP != modelIP("y", "b") ||
		pod.Annotations["cni.projectcalico.org/ipAddrs"] != `["`+modelIP("y", "b")+`"]` || len(pod.Spec.Containers) != 1 ||
		len(pod.Spec.Containers[0].Ports) != 5 {
		t.Errorf("Pod y/b: node %q labels %v podIP %q annotations %v containers %+v", pod.Spec.NodeName, pod.Labels,
			pod.Status.PodIP, pod.Annotations, pod.Spec.Containers)
	}

	l.must("", "sync")
	if m := l.probe("--port", "80"); m.Results["TCP/80"][0][1] != '.' {
		t.Fatalf("x/a on n1 does not reach x/b on n2 without any policy: %v", m.Results["TCP/80"])
	}
	for _, name := range kubeCases {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("cases.yaml has no case %s", name)
		}
		t.Run(name, func(t *testing.T) {
			runCase(t, l, c, nodes)
		})
	}

	// A Kubernetes NetworkPolicy applied through the lab is a networking.k8s.io object.
	l.must(`{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: x}, spec: {podSelector: {}, policyTypes: [Ingress]}}`,
		"apply", "-f", "-")
	if _, err := cs.NetworkingV1().NetworkPolicies("x").Get(ctx, "deny", metav1.GetOptions{}); err != nil {
		t.Errorf("the applied Kubernetes NetworkPolicy x/deny: %v", err)
	}
	if out := l.must("", "trace", "y/a", "x/b", "--port", "80", "--proto", "TCP"); !strings.Contains(out, "Verdict: Deny") ||
		!strings.Contains(out, "knp.default.deny") {
		t.Errorf("trace y/a → x/b with x/deny applied:\n%s", out)
	}
	l.must(`{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: x}}`, "delete", "-f", "-")
	if _, err := cs.NetworkingV1().NetworkPolicies("x").Get(ctx, "deny", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("x/deny after delete: %v, want not found", err)
	}

	// pod del: CNI DEL releases the address and the Pod goes; a new pod takes the address.
	l.must("", "pod", "del", "z/c")
	if _, err := cs.CoreV1().Pods("z").Get(ctx, "c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Pod z/c after pod del: %v, want not found", err)
	}
	// z/c's address was borrowed from n1's block, so n1 routes it to n3 until its agent sees the
	// endpoint gone; the CNI plugin (as Calico's) refuses to replace another device's route, and a
	// kubelet would retry. Wait for the agents first.
	l.must("", "sync")
	l.must("", "pod", "add", "z/d", "--node", "1", "--ip", modelIP("z", "c"))
	lb, err := lab.Open(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code := lb.Tortiectl(context.Background(), []string{"ipam", "check"}, nil, &out, &out)
	lb.Close()
	if code != 0 {
		t.Errorf("tortiectl ipam check after pod del and re-use of the address: exit %d\n%s", code, out.String())
	}
	l.must("", "sync")
	if m := l.probe("--port", "80"); !strings.Contains(strings.Join(m.Pods, " "), "z/d") || m.Results["TCP/80"][0][len(m.Pods)-1] != '.' {
		t.Errorf("x/a → z/d (on the released address %s): %v %v", modelIP("z", "c"), m.Pods, m.Results["TCP/80"])
	}

	// ns del: the Namespace goes (the lab finalizes it as the namespace controller would), and a
	// namespace of the same name can be added again.
	l.must("", "ns", "add", "w", "--label", "team=w")
	l.must("", "ns", "del", "w")
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "w", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Namespace w after ns del: %v, want not found", err)
	}
	l.must("", "ns", "add", "w")
}

func kubeClientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("the lab's kubeconfig: %v", err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
