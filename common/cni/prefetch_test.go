package cni

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// events records, in order, what the backend, the locker and the pod network were asked to do.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.log
	e.log = nil
	return l
}

// recBackend records datastore calls as "read <kind>" and "write <kind>".
type recBackend struct {
	datastore.Backend
	ev *events
}

func (r recBackend) Get(ctx context.Context, k datastore.Key) (api.Resource, error) {
	r.ev.add("read " + k.Kind)
	return r.Backend.Get(ctx, k)
}

func (r recBackend) List(ctx context.Context, o datastore.ListOptions) ([]api.Resource, string, error) {
	r.ev.add("read " + o.Kind)
	return r.Backend.List(ctx, o)
}

func (r recBackend) Create(ctx context.Context, o api.Resource) (api.Resource, error) {
	info, _ := api.KindOf(o)
	r.ev.add("write " + info.Kind)
	return r.Backend.Create(ctx, o)
}

func (r recBackend) Update(ctx context.Context, o api.Resource) (api.Resource, error) {
	info, _ := api.KindOf(o)
	r.ev.add("write " + info.Kind)
	return r.Backend.Update(ctx, o)
}

func (r recBackend) Delete(ctx context.Context, k datastore.Key, rev string) (api.Resource, error) {
	r.ev.add("write " + k.Kind)
	return r.Backend.Delete(ctx, k, rev)
}

// recLocker is a non-reentrant lock that records "lock" and "unlock" and fails the test when it is
// taken while held (flock on a second descriptor would wait for the first: a self-deadlock).
type recLocker struct {
	t    *testing.T
	ev   *events
	mu   sync.Mutex
	held bool
}

func (l *recLocker) Lock(context.Context) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		l.t.Error("the IPAM lock was taken while already held")
		return nil, errors.New("already held")
	}
	l.held = true
	l.ev.add("lock")
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.held = false
		l.ev.add("unlock")
	}, nil
}

// recPodNetwork records "setup".
type recPodNetwork struct {
	*fakePodNetwork
	ev *events
}

func (d recPodNetwork) Setup(ctx context.Context, r InterfaceRequest) (*InterfaceResult, error) {
	d.ev.add("setup")
	return d.fakePodNetwork.Setup(ctx, r)
}

func (e *env) recPlugin(t *testing.T, ev *events, hints BlockHints) *Plugin {
	p := e.plugin("")
	p.Backend = recBackend{Backend: e.mem, ev: ev}
	p.IPAM = ipam.New(p.Backend) // a new process's IPAM: no memory of earlier allocations
	p.Lock = &recLocker{t: t, ev: ev}
	p.PodNetwork = recPodNetwork{fakePodNetwork: e.dp, ev: ev}
	p.Hints = hints
	return p
}

// before reports whether a comes before b in log (both present).
func before(log []string, a, b string) bool {
	i, j := slices.Index(log, a), slices.Index(log, b)
	return i >= 0 && j >= 0 && i < j
}

func TestAddReadsInOneRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ev := &events{}
	hints := FileBlockHints{Path: filepath.Join(t.TempDir(), HintsFileName)}
	if _, err := e.recPlugin(t, ev, hints).Add(ctx, cmdArgs("c1", "web1", "")); err != nil {
		t.Fatal(err)
	}
	first := ev.take()
	ips := e.handleIPs("net1.c1")
	if len(ips) != 1 {
		t.Fatalf("handle holds %v", ips)
	}
	// The lock is held for IPAM's reads and released before the interface is set up.
	if !before(first, "lock", "read "+api.KindIPPool) || !before(first, "unlock", "setup") {
		t.Errorf("events %q: want the lock before IPAM's reads and released before the interface is set up", first)
	}
	got := hints.Load("net1", "node-1")
	if len(got) != 1 || !got[0].Contains(ips[0]) {
		t.Fatalf("hint %v after allocating %v", got, ips)
	}

	// The next ADD (a new process) reads everything — readiness, IPAM's state and the hinted block —
	// before its first write, and nothing after it: one read round trip.
	if _, err := e.recPlugin(t, ev, hints).Add(ctx, cmdArgs("c2", "web2", "")); err != nil {
		t.Fatal(err)
	}
	second := ev.take()
	var reads []string
	wrote := false
	for _, x := range second {
		switch {
		case strings.HasPrefix(x, "read "):
			if wrote {
				t.Errorf("%s after a write: %q", x, second)
			}
			reads = append(reads, x)
		case strings.HasPrefix(x, "write "):
			wrote = true
		}
	}
	for _, want := range []string{"read " + api.KindClusterInformation, "read " + api.KindIPPool, "read " + api.KindBlockAffinity, "read " + api.KindIPAMBlock} {
		if !slices.Contains(reads, want) {
			t.Errorf("reads %q lack %q", reads, want)
		}
	}
	if ips2 := e.handleIPs("net1.c2"); len(ips2) != 1 || !got[0].Contains(ips2[0]) {
		t.Errorf("second ADD allocated %v, not from the hinted block %v", ips2, got)
	}
}

func TestAddNotReadyWritesNothing(t *testing.T) {
	e := newEnv(t)
	ci := api.NewClusterInformation()
	ci.Name = api.DefaultConfigName
	notReady := false
	ci.Spec.DatastoreReady = &notReady
	if _, err := e.mem.Create(t.Context(), ci); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	_, err := e.recPlugin(t, ev, FileBlockHints{Path: filepath.Join(t.TempDir(), HintsFileName)}).Add(t.Context(), cmdArgs("c1", "web", ""))
	if code(err) != CodeTryAgainLater {
		t.Fatalf("ADD while not ready: %v, want code %d", err, CodeTryAgainLater)
	}
	for _, x := range ev.take() {
		if strings.HasPrefix(x, "write ") || x == "setup" {
			t.Errorf("ADD while not ready did %s", x)
		}
	}
	if ips := e.handleIPs("net1.c1"); len(ips) != 0 {
		t.Errorf("handle holds %v", ips)
	}
}

func TestAddRollbackRetakesLock(t *testing.T) {
	e := newEnv(t)
	e.dp.fail = errors.New("injected")
	ev := &events{}
	_, err := e.recPlugin(t, ev, nil).Add(t.Context(), cmdArgs("c1", "web", ""))
	if code(err) != CodeDataplaneFailed {
		t.Fatalf("ADD: %v", err)
	}
	if ips := e.handleIPs("net1.c1"); len(ips) != 0 {
		t.Errorf("the failed ADD left %v allocated", ips)
	}
	log := ev.take()
	if n := strings.Count(strings.Join(log, ","), "unlock"); n != 2 {
		t.Errorf("events %q: want the lock taken and released twice (allocation, rollback)", log)
	}
}

func TestIPAMAddReadsInOneRoundTrip(t *testing.T) {
	e := newEnv(t)
	ev := &events{}
	hints := FileBlockHints{Path: filepath.Join(t.TempDir(), HintsFileName)}
	for _, id := range []string{"c1", "c2"} {
		if _, err := e.recPlugin(t, ev, hints).IPAMAdd(t.Context(), cmdArgs(id, "web-"+id, "")); err != nil {
			t.Fatal(err)
		}
	}
	log := ev.take()
	// The readiness check comes after the lock, with IPAM's reads (not before the lock).
	if !before(log, "lock", "read "+api.KindClusterInformation) {
		t.Errorf("events %q", log)
	}
	if len(hints.Load("net1", "node-1")) != 1 {
		t.Errorf("no hint stored: %v", hints.Load("net1", "node-1"))
	}
}

func TestFileBlockHints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", HintsFileName)
	h := FileBlockHints{Path: path}
	if got := h.Load("net1", "n1"); got != nil {
		t.Errorf("missing file: %v", got)
	}
	b1 := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/26"), netip.MustParsePrefix("fd00::/122")}
	b2 := []netip.Prefix{netip.MustParsePrefix("10.1.0.64/26")}
	if err := h.Store("net1", "n1", b1); err != nil {
		t.Fatal(err)
	}
	if err := h.Store("net2", "n1", b2); err != nil {
		t.Fatal(err)
	}
	if got := h.Load("net1", "n1"); !slices.Equal(got, b1) {
		t.Errorf("net1: %v, want %v", got, b1)
	}
	if got := h.Load("net2", "n1"); !slices.Equal(got, b2) {
		t.Errorf("net2: %v, want %v", got, b2)
	}
	if got := h.Load("net1", "n2"); got != nil {
		t.Errorf("another node's hint was returned: %v", got)
	}
	// Storing what is stored does not rewrite the file.
	st, _ := os.Stat(path)
	if err := h.Store("net1", "n1", b1); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(path); !os.SameFile(st, st2) {
		t.Error("an unchanged hint was rewritten")
	}
	// A torn file means no hints, and is replaced by the next Store.
	if err := os.WriteFile(path, []byte(`{"net1": {"node": "n1", "blo`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := h.Load("net1", "n1"); got != nil {
		t.Errorf("torn file: %v", got)
	}
	if err := h.Store("net1", "n1", b2); err != nil {
		t.Fatal(err)
	}
	if got := h.Load("net1", "n1"); !slices.Equal(got, b2) {
		t.Errorf("after replacing a torn file: %v", got)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
