package dstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
)

// StartSyncer runs a Syncer over b into a new syncertest.Cache until the test ends. The backoff is short
// so that resyncs happen quickly; other options are added after it.
func StartSyncer(t testing.TB, b datastore.Backend, kinds []datastore.ListOptions, opts ...datastore.SyncerOption) *syncertest.Cache {
	t.Helper()
	c := syncertest.New()
	s := datastore.NewSyncer(b, c, kinds, append([]datastore.SyncerOption{datastore.WithBackoff(10*time.Millisecond, 200*time.Millisecond)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Syncer.Run returned %v, want context.Canceled", err)
			}
		case <-time.After(Timeout):
			t.Errorf("Syncer.Run did not return within %v of cancellation", Timeout)
		}
	})
	return c
}

// WaitFor waits until cond holds for c, failing the test after Timeout.
func WaitFor(t testing.TB, c *syncertest.Cache, what string, cond func(*syncertest.Cache) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v (status %s, %d objects, statuses %v, problems %q)", what, err, c.Status(), c.Len(), c.Statuses(), c.Problems())
	}
}

// ListAll lists every kind in kinds and returns the objects.
func ListAll(t testing.TB, b datastore.Backend, kinds []datastore.ListOptions) []api.Resource {
	t.Helper()
	var all []api.Resource
	for _, k := range kinds {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		objs, _, err := b.List(ctx, k)
		cancel()
		if err != nil {
			t.Fatalf("List %+v: %v", k, err)
		}
		all = append(all, objs...)
	}
	return all
}

// WantMatchesList fails unless c holds exactly what a fresh List of kinds returns.
func WantMatchesList(t testing.TB, c *syncertest.Cache, b datastore.Backend, kinds []datastore.ListOptions) {
	t.Helper()
	var names []string
	for _, k := range kinds {
		names = append(names, k.Kind)
	}
	if d := c.Diff(ListAll(t, b, kinds), names...); d != "" {
		t.Errorf("the syncer's receiver differs from a fresh List:\n%s", d)
	}
}

// WantNoProblems fails on every breach of the stream's promises the cache saw.
func WantNoProblems(t testing.TB, c *syncertest.Cache) {
	t.Helper()
	for _, p := range c.Problems() {
		t.Errorf("syncer stream: %s", p)
	}
}

// Summary renders updates as sorted "Type Key" lines, for comparing what was sent with what should have
// been.
func Summary(ups []datastore.Update) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.Type.String() + " " + u.Key.String()
	}
	slices.Sort(out)
	return out
}

// WantStatusesAroundResync checks statuses seen across one or more resyncs: they start with
// ResyncInProgress, end with InSync and alternate (a kind may fail after another has already relisted,
// giving several rounds).
func WantStatusesAroundResync(t testing.TB, got []datastore.Status) {
	t.Helper()
	ok := len(got) >= 2 && len(got)%2 == 0
	for i, s := range got {
		want := datastore.ResyncInProgress
		if i%2 == 1 {
			want = datastore.InSync
		}
		ok = ok && s == want
	}
	if !ok {
		t.Errorf("statuses around a resync = %v, want ResyncInProgress, InSync (repeated)", got)
	}
}

// syncKinds is what the syncer tests watch: IPPool and NetworkPolicy, and WorkloadEndpoint when the
// backend supports creating it.
type syncFixture struct {
	b     datastore.Backend
	kinds []datastore.ListOptions
	objs  []api.Resource
}

func populate(t *testing.T, b datastore.Backend) *syncFixture {
	t.Helper()
	fx := &syncFixture{b: b, kinds: []datastore.ListOptions{{Kind: api.KindIPPool}, {Kind: api.KindNetworkPolicy}}}
	for _, o := range []api.Resource{
		IPPool("pool-a", "10.1.0.0/16"), IPPool("pool-b", "10.2.0.0/16"), IPPool("pool-c", "10.3.0.0/16"),
		NetworkPolicy(NamespaceA, "np-1"), NetworkPolicy(NamespaceB, "np-2"), NetworkPolicy(NamespaceA, "np-3"),
	} {
		fx.objs = append(fx.objs, create(t, b, o))
	}
	if wep := tryCreate(t, b, WorkloadEndpoint(NamespaceA, "node-1", "web-0", 1)); wep != nil {
		fx.kinds = append(fx.kinds, datastore.ListOptions{Kind: api.KindWorkloadEndpoint})
		fx.objs = append(fx.objs, wep, create(t, b, WorkloadEndpoint(NamespaceB, "node-2", "db-0", 2)))
	}
	return fx
}

// sentinels writes one new object per kind and returns their keys; once a syncer's receiver holds them
// all, the syncer has processed everything each kind's watch saw before them.
func (fx *syncFixture) sentinels(t *testing.T, tag string) []datastore.Key {
	t.Helper()
	var keys []datastore.Key
	for i, k := range fx.kinds {
		var o api.Resource
		switch k.Kind {
		case api.KindIPPool:
			o = IPPool("sentinel-"+tag, fmt.Sprintf("10.%d.0.0/16", 100+len(tag)+i))
		case api.KindNetworkPolicy:
			o = NetworkPolicy(NamespaceA, "sentinel-"+tag)
		case api.KindWorkloadEndpoint:
			o = WorkloadEndpoint(NamespaceA, "node-9", "sentinel-"+tag, 900+len(tag))
		}
		keys = append(keys, keyOf(t, create(t, fx.b, o)))
	}
	return keys
}

func holdsAll(keys []datastore.Key) func(*syncertest.Cache) bool {
	return func(c *syncertest.Cache) bool {
		for _, k := range keys {
			if _, ok := c.Get(k); !ok {
				return false
			}
		}
		return c.Status() == datastore.InSync
	}
}

func wantUpdates(t *testing.T, got []datastore.Update, want []string) {
	t.Helper()
	g := Summary(got)
	slices.Sort(want)
	if !slices.Equal(g, want) {
		t.Errorf("updates:\n  got  %s\n  want %s", strings.Join(g, "\n       "), strings.Join(want, "\n       "))
	}
	for _, u := range got {
		if u.Revision == "" {
			t.Errorf("%s %s has no revision", u.Type, u.Key)
		}
		if u.Value != nil && u.Value.GetResourceVersion() != u.Revision {
			t.Errorf("%s %s: revision %q but the value's resourceVersion is %q", u.Type, u.Key, u.Revision, u.Value.GetResourceVersion())
		}
	}
}

func keyLine(typ datastore.UpdateType, o api.Resource) string {
	k, _ := datastore.KeyOf(o)
	return typ.String() + " " + k.String()
}

func testSyncerSnapshot(t *testing.T, b datastore.Backend) {
	ctx := ctxFor(t)
	fx := populate(t, b)
	c := StartSyncer(t, b, fx.kinds)
	WaitFor(t, c, "InSync", func(c *syncertest.Cache) bool { return c.Status() == datastore.InSync })
	if got, want := c.Statuses(), []datastore.Status{datastore.WaitForDatastore, datastore.ResyncInProgress, datastore.InSync}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	var want []string
	for _, o := range fx.objs {
		want = append(want, keyLine(datastore.UpdateNew, o))
	}
	wantUpdates(t, c.Updates(), want)
	WantMatchesList(t, c, b, fx.kinds)

	// Deltas.
	mark := c.Mark()
	created := create(t, b, IPPool("pool-d", "10.4.0.0/16"))
	np1 := fx.objs[3]
	np1u, err := b.Update(ctx, relabel(np1, "tier", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(ctx, keyOf(t, fx.objs[0]), ""); err != nil {
		t.Fatal(err)
	}
	keys := fx.sentinels(t, "d")
	WaitFor(t, c, "the deltas", holdsAll(keys))
	want = []string{keyLine(datastore.UpdateNew, created), keyLine(datastore.UpdateModified, np1u), keyLine(datastore.UpdateDeleted, fx.objs[0])}
	for _, k := range keys {
		want = append(want, "New "+k.String())
	}
	wantUpdates(t, c.UpdatesSince(mark), want)
	if s := c.StatusesSince(mark); len(s) != 0 {
		t.Errorf("statuses during deltas: %v", s)
	}
	if got, _ := c.Get(keyOf(t, np1)); got == nil || got.GetLabels()["tier"] != "gold" {
		t.Errorf("receiver holds %v for %s, want the updated policy", got, keyOf(t, np1))
	}
	WantMatchesList(t, c, b, fx.kinds)
	WantNoProblems(t, c)
}

func testSyncerRestart(t *testing.T, inner datastore.Backend) {
	fx := populate(t, inner)
	f := NewFaulty(inner)
	c := StartSyncer(t, f, fx.kinds)
	WaitFor(t, c, "InSync", func(c *syncertest.Cache) bool { return c.Status() == datastore.InSync })

	for round := range 2 {
		// InSync can come before the last watch is established; break them all.
		waitCounter(t, "watches", f.WatchesStarted, (round+1)*len(fx.kinds))
		mark, lists, started := c.Mark(), f.Lists(), f.WatchesStarted()
		f.BreakWatches()
		waitCounter(t, "relists", f.Lists, lists+len(fx.kinds))
		waitCounter(t, "new watches", f.WatchesStarted, started+len(fx.kinds))
		keys := fx.sentinels(t, fmt.Sprintf("r%d", round))
		WaitFor(t, c, "the sentinels after the restart", holdsAll(keys))
		var want []string
		for _, k := range keys {
			want = append(want, "New "+k.String())
		}
		// A relist of unchanged data sends nothing: no delete, no re-add, no no-op modification.
		wantUpdates(t, c.UpdatesSince(mark), want)
		WantStatusesAroundResync(t, c.StatusesSince(mark))
	}
	WantMatchesList(t, c, inner, fx.kinds)
	WantNoProblems(t, c)
}

func testSyncerDown(t *testing.T, inner datastore.Backend) {
	ctx := ctxFor(t)
	fx := populate(t, inner)
	f := NewFaulty(inner)
	c := StartSyncer(t, f, fx.kinds)
	WaitFor(t, c, "InSync", func(c *syncertest.Cache) bool { return c.Status() == datastore.InSync })
	mark := c.Mark()

	waitCounter(t, "watches", f.WatchesStarted, len(fx.kinds))
	f.Down(true)
	WaitFor(t, c, "ResyncInProgress", func(c *syncertest.Cache) bool { return c.Status() == datastore.ResyncInProgress })

	// Changes the syncer cannot see while the datastore is "down" (made behind the fault injector).
	poolA, poolB, np1, np2 := fx.objs[0], fx.objs[1], fx.objs[3], fx.objs[4]
	added := create(t, inner, IPPool("pool-new", "10.9.0.0/16"))
	np1u, err := inner.Update(ctx, relabel(np1, "tier", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Delete(ctx, keyOf(t, poolB), ""); err != nil {
		t.Fatal(err)
	}
	// Changed and changed back: a new revision with the old content must not be sent.
	tmp, err := inner.Update(ctx, relabel(np2, "tmp", "x"))
	if err != nil {
		t.Fatal(err)
	}
	back := np2.DeepCopyObject().(api.Resource)
	back.SetResourceVersion(tmp.GetResourceVersion())
	if _, err := inner.Update(ctx, back); err != nil {
		t.Fatal(err)
	}
	// Deleted and created again: one Modified (the uid changed), never Deleted then New.
	if _, err := inner.Delete(ctx, keyOf(t, poolA), ""); err != nil {
		t.Fatal(err)
	}
	recreated := create(t, inner, IPPool(poolA.GetName(), "10.1.0.0/16"))

	started := f.WatchesStarted()
	f.Up()
	waitCounter(t, "new watches", f.WatchesStarted, started+len(fx.kinds))
	keys := fx.sentinels(t, "up")
	WaitFor(t, c, "the sentinels after the datastore came back", holdsAll(keys))

	want := []string{
		keyLine(datastore.UpdateNew, added),
		keyLine(datastore.UpdateModified, np1u),
		keyLine(datastore.UpdateDeleted, poolB),
		keyLine(datastore.UpdateModified, recreated),
	}
	for _, k := range keys {
		want = append(want, "New "+k.String())
	}
	wantUpdates(t, c.UpdatesSince(mark), want)
	WantStatusesAroundResync(t, c.StatusesSince(mark))
	WantMatchesList(t, c, inner, fx.kinds)
	WantNoProblems(t, c)
}

func waitCounter(t *testing.T, what string, get func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %d, want %d", what, get(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
