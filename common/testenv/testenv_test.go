package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestEtcdEmbedded(t *testing.T) {
	eps := testenv.Etcd(t)
	if again := testenv.Etcd(t); !slices.Equal(eps, again) {
		t.Errorf("second Etcd call gave %v, want the shared %v", again, eps)
	}
	c := testenv.EtcdClient(t, eps)
	ctx := t.Context()
	if _, err := c.Put(ctx, "/testenv/embedded/a", "1"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(ctx, "/testenv/embedded/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("got %v, want one key with value 1", resp.Kvs)
	}

	testenv.EtcdClean(t, eps)
	resp, err = c.Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("after EtcdClean, %d keys remain", resp.Count)
	}
}

func TestEtcdProcessRestart(t *testing.T) {
	p := testenv.EtcdProcess(t)
	eps := p.Endpoints()
	c := testenv.EtcdClient(t, eps)
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	w := c.Watch(ctx, "k")

	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("Running after Kill")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Endpoints(), eps) {
		t.Errorf("endpoints changed across restart: %v -> %v", eps, p.Endpoints())
	}
	// The data survives and the watch resumes on the restarted server.
	getCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := c.Get(getCtx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" {
		t.Fatalf("after restart got %v, want k=before", resp.Kvs)
	}
	if _, err := c.Put(getCtx, "k", "after"); err != nil {
		t.Fatal(err)
	}
	// The resumed watch may replay the earlier write too; wait for ours.
	for seen := false; !seen; {
		select {
		case wr := <-w:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range wr.Events {
				seen = seen || string(ev.Kv.Value) == "after"
			}
		case <-getCtx.Done():
			t.Fatal("watch did not see k=after once etcd restarted")
		}
	}

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestKubeAPIServer(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	if testenv.KubeAPIServer(t) != k {
		t.Error("second KubeAPIServer call did not return the shared instance")
	}
	cs := kubernetes.NewForConfigOrDie(k.RestConfig())
	listNamespaces(t, cs)

	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver %s", v.GitVersion)

	// The kubeconfig file works through client-go's loaders, as KUBECONFIG.
	t.Setenv("KUBECONFIG", k.Kubeconfig())
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	listNamespaces(t, kubernetes.NewForConfigOrDie(cfg))
}

func TestKubeAPIServerRestart(t *testing.T) {
	k := testenv.NewKubeAPIServer(t)
	cs := kubernetes.NewForConfigOrDie(k.RestConfig())
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restart-test"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := k.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("list succeeded with the API server stopped")
	}
	if err := k.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(listNamespaces(t, cs), ns.Name) {
		t.Errorf("namespace %s lost across API server restart", ns.Name)
	}

	// Same with etcd: the API server survives and serves the old data.
	if err := k.StopEtcd(); err != nil {
		t.Fatal(err)
	}
	if err := k.StartEtcd(); err != nil {
		t.Fatal(err)
	}
	if err := k.WaitReady(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(listNamespaces(t, cs), ns.Name) {
		t.Errorf("namespace %s lost across etcd restart", ns.Name)
	}
}

func TestKubeconfigFile(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	data, err := os.ReadFile(k.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), k.Host()) {
		t.Errorf("kubeconfig %s does not name %s:\n%s", k.Kubeconfig(), k.Host(), data)
	}
	if filepath.Base(k.Kubeconfig()) != "kubeconfig" {
		t.Errorf("unexpected kubeconfig path %s", k.Kubeconfig())
	}
}

func TestRequireRoot(t *testing.T) {
	testenv.RequireRoot(t)
	if os.Geteuid() != 0 {
		t.Fatal("RequireRoot did not skip for a non-root user")
	}
}

func TestFreePort(t *testing.T) {
	a, b := testenv.FreePort(t), testenv.FreePort(t)
	if a <= 0 || b <= 0 {
		t.Fatalf("FreePort gave %d, %d", a, b)
	}
}

func listNamespaces(t *testing.T, cs kubernetes.Interface) []string {
	t.Helper()
	list, err := cs.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing namespaces: %v", err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	if !slices.Contains(names, "default") {
		t.Errorf("namespaces %v lack default", names)
	}
	return names
}
