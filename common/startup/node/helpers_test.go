package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// envOf turns a map into an env function.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// iface builds an Up interface.
func iface(name string, mtu int, addrs ...string) autodetect.Interface {
	ifc := autodetect.Interface{Name: name, Up: true, MTU: mtu}
	for _, a := range addrs {
		ifc.Addrs = append(ifc.Addrs, netip.MustParsePrefix(a))
	}
	return ifc
}

// hostIfaces is a typical node: loopback and eth0 with 10.0.0.5/24.
func hostIfaces(addrs ...string) autodetect.StaticInterfaces {
	if len(addrs) == 0 {
		addrs = []string{"10.0.0.5/24"}
	}
	return autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{
		iface("lo", 65536, "127.0.0.1/8", "::1/128"),
		iface("eth0", 1500, addrs...),
	}}
}

// seeded is deterministic randomness for the GUID, ULA and MACs.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// testOptions returns options for node "node-1" over be with the state files in a temporary
// directory, IPv6 unsupported unless the test says otherwise.
func testOptions(t *testing.T, be datastore.Backend, env map[string]string) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Backend:       be,
		Env:           envOf(env),
		Interfaces:    hostIfaces(),
		Hostname:      func() (string, error) { return "node-1", nil },
		GOOS:          "linux",
		IPv6Supported: func() bool { return false },
		Version:       "v0.0.0-test",
		Rand:          seeded(1),
		Files: Files{
			NodenameFile:       filepath.Join(dir, "calico", "nodename"),
			TortieNodenameFile: filepath.Join(dir, "tortie", "nodename"),
			MTUFile:            filepath.Join(dir, "calico", "mtu"),
		},
	}
}

func run(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func getNode(t *testing.T, be datastore.Backend, name string) *api.Node {
	t.Helper()
	obj, err := be.Get(t.Context(), datastore.Key{Kind: api.KindNode, Name: name})
	if err != nil {
		t.Fatalf("Get Node %s: %v", name, err)
	}
	return obj.(*api.Node)
}

func getObj[T api.Resource](t *testing.T, be datastore.Backend, kind, name string) T {
	t.Helper()
	obj, err := be.Get(t.Context(), datastore.Key{Kind: kind, Name: name})
	if err != nil {
		t.Fatalf("Get %s %s: %v", kind, name, err)
	}
	return obj.(T)
}

func listPools(t *testing.T, be datastore.Backend) []*api.IPPool {
	t.Helper()
	objs, _, err := be.List(t.Context(), datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.IPPool
	for _, o := range objs {
		out = append(out, o.(*api.IPPool))
	}
	return out
}

func createPool(t *testing.T, be datastore.Backend, name, cidr string, mutate func(*api.IPPoolSpec)) *api.IPPool {
	t.Helper()
	p := api.NewIPPool()
	p.Name = name
	p.Spec.CIDR = cidr
	if mutate != nil {
		mutate(&p.Spec)
	}
	api.SetDefaults(p)
	out, err := be.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("creating pool %s: %v", name, err)
	}
	return out.(*api.IPPool)
}

func updatePool(t *testing.T, be datastore.Backend, name string, mutate func(*api.IPPoolSpec)) {
	t.Helper()
	p := getObj[*api.IPPool](t, be, api.KindIPPool, name)
	mutate(&p.Spec)
	if _, err := be.Update(t.Context(), p); err != nil {
		t.Fatalf("updating pool %s: %v", name, err)
	}
}

// revisions returns "kind/name@rv" for every stored object of the kinds startup touches, for checking
// that a second run wrote nothing.
func revisions(t *testing.T, be datastore.Backend) []string {
	t.Helper()
	var out []string
	for _, k := range []string{api.KindNode, api.KindIPPool, api.KindClusterInformation, api.KindFelixConfiguration,
		api.KindBGPConfiguration, api.KindIPAMConfig, api.KindTier, api.KindIPAMBlock, api.KindIPAMHandle, api.KindBlockAffinity} {
		objs, _, err := be.List(t.Context(), datastore.ListOptions{Kind: k})
		if err != nil {
			t.Fatalf("List %s: %v", k, err)
		}
		for _, o := range objs {
			out = append(out, k+"/"+o.GetName()+"@"+o.GetResourceVersion())
		}
	}
	sort.Strings(out)
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// kddBackend makes a memory backend behave like the Kubernetes datastore for Nodes: a Node cannot be
// created through the datastore (the kubelet registers it); tests add it with addK8sNode.
type kddBackend struct {
	*memory.Backend
}

func (b kddBackend) Create(ctx context.Context, obj api.Resource) (api.Resource, error) {
	if _, ok := obj.(*api.Node); ok {
		return nil, errors.Join(errors.New("creating a Node in the Kubernetes datastore"), datastore.ErrUnsupported)
	}
	return b.Backend.Create(ctx, obj)
}

func (b kddBackend) addK8sNode(ctx context.Context, name string, labels map[string]string) error {
	n := api.NewNode()
	n.Name = name
	n.Labels = labels
	n.Spec.OrchRefs = []api.OrchRef{{NodeName: name, Orchestrator: api.OrchestratorKubernetes}}
	_, err := b.Backend.Create(ctx, n)
	return err
}

// flakyBackend fails the first failures Node updates with ErrConflict, after changing the stored Node
// (as a concurrent writer would).
type flakyBackend struct {
	datastore.Backend
	mu       sync.Mutex
	failures int
	bumped   int
}

func (b *flakyBackend) Update(ctx context.Context, obj api.Resource) (api.Resource, error) {
	if n, ok := obj.(*api.Node); ok {
		b.mu.Lock()
		fail := b.failures > 0
		if fail {
			b.failures--
			b.bumped++
		}
		b.mu.Unlock()
		if fail {
			// A concurrent writer adds a label; our write must keep it.
			cur, err := b.Get(ctx, datastore.Key{Kind: api.KindNode, Name: n.Name})
			if err != nil {
				return nil, err
			}
			cn := cur.(*api.Node)
			if cn.Labels == nil {
				cn.Labels = map[string]string{}
			}
			cn.Labels["concurrent"] = "writer"
			if _, err := b.Backend.Update(ctx, cn); err != nil {
				return nil, err
			}
			return nil, errors.Join(errors.New("injected"), datastore.ErrConflict)
		}
	}
	return b.Backend.Update(ctx, obj)
}

// signalHandler is a slog.Handler that logs through t.Log and closes a channel the first time a
// record with the given message is logged.
type signalHandler struct {
	t    *testing.T
	msg  string
	once *sync.Once
	ch   chan struct{}
	slog.Handler
}

func newSignalLogger(t *testing.T, msg string) (*slog.Logger, <-chan struct{}) {
	h := &signalHandler{t: t, msg: msg, once: &sync.Once{}, ch: make(chan struct{}),
		Handler: slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})}
	return slog.New(h), h.ch
}

func (h *signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h *signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(as)
	return &c
}

func (h *signalHandler) WithGroup(g string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(g)
	return &c
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
