package etcd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/embedded"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
)

// endpoints of the embedded etcd shared by this package's tests; each test isolates itself with a key
// prefix of its own.
var endpoints []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tortie-etcd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	e, err := embedded.StartEmbedded(ctx, embedded.EmbeddedConfig{
		DataDir:       dir,
		ClientURL:     "http://127.0.0.1:0",
		PeerURL:       "http://127.0.0.1:0",
		UnsafeNoFsync: true,
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting embedded etcd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	endpoints = e.Endpoints()
	code := m.Run()
	stopBenchEtcd()
	e.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var prefixes atomic.Int64

// testLogger sends log lines to the test's log (shown on failure or with -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newBackend returns a backend on the shared etcd under a fresh prefix.
func newBackend(t testing.TB) *etcd.Backend {
	t.Helper()
	b, err := etcd.New(etcd.Config{
		Endpoints: endpoints,
		Prefix:    fmt.Sprintf("/test-%d-%d", os.Getpid(), prefixes.Add(1)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	dstest.Run(t, func(t *testing.T) datastore.Backend { return newBackend(t) })
}

func TestKeyPath(t *testing.T) {
	for _, tc := range []struct {
		key  datastore.Key
		want string
	}{
		{datastore.Key{Kind: api.KindIPPool, Name: "default-ipv4-ippool"}, "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"},
		{datastore.Key{Kind: "networkpolicy", Namespace: "prod", Name: "default.allow-dns"}, "/calico/resources/v3/projectcalico.org/networkpolicies/prod/default.allow-dns"},
		{datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: "kube-system", Name: "node1-k8s-coredns--abc-eth0"}, "/calico/resources/v3/projectcalico.org/workloadendpoints/kube-system/node1-k8s-coredns--abc-eth0"},
		{datastore.Key{Kind: api.KindGlobalNetworkPolicy, Name: "default.deny"}, "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/default.deny"},
	} {
		got, err := etcd.KeyPath(tc.key)
		if err != nil || got != tc.want {
			t.Errorf("KeyPath(%v) = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	for _, bad := range []datastore.Key{
		{Kind: api.KindIPPool, Namespace: "ns", Name: "x"},
		{Kind: api.KindNetworkPolicy, Name: "x"},
		{Kind: api.KindIPPool, Name: "a/b"},
		{Kind: api.KindIPPool},
		{Kind: "Gadget", Name: "x"},
	} {
		if p, err := etcd.KeyPath(bad); err == nil {
			t.Errorf("KeyPath(%v) = %q, want an error", bad, p)
		}
	}
}

// TestStoredForm checks what lands in etcd: Calico's key and the v3 JSON without resourceVersion.
func TestStoredForm(t *testing.T) {
	b := newBackend(t)
	ctx := t.Context()
	np, err := b.Create(ctx, dstest.NetworkPolicy("prod", "allow-frontend"))
	if err != nil {
		t.Fatal(err)
	}
	path, _ := b.Path(datastore.Key{Kind: api.KindNetworkPolicy, Namespace: "prod", Name: "allow-frontend"})
	if !strings.HasSuffix(path, "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-frontend") {
		t.Errorf("path = %q", path)
	}
	resp, err := b.Client().Get(ctx, path)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw Get %s: %v, %d keys", path, err, len(resp.Kvs))
	}
	if got := fmt.Sprint(resp.Kvs[0].ModRevision); got != np.GetResourceVersion() {
		t.Errorf("resourceVersion %s, but the key's ModRevision is %s", np.GetResourceVersion(), got)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &raw); err != nil {
		t.Fatalf("stored value is not JSON: %v", err)
	}
	md, _ := raw["metadata"].(map[string]any)
	if raw["apiVersion"] != "projectcalico.org/v3" || raw["kind"] != "NetworkPolicy" || md["name"] != "allow-frontend" ||
		md["namespace"] != "prod" || md["uid"] == nil || md["creationTimestamp"] == nil || raw["spec"] == nil {
		t.Errorf("stored value lacks the v3 form: %s", resp.Kvs[0].Value)
	}
	if _, ok := md["resourceVersion"]; ok {
		t.Errorf("stored value carries a resourceVersion: %s", resp.Kvs[0].Value)
	}
}

// TestReadsCalicoData reads values as Calico's etcd datastore writes them (calicoctl apply against
// etcd): the key is authoritative for the name and the ModRevision for the revision.
func TestReadsCalicoData(t *testing.T) {
	b := newBackend(t)
	ctx := t.Context()
	root, _ := b.Path(datastore.Key{Kind: api.KindIPPool, Name: "x"})
	root = strings.TrimSuffix(root, "/ippools/x")
	calicoPool := `{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool",` +
		`"uid":"0b1d5b3e-4b1b-4c36-9c55-6f4a2f3f2a11","resourceVersion":"12","creationTimestamp":"2024-03-01T10:00:00Z"},` +
		`"spec":{"cidr":"192.168.0.0/16","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,"blockSize":26,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"]}}`
	put, err := b.Client().Put(ctx, root+"/ippools/default-ipv4-ippool", calicoPool)
	if err != nil {
		t.Fatal(err)
	}
	// Noise that must be ignored: another Calico key family, and keys of the wrong shape.
	for _, k := range []string{root + "/ippools/extra/segment", root + "/ippoolsx/y", "/calico/v1/config/LogSeverityScreen"} {
		if _, err := b.Client().Put(ctx, k, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	objs, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("List = %d objects, want 1", len(objs))
	}
	p := objs[0].(*api.IPPool)
	if p.Name != "default-ipv4-ippool" || p.Spec.CIDR != "192.168.0.0/16" || p.Spec.IPIPMode != api.EncapAlways ||
		p.ResourceVersion != fmt.Sprint(put.Header.Revision) || p.UID == "" {
		t.Errorf("read %+v (rv %s), want Calico's pool at revision %d", p.Spec, p.ResourceVersion, put.Header.Revision)
	}
	// And a CAS update of it works.
	p.Spec.NATOutgoing = false
	if _, err := b.Update(ctx, p); err != nil {
		t.Errorf("updating Calico's pool: %v", err)
	}
}

// TestUndecodableValues: a value that does not decode is left out of lists, and a watch reports it as
// a deletion, so that no receiver keeps acting on data it can no longer read.
func TestUndecodableValues(t *testing.T) {
	b := newBackend(t)
	ctx := t.Context()
	good, err := b.Create(ctx, dstest.IPPool("good", "10.1.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	path, _ := b.Path(datastore.Key{Kind: api.KindIPPool, Name: "good"})
	c := syncertest.New()
	s := datastore.NewSyncer(b, c, []datastore.ListOptions{{Kind: api.KindIPPool}})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() { cancel(); <-done }()
	dstest.WaitFor(t, c, "InSync", func(c *syncertest.Cache) bool { return c.Status() == datastore.InSync && c.Len() == 1 })

	if _, err := b.Client().Put(ctx, path, `{"spec": "not an object"`); err != nil {
		t.Fatal(err)
	}
	dstest.WaitFor(t, c, "the bad value to be dropped", func(c *syncertest.Cache) bool { return c.Len() == 0 })
	objs, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil || len(objs) != 0 {
		t.Errorf("List = %d objects, %v; want the bad value left out", len(objs), err)
	}
	_, err = b.Get(ctx, datastore.Key{Kind: api.KindIPPool, Name: "good"})
	if err == nil || !strings.Contains(err.Error(), "decoding") || !strings.Contains(err.Error(), "good") {
		t.Errorf("Get of the bad value = %v, want a decoding error naming it", err)
	}
	// Deleting it still works and says what was deleted.
	if d, err := b.Delete(ctx, datastore.Key{Kind: api.KindIPPool, Name: "good"}, ""); err != nil || d.GetName() != "good" {
		t.Errorf("Delete of the bad value = %v, %v", d, err)
	}
	_ = good
	dstest.WantNoProblems(t, c)
}

func TestWatchCompacted(t *testing.T) {
	b := newBackend(t)
	ctx := t.Context()
	p, err := b.Create(ctx, dstest.IPPool("p", "10.1.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p.SetLabels(map[string]string{"i": fmt.Sprint(i)})
		if p, err = b.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var rev int64
	fmt.Sscan(p.GetResourceVersion(), &rev)
	if _, err := b.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindIPPool}, fmt.Sprint(rev-3))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.Events():
		if ev.Type != datastore.Error || !errors.Is(ev.Err, datastore.ErrCompacted) {
			t.Errorf("event = %v %v, want Error wrapping ErrCompacted", ev.Type, ev.Err)
		}
	case <-time.After(dstest.Timeout):
		t.Fatal("no event")
	}
	// From the compaction revision itself (watch after rev-1) it still works.
	w2, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindIPPool}, fmt.Sprint(rev-1))
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	select {
	case ev := <-w2.Events():
		if ev.Type != datastore.Modified || ev.Object.GetResourceVersion() != p.GetResourceVersion() {
			t.Errorf("event = %v %v, want the last Modified", ev.Type, ev.Err)
		}
	case <-time.After(dstest.Timeout):
		t.Fatal("no event")
	}
}

func TestErrorsNameTheirObject(t *testing.T) {
	b := newBackend(t)
	ctx := t.Context()
	_, err := b.Get(ctx, datastore.Key{Kind: api.KindIPPool, Name: "missing-pool"})
	if want := `getting IPPool "missing-pool" from etcd: resource does not exist`; err == nil || err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// A dead endpoint: bounded by the request timeout, and says where.
	dead, err := etcd.New(etcd.Config{Endpoints: []string{"http://127.0.0.1:1"}, RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	start := time.Now()
	err = dead.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Ping of a dead endpoint = %v, want an error naming it", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Ping of a dead endpoint took %v", d)
	}
	_, _, err = dead.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err == nil || !strings.Contains(err.Error(), "listing ippools in etcd") {
		t.Errorf("List on a dead endpoint = %v", err)
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{
		"ETCD_ENDPOINTS":    "https://10.0.0.1:2379, https://10.0.0.2:2379",
		"ETCD_CA_CERT_FILE": "/etc/calico/ca.pem",
		"ETCD_CERT_FILE":    "/etc/calico/cert.pem",
		"ETCD_KEY_FILE":     "/etc/calico/key.pem",
	}
	cfg := etcd.ConfigFromEnv(func(k string) string { return env[k] })
	if len(cfg.Endpoints) != 2 || cfg.Endpoints[1] != "https://10.0.0.2:2379" || cfg.CACertFile != "/etc/calico/ca.pem" ||
		cfg.CertFile != "/etc/calico/cert.pem" || cfg.KeyFile != "/etc/calico/key.pem" {
		t.Errorf("ConfigFromEnv = %+v", cfg)
	}
	// Missing TLS files fail at New, naming them.
	if _, err := etcd.New(cfg); err == nil || !strings.Contains(err.Error(), "/etc/calico/cert.pem") {
		t.Errorf("New with missing TLS files = %v", err)
	}
	if _, err := etcd.New(etcd.Config{CertFile: "c.pem"}); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("New with a certificate but no key = %v", err)
	}
	if _, err := etcd.New(etcd.Config{Prefix: "no-slash"}); err == nil {
		t.Errorf("New with a bad prefix succeeded")
	}
}

func TestListPages(t *testing.T) {
	b, err := etcd.New(etcd.Config{Endpoints: endpoints, Prefix: fmt.Sprintf("/test-pages-%d", os.Getpid()), ListPageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	b.Client().Delete(ctx, fmt.Sprintf("/test-pages-%d", os.Getpid()), clientv3.WithPrefix())
	for i := range 10 {
		if _, err := b.Create(ctx, dstest.NetworkPolicy([]string{"a", "a-b"}[i%2], fmt.Sprintf("np-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	objs, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetNamespace()+"/"+o.GetName())
	}
	want := "a/np-00 a/np-02 a/np-04 a/np-06 a/np-08 a-b/np-01 a-b/np-03 a-b/np-05 a-b/np-07 a-b/np-09"
	if strings.Join(got, " ") != want {
		t.Errorf("paged List = %v\nwant %s", got, want)
	}
}
