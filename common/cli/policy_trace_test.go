package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/testenv"
)

// traceCases run against a cluster holding testdata/trace/calico.yaml plus pods shop/frontend
// (10.65.0.1, node1) and shop/db (10.65.0.2, node2) labelled app=<name>, in whatever datastore.
func traceCases(t *testing.T, r runner) {
	t.Helper()
	tests := []struct {
		name string
		args []string
		want []string // lines the text output must contain
	}{
		{"frontend reaches db on 5432", []string{"--src", "shop/frontend", "--dst", "shop/db", "--proto", "TCP", "--port", "5432"}, []string{
			"Verdict: Allow",
			"Egress at shop/frontend: Allow",
			"  decided by a profile (no tier decided)",
			"Ingress at shop/db: Allow",
			"tier security, policy security/GlobalNetworkPolicy/block-bad-net: rule 1: Pass",
			"rule 0: Allow",
			"  decided by a rule in tier default",
		}},
		{"db port 80 is denied by the tier default", []string{"--src", "shop/frontend", "--dst", "10.65.0.2", "--proto", "TCP", "--port", "80"}, []string{
			"Verdict: Deny",
			"Ingress at 10.65.0.2: Deny",
			"no rule matched",
			"  decided by the default action (Deny) of tier default",
		}},
		{"bad network blocked by the security tier", []string{"--src", "203.0.113.9", "--dst", "shop/frontend", "--proto", "TCP", "--port", "443"}, []string{
			"Verdict: Deny",
			"Egress at 203.0.113.9: Allow",
			"  203.0.113.9 is not a tortie endpoint: no policy applies on this side",
			"tier security, policy security/GlobalNetworkPolicy/block-bad-net: rule 0: Deny",
		}},
		{"other networks pass to the profile", []string{"--src", "198.51.100.1", "--dst", "shop/frontend", "--proto", "UDP", "--port", "53"}, []string{
			"Verdict: Allow",
			"rule 1: Pass",
			"profile kns.shop: rule 0: Allow",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := r.must(0, "", append([]string{"policy", "trace"}, tc.args...)...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// JSON: each side carries its verdict and what decided it.
	out, _ := r.must(0, "", "policy", "trace", "--src", "shop/frontend", "--dst", "shop/db", "--proto", "tcp", "--port", "80", "-o", "json")
	var got struct {
		Verdict string `json:"verdict"`
		Egress  struct {
			Verdict, DecidedBy, Node string
		} `json:"egress"`
		Ingress struct {
			Verdict   string `json:"verdict"`
			DecidedBy string `json:"decidedBy"`
			Tier      string `json:"tier"`
			Node      string `json:"node"`
			Steps     []struct {
				Policy string `json:"policy"`
				Rule   int    `json:"rule"`
			} `json:"steps"`
		} `json:"ingress"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if got.Verdict != "Deny" || got.Egress.Verdict != "Allow" || got.Egress.DecidedBy != "profile" || got.Egress.Node != "node1" ||
		got.Ingress.Verdict != "Deny" || got.Ingress.DecidedBy != "tier-default" || got.Ingress.Tier != "default" || got.Ingress.Node != "node2" {
		t.Errorf("-o json: %+v\n%s", got, out)
	}
	if len(got.Ingress.Steps) != 2 || got.Ingress.Steps[1].Rule != -1 || !strings.HasSuffix(got.Ingress.Steps[1].Policy, "db-from-frontend") {
		t.Errorf("-o json ingress steps: %+v", got.Ingress.Steps)
	}
	// Mistakes are usage errors that say what to do.
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--src", "shop/frontend", "--dst", "shop/db"}, 2, "--port 0-65535 is required for TCP"},
		{[]string{"--src", "shop/frontend", "--dst", "shop/db", "--proto", "GRE"}, 2, `--proto "GRE": use TCP, UDP, SCTP or ICMP`},
		{[]string{"--src", "frontend", "--dst", "shop/db", "--port", "1"}, 2, `--src "frontend" is neither NAMESPACE/POD nor an IP address`},
		{[]string{"--src", "shop/nope", "--dst", "shop/db", "--port", "1"}, 1, "--src shop/nope: no such pod endpoint"},
	} {
		_, stderr := r.must(bad.code, "", append([]string{"policy", "trace"}, bad.args...)...)
		if !strings.Contains(stderr, bad.want) {
			t.Errorf("policy trace %v: stderr lacks %q:\n%s", bad.args, bad.want, stderr)
		}
	}
}

// TestPolicyTraceEtcd traces on a real etcd.
func TestPolicyTraceEtcd(t *testing.T) {
	r := runner{t: t, env: etcdEnv(t)}
	r.must(0, "", "apply", "-f", "testdata/trace/etcd-endpoints.yaml")
	r.must(0, "", "apply", "-f", "testdata/trace/calico.yaml")
	traceCases(t, r)

	// An invalid policy is reported and fails closed for what it selects.
	bad := `{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"uses-services"},
	  "spec":{"selector":"app == 'frontend'","ingress":[{"action":"Allow","source":{"services":{"name":"x","namespace":"shop"}}}]}}`
	r.must(0, bad, "apply", "-f", "-")
	out, _ := r.must(0, "", "policy", "trace", "--src", "198.51.100.1", "--dst", "shop/frontend", "--proto", "UDP", "--port", "53")
	for _, w := range []string{"Verdict: Deny", "[invalid: spec.ingress[0]: services matches are not supported", `GlobalNetworkPolicy "uses-services"`} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestPolicyTraceKubernetes traces on a real kube-apiserver: pods, namespaces and a Kubernetes
// NetworkPolicy as Kubernetes objects, the tier and Calico policies as custom resources.
func TestPolicyTraceKubernetes(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	kb, err := kube.New(kube.Config{Kubeconfig: k.Kubeconfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.EnsureCRDs(t.Context(), os.DirFS(filepath.Join("..", "..", "installer", "kubernetes", "crds"))); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// No controller manager runs: create the service account pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "shop"}}
	if _, err := cs.CoreV1().ServiceAccounts("shop").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, node, ip string }{{"frontend", "node1", "10.65.0.1"}, {"db", "node2", "10.65.0.2"}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: "shop", Labels: map[string]string{"app": p.name}},
			Spec: corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "c", Image: "registry.example/app"}}}}
		created, err := cs.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			created, err = cs.CoreV1().Pods("shop").Get(ctx, p.name, metav1.GetOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}}}
		if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := runner{t: t, env: map[string]string{"DATASTORE_TYPE": "kubernetes", "KUBECONFIG": k.Kubeconfig()}}
	r.must(0, "", "apply", "-f", "testdata/trace/calico.yaml")
	traceCases(t, r)

	// A Kubernetes NetworkPolicy (converted, default tier, order 1000) denying the db's ingress from
	// everything but port 5432 changes nothing for 5432 and shows up in the trace.
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(5432)
	knp := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}}}}}
	if _, err := cs.NetworkingV1().NetworkPolicies("shop").Create(ctx, knp, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	out, _ := r.must(0, "", "policy", "trace", "--src", "10.9.9.9", "--dst", "shop/db", "--proto", "TCP", "--port", "5432", "-o", "json")
	var got struct {
		Verdict string `json:"verdict"`
		Ingress struct {
			Steps []struct {
				Policy string `json:"policy"`
				Rule   int    `json:"rule"`
				Action string `json:"action"`
			} `json:"steps"`
		} `json:"ingress"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	type step = struct {
		Policy string `json:"policy"`
		Rule   int    `json:"rule"`
		Action string `json:"action"`
	}
	want := []step{
		{Policy: "security/GlobalNetworkPolicy/block-bad-net", Rule: 1, Action: "Pass"},
		{Policy: "default/KubernetesNetworkPolicy/shop/knp.default.db", Rule: 0, Action: "Allow"},
	}
	if got.Verdict != "Allow" {
		t.Errorf("verdict %s, want Allow:\n%s", got.Verdict, out)
	}
	if diff := cmp.Diff(want, got.Ingress.Steps); diff != "" {
		t.Errorf("ingress steps (-want +got):\n%s", diff)
	}
}
