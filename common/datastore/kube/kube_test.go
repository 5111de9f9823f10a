package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// repoRoot finds the module root, for installer/kubernetes/crds.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(data), "module github.com/tortie-net/tortie\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root (go.mod of github.com/tortie-net/tortie) not found")
		}
		dir = parent
	}
}

func crdDir(t testing.TB) string {
	return filepath.Join(repoRoot(t), "installer", "kubernetes", "crds")
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// crdsInstalled remembers the API servers that have the CRDs.
var crdsInstalled sync.Map // *testenv.KubeAPI → bool

// newBackend connects to k and installs the CRDs once per API server.
func newBackend(t testing.TB, k *testenv.KubeAPI) *Backend {
	t.Helper()
	b, err := New(Config{RESTConfig: k.RestConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if _, done := crdsInstalled.Load(k); !done {
		if err := b.EnsureCRDs(ctxFor(t), os.DirFS(crdDir(t))); err != nil {
			t.Fatalf("EnsureCRDs: %v", err)
		}
		crdsInstalled.Store(k, true)
	}
	return b
}

func clientset(t testing.TB, k *testenv.KubeAPI) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// ensureNamespace creates a namespace (and its default service account, which no controller creates
// here) if missing.
func ensureNamespace(t testing.TB, cs kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	ctx := ctxFor(t)
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	_, err = cs.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating service account %s/default: %v", name, err)
	}
}

// cleanCRs deletes every custom resource of every CRD kind, and the Kubernetes NetworkPolicies, so
// that the conformance suite starts from an empty datastore.
func cleanCRs(t testing.TB, b *Backend, cs kubernetes.Interface) {
	t.Helper()
	ctx := ctxFor(t)
	for _, info := range api.Kinds() {
		h, ok := b.handlers[info.Kind].(*crdHandler)
		if !ok {
			if np, isNP := b.handlers[info.Kind].(*networkPolicyHandler); isNP {
				h = np.crdHandler
			} else {
				continue
			}
		}
		c := h.src.client(b, "")
		l, err := c.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("cleaning %s: %v", info.Plural, err)
		}
		for _, u := range l.Items {
			var err error
			if info.Namespaced {
				err = b.dyn.Resource(h.src.gvr).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{})
			} else {
				err = b.dyn.Resource(h.src.gvr).Delete(ctx, u.GetName(), metav1.DeleteOptions{})
			}
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatalf("cleaning %s %s: %v", info.Kind, u.GetName(), err)
			}
		}
	}
	nps, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, np := range nps.Items {
		if err := cs.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	cs := clientset(t, k)
	dstest.Run(t, func(t *testing.T) datastore.Backend {
		b := newBackend(t, k)
		ensureNamespace(t, cs, dstest.NamespaceA, nil)
		ensureNamespace(t, cs, dstest.NamespaceB, nil)
		cleanCRs(t, b, cs)
		return b
	})
}

func TestNewFromKubeconfig(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	// KUBECONFIG semantics: a list of files, missing ones skipped.
	path := strings.Join([]string{filepath.Join(t.TempDir(), "missing"), k.Kubeconfig()}, string(os.PathListSeparator))
	b, err := New(Config{Kubeconfig: path, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctxFor(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if _, err := New(Config{Kubeconfig: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Errorf("New with only a missing kubeconfig succeeded")
	}
}

func TestUnknownAndScope(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	ctx := ctxFor(t)
	if _, err := b.Get(ctx, datastore.Key{Kind: "NoSuchKind", Name: "x"}); err == nil || !strings.Contains(err.Error(), "NoSuchKind") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := b.Get(ctx, datastore.Key{Kind: api.KindIPPool, Namespace: "ns", Name: "x"}); err == nil {
		t.Errorf("namespace on a cluster-scoped kind: no error")
	}
	if _, err := b.Get(ctx, datastore.Key{Kind: api.KindNetworkPolicy, Name: "x"}); err == nil {
		t.Errorf("no namespace on a namespaced kind: no error")
	}
	b2 := newBackend(t, k)
	b2.Close()
	if _, _, err := b2.List(ctx, datastore.ListOptions{Kind: api.KindIPPool}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("List after Close: %v", err)
	}
}

// TestWatchCompacted watches from a resourceVersion older than anything the API server keeps for the
// custom resources (their watch caches start when the CRDs are installed, long after revision 1): the
// watch must end with ErrCompacted. Built-in resources are left out: their caches start with the API
// server, and etcd still has revision 1 until its first compaction, so such a watch replays history.
func TestWatchCompacted(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	ctx := ctxFor(t)
	_, rev, err := b.List(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy})
	if err != nil {
		t.Fatal(err)
	}
	revs, err := parseRevision(rev, []string{"crd", "knp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, rev string }{
		{api.KindIPPool, "1"},
		{api.KindGlobalNetworkPolicy, "1"},
		// One part of a composite revision is too old: the whole watch ends.
		{api.KindNetworkPolicy, "crd:1;knp:" + revs["knp"]},
	} {
		w, err := b.Watch(ctx, datastore.ListOptions{Kind: tc.kind}, tc.rev)
		if err != nil {
			if !errors.Is(err, datastore.ErrCompacted) {
				t.Errorf("%s: Watch from %s: %v, want ErrCompacted", tc.kind, tc.rev, err)
			}
			continue
		}
		select {
		case ev, ok := <-w.Events():
			if !ok || ev.Type != datastore.Error || !errors.Is(ev.Err, datastore.ErrCompacted) {
				t.Errorf("%s: Watch from %s: got %v %v (open %v), want an Error event wrapping ErrCompacted", tc.kind, tc.rev, ev.Type, ev.Err, ok)
			} else if !strings.Contains(ev.Err.Error(), "Kubernetes datastore") {
				t.Errorf("%s: error %q does not say where", tc.kind, ev.Err)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no event", tc.kind)
		}
		if _, ok := <-w.Events(); ok {
			t.Errorf("%s: the watch goes on after its error", tc.kind)
		}
		w.Stop()
	}
}

// TestWatchResumes makes the API server end every watch request after two seconds: the tortie watch
// resumes each time from the last resourceVersion, losing and repeating nothing, and a watch of a
// merged kind resumes each of its sources.
func TestWatchResumes(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	b.watchTimeout = 2 * time.Second
	cs := clientset(t, k)
	ensureNamespace(t, cs, "resume", nil)
	ctx := ctxFor(t)
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: "resume"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 3 {
		time.Sleep(2500 * time.Millisecond) // the watch requests have ended and been resumed
		np := api.NewNetworkPolicy()
		np.Namespace, np.Name = "resume", fmt.Sprintf("np-%d", i)
		created, err := b.Create(ctx, np)
		if err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, w)
		if ev.Type != datastore.Added || ev.Key.Name != np.Name || ev.Object.GetResourceVersion() != created.GetResourceVersion() {
			t.Fatalf("round %d: event %s %s at %s, want Added %s at %s", i, ev.Type, ev.Key, ev.Object.GetResourceVersion(), np.Name, created.GetResourceVersion())
		}
	}
	select {
	case ev := <-w.Events():
		t.Errorf("unexpected event %s %s (%v)", ev.Type, ev.Key, ev.Err)
	case <-time.After(3 * time.Second):
	}
}
