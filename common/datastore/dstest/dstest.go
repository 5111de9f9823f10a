package dstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
)

// Timeout bounds every wait in the suite. Nothing is timed; it only stops a broken backend from hanging.
const Timeout = 60 * time.Second

// Run runs the conformance suite against the backends newBackend returns. newBackend is called once per
// subtest and must return an empty, isolated backend (a fresh memory backend, an etcd key prefix of its
// own, a cleaned cluster) whose clean-up it registers with t.Cleanup; the suite closes nothing itself.
// Namespaced objects go into NamespaceA and NamespaceB.
//
// The suite uses IPPool (cluster-scoped), NetworkPolicy and WorkloadEndpoint (namespaced). A backend
// whose Create of a kind fails with datastore.ErrUnsupported has that kind's checks skipped.
func Run(t *testing.T, newBackend func(t *testing.T) datastore.Backend) {
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, newBackend) })
	t.Run("CreateExisting", func(t *testing.T) { testCreateExisting(t, newBackend(t)) })
	t.Run("StaleRevision", func(t *testing.T) { testStaleRevision(t, newBackend(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newBackend(t)) })
	t.Run("ListOrderAndNamespaces", func(t *testing.T) { testList(t, newBackend(t)) })
	t.Run("RevisionsIncrease", func(t *testing.T) { testRevisions(t, newBackend(t)) })
	t.Run("InputNotMutated", func(t *testing.T) { testNotMutated(t, newBackend(t)) })
	t.Run("WatchFromListRevision", func(t *testing.T) { testWatch(t, newBackend(t)) })
	t.Run("WatchNamespace", func(t *testing.T) { testWatchNamespace(t, newBackend(t)) })
	t.Run("WatchStop", func(t *testing.T) { testWatchStop(t, newBackend(t)) })
	t.Run("ConcurrentCAS", func(t *testing.T) { testConcurrentCAS(t, newBackend(t)) })
	t.Run("Ping", func(t *testing.T) {
		if err := newBackend(t).Ping(ctxFor(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Syncer", func(t *testing.T) {
		t.Run("SnapshotThenDeltas", func(t *testing.T) { testSyncerSnapshot(t, newBackend(t)) })
		t.Run("WatchRestart", func(t *testing.T) { testSyncerRestart(t, newBackend(t)) })
		t.Run("DatastoreDown", func(t *testing.T) { testSyncerDown(t, newBackend(t)) })
	})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

func keyOf(t *testing.T, obj api.Resource) datastore.Key {
	t.Helper()
	k, err := datastore.KeyOf(obj)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// create stores obj, skipping the test when the backend does not support the kind.
func create(t *testing.T, b datastore.Backend, obj api.Resource) api.Resource {
	t.Helper()
	got, err := b.Create(ctxFor(t), obj)
	if errors.Is(err, datastore.ErrUnsupported) {
		t.Skipf("backend does not support creating %s: %v", keyOf(t, obj), err)
	}
	if err != nil {
		t.Fatalf("Create %s: %v", keyOf(t, obj), err)
	}
	return got
}

// tryCreate creates obj and returns it, or nil when b does not support obj's kind.
func tryCreate(t *testing.T, b datastore.Backend, obj api.Resource) api.Resource {
	t.Helper()
	got, err := b.Create(ctxFor(t), obj)
	if errors.Is(err, datastore.ErrUnsupported) {
		t.Logf("backend does not support creating %s; leaving the kind out: %v", keyOf(t, obj), err)
		return nil
	}
	if err != nil {
		t.Fatalf("Create %s: %v", keyOf(t, obj), err)
	}
	return got
}

func mustList(t *testing.T, b datastore.Backend, opts datastore.ListOptions) ([]api.Resource, string) {
	t.Helper()
	objs, rev, err := b.List(ctxFor(t), opts)
	if err != nil {
		t.Fatalf("List %+v: %v", opts, err)
	}
	return objs, rev
}

func names(objs []api.Resource) []string {
	var out []string
	for _, o := range objs {
		if o.GetNamespace() != "" {
			out = append(out, o.GetNamespace()+"/"+o.GetName())
		} else {
			out = append(out, o.GetName())
		}
	}
	return out
}

// wantSame fails unless got has want's content (ignoring revision and server-set fields).
func wantSame(t *testing.T, what string, got, want api.Resource) {
	t.Helper()
	g, w := got.DeepCopyObject().(api.Resource), want.DeepCopyObject().(api.Resource)
	for _, o := range []api.Resource{g, w} {
		o.SetCreationTimestamp(got.GetCreationTimestamp())
		o.SetUID(got.GetUID())
		o.GetObjectKind().SetGroupVersionKind(got.GetObjectKind().GroupVersionKind())
	}
	if d := syncertest.Diff([]api.Resource{g}, []api.Resource{w}); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

func wantErr(t *testing.T, what string, err, target error, name string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one wrapping %q", what, err, target)
		return
	}
	if !strings.Contains(err.Error(), name) {
		t.Errorf("%s: error %q does not name %q", what, err, name)
	}
}

// relabel returns a copy of obj with label k=v: a content change every kind accepts.
func relabel[T api.Resource](obj T, k, v string) T {
	c := obj.DeepCopyObject().(T)
	l := c.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[k] = v
	c.SetLabels(l)
	return c
}

func testCRUD(t *testing.T, newBackend func(t *testing.T) datastore.Backend) {
	for _, obj := range []api.Resource{
		IPPool("pool-a", "10.10.0.0/16"),
		NetworkPolicy(NamespaceA, "allow-frontend"),
		WorkloadEndpoint(NamespaceA, "node-1", "web-0", 1),
	} {
		t.Run(keyOf(t, obj).Kind, func(t *testing.T) {
			b := newBackend(t)
			ctx := ctxFor(t)
			key := keyOf(t, obj)

			created := create(t, b, obj)
			if created.GetResourceVersion() == "" {
				t.Errorf("Create returned no resourceVersion")
			}
			if created.GetCreationTimestamp().Time.IsZero() || created.GetUID() == "" {
				t.Errorf("Create did not set creationTimestamp (%v) and uid (%q)", created.GetCreationTimestamp(), created.GetUID())
			}
			if gvk := created.GetObjectKind().GroupVersionKind(); gvk.Kind != key.Kind {
				t.Errorf("Create returned kind %q, want %q", gvk.Kind, key.Kind)
			}
			wantSame(t, "Create", created, obj)

			got, err := b.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get %s: %v", key, err)
			}
			if got.GetResourceVersion() != created.GetResourceVersion() {
				t.Errorf("Get resourceVersion %q, want %q from Create", got.GetResourceVersion(), created.GetResourceVersion())
			}
			wantSame(t, "Get", got, created)

			changed := relabel(got, "dstest-step", "updated")
			updated, err := b.Update(ctx, changed)
			if err != nil {
				t.Fatalf("Update %s: %v", key, err)
			}
			if updated.GetResourceVersion() == "" || updated.GetResourceVersion() == got.GetResourceVersion() {
				t.Errorf("Update resourceVersion %q, want a new one (was %q)", updated.GetResourceVersion(), got.GetResourceVersion())
			}
			if updated.GetUID() != created.GetUID() || !updated.GetCreationTimestamp().Time.Equal(created.GetCreationTimestamp().Time) {
				t.Errorf("Update changed uid/creationTimestamp: %q/%v, were %q/%v", updated.GetUID(),
					updated.GetCreationTimestamp(), created.GetUID(), created.GetCreationTimestamp())
			}
			wantSame(t, "Update", updated, changed)
			if got, err := b.Get(ctx, key); err != nil {
				t.Fatalf("Get after Update: %v", err)
			} else {
				wantSame(t, "Get after Update", got, changed)
			}

			// An Update without resourceVersion is unconditional.
			uncond := relabel(updated, "dstest-step", "unconditional")
			uncond.SetResourceVersion("")
			updated2, err := b.Update(ctx, uncond)
			if err != nil {
				t.Fatalf("unconditional Update %s: %v", key, err)
			}
			wantSame(t, "unconditional Update", updated2, uncond)

			objs, _ := mustList(t, b, datastore.ListOptions{Kind: key.Kind})
			if len(objs) != 1 {
				t.Fatalf("List: %v, want just %s", names(objs), key)
			}
			if objs[0].GetResourceVersion() != updated2.GetResourceVersion() {
				t.Errorf("List resourceVersion %q, want %q", objs[0].GetResourceVersion(), updated2.GetResourceVersion())
			}
			wantSame(t, "List", objs[0], updated2)

			deleted, err := b.Delete(ctx, key, updated2.GetResourceVersion())
			if err != nil {
				t.Fatalf("Delete %s: %v", key, err)
			}
			if deleted == nil {
				t.Fatalf("Delete returned no object")
			}
			wantSame(t, "Delete", deleted, updated2)
			if _, err := b.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
				t.Errorf("Get after Delete: %v, want ErrNotFound", err)
			}
			if objs, _ := mustList(t, b, datastore.ListOptions{Kind: key.Kind}); len(objs) != 0 {
				t.Errorf("List after Delete: %v", names(objs))
			}
		})
	}
}

func testCreateExisting(t *testing.T, b datastore.Backend) {
	for _, obj := range []api.Resource{IPPool("pool-a", "10.10.0.0/16"), NetworkPolicy(NamespaceA, "np")} {
		first := create(t, b, obj)
		_, err := b.Create(ctxFor(t), obj)
		wantErr(t, "second Create", err, datastore.ErrAlreadyExists, obj.GetName())
		got, err := b.Get(ctxFor(t), keyOf(t, obj))
		if err != nil {
			t.Fatal(err)
		}
		if got.GetResourceVersion() != first.GetResourceVersion() {
			t.Errorf("failed Create changed %s: resourceVersion %s → %s", keyOf(t, obj), first.GetResourceVersion(), got.GetResourceVersion())
		}
	}
	// The same name in another namespace is another object.
	create(t, b, NetworkPolicy(NamespaceB, "np"))
}

func testStaleRevision(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	for _, obj := range []api.Resource{IPPool("pool-a", "10.10.0.0/16"), NetworkPolicy(NamespaceA, "np")} {
		key := keyOf(t, obj)
		v1 := create(t, b, obj)
		v2, err := b.Update(ctx, relabel(v1, "step", "2"))
		if err != nil {
			t.Fatalf("Update %s: %v", key, err)
		}
		_, err = b.Update(ctx, relabel(v1, "step", "stale"))
		wantErr(t, "Update with a stale revision", err, datastore.ErrConflict, key.Name)
		_, err = b.Delete(ctx, key, v1.GetResourceVersion())
		wantErr(t, "Delete with a stale revision", err, datastore.ErrConflict, key.Name)
		got, err := b.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get after failed CAS: %v", err)
		}
		if got.GetResourceVersion() != v2.GetResourceVersion() || got.GetLabels()["step"] != "2" {
			t.Errorf("failed CAS changed %s: rv %s labels %v, want rv %s step=2", key, got.GetResourceVersion(), got.GetLabels(), v2.GetResourceVersion())
		}
		if _, err := b.Delete(ctx, key, v2.GetResourceVersion()); err != nil {
			t.Errorf("Delete with the current revision: %v", err)
		}
	}
}

func testMissing(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	for _, key := range []datastore.Key{
		{Kind: api.KindIPPool, Name: "no-such-pool"},
		{Kind: api.KindNetworkPolicy, Namespace: NamespaceA, Name: "no-such-policy"},
	} {
		_, err := b.Get(ctx, key)
		wantErr(t, "Get missing", err, datastore.ErrNotFound, key.Name)
		_, err = b.Delete(ctx, key, "")
		wantErr(t, "Delete missing", err, datastore.ErrNotFound, key.Name)
	}
	_, err := b.Update(ctx, IPPool("no-such-pool", "10.1.0.0/16"))
	wantErr(t, "Update missing", err, datastore.ErrNotFound, "no-such-pool")
	objs, rev, err := b.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil || len(objs) != 0 || rev == "" {
		t.Errorf("List of an empty kind: %v, revision %q, %v; want nothing, a revision and no error", names(objs), rev, err)
	}
	// NamespaceB has NamespaceA's name as a prefix: its objects must not leak into NamespaceA.
	create(t, b, NetworkPolicy(NamespaceB, "no-such-policy"))
	if objs, _ := mustList(t, b, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: NamespaceA}); len(objs) != 0 {
		t.Errorf("List in %s returned %v", NamespaceA, names(objs))
	}
	_, err = b.Get(ctx, datastore.Key{Kind: api.KindNetworkPolicy, Namespace: NamespaceA, Name: "no-such-policy"})
	wantErr(t, "Get missing (present in another namespace)", err, datastore.ErrNotFound, "no-such-policy")
}

func testList(t *testing.T, b datastore.Backend) {
	for _, n := range []string{"pool-c", "pool-a", "pool-b"} {
		create(t, b, IPPool(n, "10."+strconv.Itoa(int(n[5]))+".0.0/16"))
	}
	for _, nn := range [][2]string{{NamespaceB, "np-1"}, {NamespaceA, "np-2"}, {NamespaceA, "np-1"}, {NamespaceB, "np-0"}} {
		create(t, b, NetworkPolicy(nn[0], nn[1]))
	}
	for _, tc := range []struct {
		opts datastore.ListOptions
		want []string
	}{
		{datastore.ListOptions{Kind: api.KindIPPool}, []string{"pool-a", "pool-b", "pool-c"}},
		{datastore.ListOptions{Kind: "ippools"}, []string{"pool-a", "pool-b", "pool-c"}},
		{datastore.ListOptions{Kind: api.KindNetworkPolicy}, []string{NamespaceA + "/np-1", NamespaceA + "/np-2", NamespaceB + "/np-0", NamespaceB + "/np-1"}},
		{datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: NamespaceA}, []string{NamespaceA + "/np-1", NamespaceA + "/np-2"}},
		{datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: NamespaceB}, []string{NamespaceB + "/np-0", NamespaceB + "/np-1"}},
		{datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: "dstest-none"}, nil},
		{datastore.ListOptions{Kind: api.KindGlobalNetworkPolicy}, nil},
	} {
		objs, rev := mustList(t, b, tc.opts)
		if got := names(objs); !slices.Equal(got, tc.want) {
			t.Errorf("List %+v = %v, want %v", tc.opts, got, tc.want)
		}
		if rev == "" {
			t.Errorf("List %+v returned no revision", tc.opts)
		}
		for _, o := range objs {
			if o.GetResourceVersion() == "" {
				t.Errorf("List %+v: %s has no resourceVersion", tc.opts, o.GetName())
			}
		}
	}
}

// testRevisions checks that every write gets a new revision and, where revisions are numbers (etcd,
// Kubernetes, memory), that they increase.
func testRevisions(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	_, rev0 := mustList(t, b, datastore.ListOptions{Kind: api.KindIPPool})
	revs := []string{rev0}
	p := create(t, b, IPPool("pool-a", "10.10.0.0/16"))
	revs = append(revs, p.GetResourceVersion())
	for i := range 3 {
		var err error
		if p, err = b.Update(ctx, relabel(p, "step", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		revs = append(revs, p.GetResourceVersion())
	}
	q := create(t, b, NetworkPolicy(NamespaceA, "np"))
	revs = append(revs, q.GetResourceVersion())
	_, revList := mustList(t, b, datastore.ListOptions{Kind: api.KindIPPool})
	for i := 1; i < len(revs); i++ {
		if revs[i] == revs[i-1] {
			t.Errorf("two writes share a revision: %q", revs)
		}
	}
	var nums []uint64
	for _, r := range append(revs, revList) {
		n, err := strconv.ParseUint(r, 10, 64)
		if err != nil {
			t.Logf("revisions %q are not numbers; only checked that writes change them", revs)
			return
		}
		nums = append(nums, n)
	}
	for i := 1; i < len(revs); i++ {
		if nums[i] <= nums[i-1] {
			t.Errorf("revisions do not increase: %q", revs)
		}
	}
	if last := nums[len(nums)-1]; last < nums[len(nums)-2] {
		t.Errorf("List revision %d is older than the last write's %d", last, nums[len(nums)-2])
	}
}

func testNotMutated(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	in := NetworkPolicy(NamespaceA, "np")
	before := in.DeepCopy()
	out := create(t, b, in)
	if !equality.Semantic.DeepEqual(in, before) {
		t.Errorf("Create modified its input: %s", syncertest.Diff([]api.Resource{in}, []api.Resource{before}))
	}
	if out == api.Resource(in) {
		t.Errorf("Create returned its input")
	}

	upd := relabel(out, "x", "y")
	before2 := upd.DeepCopyObject()
	out2, err := b.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(upd, before2) {
		t.Errorf("Update modified its input")
	}
	if out2 == upd {
		t.Errorf("Update returned its input")
	}

	// Changing a returned object changes nothing stored.
	out2.SetLabels(map[string]string{"scribbled": "on"})
	got, err := b.Get(ctx, keyOf(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLabels()["scribbled"] != "" {
		t.Errorf("the object returned by Update aliases the stored one")
	}
	got.SetLabels(map[string]string{"scribbled": "again"})
	got2, _ := b.Get(ctx, keyOf(t, in))
	if got2.GetLabels()["scribbled"] != "" {
		t.Errorf("the object returned by Get aliases the stored one")
	}
}

// nextEvent waits for one watch event.
func nextEvent(t *testing.T, w datastore.Watcher) datastore.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended early")
		}
		return ev
	case <-time.After(Timeout):
		t.Fatalf("no watch event within %v", Timeout)
	}
	panic("unreachable")
}

type wantEvent struct {
	typ datastore.EventType
	obj api.Resource // for Deleted: only its key is checked
}

func expectEvents(t *testing.T, w datastore.Watcher, want []wantEvent) {
	t.Helper()
	for i, we := range want {
		ev := nextEvent(t, w)
		key := keyOf(t, we.obj)
		if ev.Type != we.typ || ev.Key != key {
			t.Fatalf("event %d: %s %s (err %v), want %s %s", i, ev.Type, ev.Key, ev.Err, we.typ, key)
		}
		if ev.Revision == "" {
			t.Errorf("event %d (%s %s) has no revision", i, ev.Type, ev.Key)
		}
		if we.typ == datastore.Deleted {
			if ev.Object != nil && (ev.Object.GetName() != key.Name || ev.Object.GetNamespace() != key.Namespace) {
				t.Errorf("event %d: Deleted %s carries %s/%s", i, key, ev.Object.GetNamespace(), ev.Object.GetName())
			}
			continue
		}
		if ev.Object == nil {
			t.Fatalf("event %d: %s %s without an object", i, ev.Type, ev.Key)
		}
		if ev.Object.GetResourceVersion() != we.obj.GetResourceVersion() {
			t.Errorf("event %d: %s %s at resourceVersion %q, want %q", i, ev.Type, ev.Key, ev.Object.GetResourceVersion(), we.obj.GetResourceVersion())
		}
		wantSame(t, fmt.Sprintf("event %d", i), ev.Object, we.obj)
	}
}

func testWatch(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	old := create(t, b, NetworkPolicy(NamespaceA, "before-list"))
	objs, rev := mustList(t, b, datastore.ListOptions{Kind: api.KindNetworkPolicy})
	if len(objs) != 1 {
		t.Fatalf("List: %v", names(objs))
	}
	// Changes between the List and the Watch must be seen: that is the point of watching from the
	// list's revision.
	a := create(t, b, NetworkPolicy(NamespaceA, "a"))
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy}, rev)
	if err != nil {
		t.Fatalf("Watch from %s: %v", rev, err)
	}
	defer w.Stop()
	a2, err := b.Update(ctx, relabel(a, "step", "2"))
	if err != nil {
		t.Fatal(err)
	}
	create(t, b, IPPool("other-kind", "10.20.0.0/16")) // not watched
	bb := create(t, b, NetworkPolicy(NamespaceB, "b"))
	if _, err := b.Delete(ctx, keyOf(t, a), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(ctx, keyOf(t, old), old.GetResourceVersion()); err != nil {
		t.Fatal(err)
	}
	sentinel := create(t, b, NetworkPolicy(NamespaceA, "sentinel"))
	expectEvents(t, w, []wantEvent{
		{datastore.Added, a},
		{datastore.Modified, a2},
		{datastore.Added, bb},
		{datastore.Deleted, a},
		{datastore.Deleted, old},
		{datastore.Added, sentinel}, // nothing unexpected came before it
	})

	// A watch from "" starts now.
	w2, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy}, "")
	if err != nil {
		t.Fatalf("Watch from now: %v", err)
	}
	defer w2.Stop()
	// Give a backend that establishes watches asynchronously a moment; the event must still be the
	// first one seen.
	time.Sleep(100 * time.Millisecond)
	c := create(t, b, NetworkPolicy(NamespaceB, "c"))
	expectEvents(t, w2, []wantEvent{{datastore.Added, c}})
}

func testWatchNamespace(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	_, rev := mustList(t, b, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: NamespaceA})
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: NamespaceA}, rev)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	create(t, b, NetworkPolicy(NamespaceB, "np"))
	a := create(t, b, NetworkPolicy(NamespaceA, "np"))
	expectEvents(t, w, []wantEvent{{datastore.Added, a}})
}

func testWatchStop(t *testing.T, b datastore.Backend) {
	w, err := b.Watch(ctxFor(t), datastore.ListOptions{Kind: api.KindIPPool}, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	w.Stop()
	w.Stop() // idempotent
	timeout := time.After(Timeout)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				goto cancelled
			}
		case <-timeout:
			t.Fatalf("watch channel not closed after Stop")
		}
	}
cancelled:
	ctx, cancel := context.WithCancel(t.Context())
	w, err = b.Watch(ctx, datastore.ListOptions{Kind: api.KindIPPool}, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	cancel()
	timeout = time.After(Timeout)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("watch channel not closed after its context was cancelled")
		}
	}
}

// testConcurrentCAS increments a counter from 8 goroutines with Get+Update retries: no increment may
// be lost.
func testConcurrentCAS(t *testing.T, b datastore.Backend) {
	const workers, perWorker = 8, 10
	ctx := ctxFor(t)
	p := IPPool("counter", "10.30.0.0/16")
	p.Annotations = map[string]string{"dstest/counter": "0"}
	create(t, b, p)
	key := keyOf(t, p)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conflicts int
	var errs []error
	for range workers {
		wg.Go(func() {
			for range perWorker {
				for {
					cur, err := b.Get(ctx, key)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					n, _ := strconv.Atoi(cur.GetAnnotations()["dstest/counter"])
					cur.SetAnnotations(map[string]string{"dstest/counter": strconv.Itoa(n + 1)})
					_, err = b.Update(ctx, cur)
					if errors.Is(err, datastore.ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errors.Join(errs...))
	}
	got, err := b.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if n := got.GetAnnotations()["dstest/counter"]; n != strconv.Itoa(workers*perWorker) {
		t.Errorf("counter = %s after %d increments (%d conflicts retried): updates were lost", n, workers*perWorker, conflicts)
	}
	t.Logf("%d increments, %d conflicts retried", workers*perWorker, conflicts)
}
