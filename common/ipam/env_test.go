package ipam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one datastore the stress tests run against. open returns a new connection to it: each
// simulated node gets its own, as separate processes would.
type env struct {
	name string
	open func(t testing.TB) datastore.Backend
	// scale divides the work of the random crash test (kube-apiserver is much slower than etcd).
	scale int
}

// nopClose shares one in-memory backend between "nodes".
type nopClose struct{ datastore.Backend }

func (nopClose) Close() error { return nil }

func memoryEnv(t testing.TB) env {
	b := newMemory(t)
	return env{name: "memory", scale: 1, open: func(testing.TB) datastore.Backend { return nopClose{b} }}
}

// etcdEnv uses the test binary's embedded etcd with a key prefix of its own.
func etcdEnv(t testing.TB) env {
	eps := testenv.Etcd(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	prefix := "/ipamtest-" + hex.EncodeToString(rnd[:])
	return env{name: "etcd", scale: 1, open: func(t testing.TB) datastore.Backend {
		b, err := etcd.New(etcd.Config{Endpoints: eps, Prefix: prefix, RequestTimeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("etcd backend: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}}
}

// crdDir finds the CRD manifests: installer/kubernetes/crds, or TORTIE_CRD_DIR.
func crdDir(t testing.TB) string {
	for _, env := range []string{"TORTIE_CRD_DIR", "TMP_TORTIE_CRD_DIR"} {
		if d := os.Getenv(env); d != "" {
			return d
		}
	}
	dir, _ := os.Getwd()
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/tortie-net/tortie\n") {
			d := filepath.Join(dir, "installer", "kubernetes", "crds")
			if _, err := os.Stat(d); err != nil {
				testenv.Unavailable(t, "CRD manifests not found at %s (generate them, or set TORTIE_CRD_DIR)", d)
			}
			return d
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			testenv.Unavailable(t, "module root not found, so no CRD manifests")
		}
		dir = parent
	}
}

var kubeCRDs sync.Map // *testenv.KubeAPI → true once the CRDs are installed

// kubeEnv uses the test binary's kube-apiserver; IPAM objects are cluster-scoped, so the kinds IPAM
// uses are wiped first (kube tests therefore never run in parallel).
func kubeEnv(t testing.TB) env {
	k := testenv.KubeAPIServer(t)
	open := func(t testing.TB) datastore.Backend {
		b, err := kube.New(kube.Config{RESTConfig: k.RestConfig(), RequestTimeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("kube backend: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	first := open(t).(*kube.Backend)
	if _, done := kubeCRDs.Load(k); !done {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := first.EnsureCRDs(ctx, os.DirFS(crdDir(t))); err != nil {
			t.Fatalf("installing CRDs: %v", err)
		}
		kubeCRDs.Store(k, true)
	}
	wipe(t, first)
	return env{name: "kube", scale: 2, open: open}
}

// wipe deletes every object of the kinds IPAM reads and writes.
func wipe(t testing.TB, b datastore.Backend) {
	t.Helper()
	ctx := testCtx(t)
	for _, kind := range []string{api.KindIPAMBlock, api.KindBlockAffinity, api.KindIPAMHandle, api.KindIPPool, api.KindIPAMConfig, api.KindIPReservation} {
		objs, _, err := b.List(ctx, datastore.ListOptions{Kind: kind})
		if err != nil {
			t.Fatalf("wiping %s: %v", kind, err)
		}
		for _, o := range objs {
			if _, err := b.Delete(ctx, datastore.Key{Kind: kind, Name: o.GetName()}, ""); err != nil && !errors.Is(err, datastore.ErrNotFound) {
				t.Fatalf("wiping %s %s: %v", kind, o.GetName(), err)
			}
		}
	}
}

// forEachEnv runs f on memory always, and on etcd and the kube-apiserver when testenv provides them
// (skipped with the reason otherwise; failed under TORTIE_REQUIRE_SERVICES=1).
func forEachEnv(t *testing.T, f func(t *testing.T, e env)) {
	for _, mk := range []struct {
		name string
		mk   func(testing.TB) env
	}{{"memory", memoryEnv}, {"etcd", etcdEnv}, {"kube", kubeEnv}} {
		t.Run(mk.name, func(t *testing.T) { f(t, mk.mk(t)) })
	}
}

// crashBackend simulates a process dying in the middle of an operation: from the failAt-th write on
// (Create, Update, Delete; 1-based), every call fails, as if the process were gone. With cancel set the
// "crash" cancels the operation's context instead (the client sees its own context end).
type crashBackend struct {
	datastore.Backend
	mu      sync.Mutex
	writes  int
	failAt  int // 0: never
	dead    bool
	cancel  context.CancelFunc
	crashed bool
}

var errCrash = errors.New("simulated crash")

func (c *crashBackend) before(ctx context.Context, write bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errCrash
	}
	if write {
		c.writes++
		if c.failAt > 0 && c.writes >= c.failAt {
			c.crashed = true
			if c.cancel != nil {
				c.cancel()
			} else {
				c.dead = true
				return errCrash
			}
		}
	}
	if err := ctx.Err(); err != nil {
		c.dead = true
		return fmt.Errorf("%w (%w)", errCrash, err)
	}
	return nil
}

func (c *crashBackend) Get(ctx context.Context, k datastore.Key) (api.Resource, error) {
	if err := c.before(ctx, false); err != nil {
		return nil, err
	}
	return c.Backend.Get(ctx, k)
}

func (c *crashBackend) List(ctx context.Context, o datastore.ListOptions) ([]api.Resource, string, error) {
	if err := c.before(ctx, false); err != nil {
		return nil, "", err
	}
	return c.Backend.List(ctx, o)
}

func (c *crashBackend) Create(ctx context.Context, o api.Resource) (api.Resource, error) {
	if err := c.before(ctx, true); err != nil {
		return nil, err
	}
	return c.Backend.Create(ctx, o)
}

func (c *crashBackend) Update(ctx context.Context, o api.Resource) (api.Resource, error) {
	if err := c.before(ctx, true); err != nil {
		return nil, err
	}
	return c.Backend.Update(ctx, o)
}

func (c *crashBackend) Delete(ctx context.Context, k datastore.Key, rev string) (api.Resource, error) {
	if err := c.before(ctx, true); err != nil {
		return nil, err
	}
	return c.Backend.Delete(ctx, k, rev)
}

func (c *crashBackend) Close() error { return nil }
