package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/datastore/syncertest"
)

var pools = []datastore.ListOptions{{Kind: api.KindIPPool}}

// run starts a syncer inside a synctest bubble and returns a stop function that cancels it and checks
// that Run returned the context's error.
func run(t *testing.T, b datastore.Backend, kinds []datastore.ListOptions, opts ...datastore.SyncerOption) (*syncertest.Cache, func()) {
	t.Helper()
	c := syncertest.New()
	s := datastore.NewSyncer(b, c, kinds, opts...)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return c, func() {
		t.Helper()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	}
}

func mustCreate(t *testing.T, b datastore.Backend, obj api.Resource) api.Resource {
	t.Helper()
	got, err := b.Create(t.Context(), obj)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustUpdate(t *testing.T, b datastore.Backend, obj api.Resource) api.Resource {
	t.Helper()
	got, err := b.Update(t.Context(), obj)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustDelete(t *testing.T, b datastore.Backend, obj api.Resource) {
	t.Helper()
	k, _ := datastore.KeyOf(obj)
	if _, err := b.Delete(t.Context(), k, ""); err != nil {
		t.Fatal(err)
	}
}

func pool(i int) *api.IPPool {
	return dstest.IPPool(fmt.Sprintf("pool-%03d", i), fmt.Sprintf("10.%d.0.0/16", i))
}

func withLabel(o api.Resource, k, v string) api.Resource {
	c := o.DeepCopyObject().(api.Resource)
	l := map[string]string{}
	for k, v := range c.GetLabels() {
		l[k] = v
	}
	l[k] = v
	c.SetLabels(l)
	return c
}

// settle lets every goroutine of the bubble run and every batch window pass.
func settle() {
	synctest.Wait()
	time.Sleep(time.Second)
	synctest.Wait()
}

func TestSyncerStatusesAndSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New()
		for i := range 5 {
			mustCreate(t, b, pool(i))
		}
		mustCreate(t, b, dstest.NetworkPolicy(dstest.NamespaceA, "np"))
		c, stop := run(t, b, []datastore.ListOptions{{Kind: "ippools"}, {Kind: api.KindNetworkPolicy}})
		defer stop()
		settle()
		want := []datastore.Status{datastore.WaitForDatastore, datastore.ResyncInProgress, datastore.InSync}
		if got := c.Statuses(); !slices.Equal(got, want) {
			t.Errorf("statuses = %v, want %v", got, want)
		}
		if n := len(c.Updates()); n != 6 {
			t.Errorf("snapshot has %d updates, want 6", n)
		}
		dstest.WantMatchesList(t, c, b, []datastore.ListOptions{{Kind: api.KindIPPool}, {Kind: api.KindNetworkPolicy}})
		dstest.WantNoProblems(t, c)
	})
}

func TestSyncerBatchesWithinWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New()
		c, stop := run(t, b, pools, datastore.WithBatchWindow(50*time.Millisecond))
		defer stop()
		settle()
		mark := c.Mark()
		for i := range 50 {
			mustCreate(t, b, pool(i))
		}
		// Time stands still until every goroutine blocks, so all 50 arrive within the window.
		settle()
		if got := c.BatchesSince(mark); !slices.Equal(got, []int{50}) {
			t.Errorf("batches = %v, want one of 50", got)
		}

		// Updates further apart than the window go in separate batches.
		mark = c.Mark()
		mustCreate(t, b, pool(100))
		time.Sleep(100 * time.Millisecond)
		mustCreate(t, b, pool(101))
		settle()
		if got := c.BatchesSince(mark); !slices.Equal(got, []int{1, 1}) {
			t.Errorf("batches = %v, want two of 1", got)
		}
		dstest.WantNoProblems(t, c)
	})
}

func TestSyncerMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New()
		for i := range 25 {
			mustCreate(t, b, pool(i))
		}
		c, stop := run(t, b, pools, datastore.WithMaxBatch(10))
		defer stop()
		settle()
		if got := c.BatchesSince(syncertest.Mark{}); !slices.Equal(got, []int{10, 10, 5}) {
			t.Errorf("snapshot batches = %v, want 10, 10, 5", got)
		}
		mark := c.Mark()
		for i := 25; i < 37; i++ {
			mustCreate(t, b, pool(i))
		}
		settle()
		if got := c.BatchesSince(mark); !slices.Equal(got, []int{10, 2}) {
			t.Errorf("delta batches = %v, want 10, 2", got)
		}
		dstest.WantNoProblems(t, c)
	})
}

func TestSyncerZeroWindowDeliversAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New()
		c, stop := run(t, b, pools, datastore.WithBatchWindow(0))
		defer stop()
		synctest.Wait()
		mustCreate(t, b, pool(1))
		synctest.Wait() // no time passes
		if c.Len() != 1 {
			t.Errorf("with no batch window the update waited for time to pass")
		}
	})
}

func TestSyncerCoalescesWithinBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New()
		y := mustCreate(t, b, pool(1))
		z := mustCreate(t, b, pool(2))
		c, stop := run(t, b, pools, datastore.WithBatchWindow(time.Second))
		defer stop()
		settle()
		mark := c.Mark()

		// Created, modified and deleted within one window: the receiver never hears of it.
		x := mustCreate(t, b, pool(3))
		mustUpdate(t, b, withLabel(x, "a", "b"))
		mustDelete(t, b, x)
		// Changed and changed back: nothing.
		y2 := mustUpdate(t, b, withLabel(y, "a", "b"))
		back := y.DeepCopyObject().(api.Resource)
		back.SetResourceVersion(y2.GetResourceVersion())
		mustUpdate(t, b, back)
		// Changed twice: one Modified with the last content.
		z2 := mustUpdate(t, b, withLabel(z, "step", "1"))
		z3 := mustUpdate(t, b, withLabel(z2, "step", "2"))
		settle()

		ups := c.UpdatesSince(mark)
		if len(ups) != 1 || ups[0].Type != datastore.UpdateModified || ups[0].Revision != z3.GetResourceVersion() ||
			ups[0].Value.GetLabels()["step"] != "2" {
			t.Errorf("updates = %v, want one Modified of %s at revision %s", dstest.Summary(ups), z3.GetName(), z3.GetResourceVersion())
		}
		dstest.WantMatchesList(t, c, b, pools)
		dstest.WantNoProblems(t, c)
	})
}

// TestSyncerCompaction makes the syncer's watch fall behind a compaction: it must end with ErrCompacted
// and the relist must send exactly the changes made meanwhile.
func TestSyncerCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		var objs []api.Resource
		for i := range 6 {
			objs = append(objs, mustCreate(t, mem, pool(i)))
		}
		f := dstest.NewFaulty(mem)
		c, stop := run(t, f, pools)
		defer stop()
		settle()
		mark, lists := c.Mark(), f.Lists()

		f.HoldWatches()
		settle()
		added := mustCreate(t, mem, pool(10))
		mod := mustUpdate(t, mem, withLabel(objs[1], "x", "y"))
		mustDelete(t, mem, objs[2])
		same := mustUpdate(t, mem, objs[3]) // a new revision, the same content
		if err := mem.Compact(mem.Revision()); err != nil {
			t.Fatal(err)
		}
		f.ReleaseWatches()
		settle()

		if f.Lists() != lists+1 {
			t.Errorf("%d relists after the compaction, want 1", f.Lists()-lists)
		}
		got := dstest.Summary(c.UpdatesSince(mark))
		want := dstest.Summary([]datastore.Update{
			{Type: datastore.UpdateNew, Key: key(added)},
			{Type: datastore.UpdateModified, Key: key(mod)},
			{Type: datastore.UpdateDeleted, Key: key(objs[2])},
		})
		// The held-back watch may have delivered some changes before noticing the compaction; what
		// matters is that nothing else is sent, and each change once.
		if !slices.Equal(got, want) {
			t.Errorf("updates after compaction:\n got %q\nwant %q", got, want)
		}
		if gotHeld, _ := c.Get(key(same)); gotHeld == nil {
			t.Errorf("%s lost", key(same))
		}
		dstest.WantStatusesAroundResync(t, c.StatusesSince(mark))
		dstest.WantMatchesList(t, c, mem, pools)
		dstest.WantNoProblems(t, c)
	})
}

func key(o api.Resource) datastore.Key {
	k, err := datastore.KeyOf(o)
	if err != nil {
		panic(err)
	}
	return k
}

func TestSyncerWaitsForDatastore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		mustCreate(t, mem, pool(1))
		f := dstest.NewFaulty(mem)
		f.Down(false)
		c, stop := run(t, f, pools, datastore.WithBackoff(100*time.Millisecond, 10*time.Second))
		defer stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := c.Statuses(); !slices.Equal(got, []datastore.Status{datastore.WaitForDatastore}) {
			t.Errorf("statuses while the datastore is down = %v, want just WaitForDatastore", got)
		}
		// Backoff: 0.1+0.2+0.4+...+6.4 ≈ 12.7s, then every ~10s: 7 + ~5 attempts in a minute, not 600.
		if n := f.FailedCalls(); n < 8 || n > 15 {
			t.Errorf("%d list attempts in a minute, want about 12 (exponential backoff to 10s)", n)
		}
		f.Up()
		time.Sleep(15 * time.Second)
		synctest.Wait()
		want := []datastore.Status{datastore.WaitForDatastore, datastore.ResyncInProgress, datastore.InSync}
		if got := c.Statuses(); !slices.Equal(got, want) {
			t.Errorf("statuses = %v, want %v", got, want)
		}
		if c.Len() != 1 {
			t.Errorf("receiver holds %d objects, want 1", c.Len())
		}
		dstest.WantNoProblems(t, c)
	})
}

func TestSyncerDownThenUpSendsOnlyDifferences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		var objs []api.Resource
		for i := range 4 {
			objs = append(objs, mustCreate(t, mem, pool(i)))
		}
		f := dstest.NewFaulty(mem)
		c, stop := run(t, f, pools)
		defer stop()
		settle()
		mark := c.Mark()
		f.Down(true)
		settle()
		if s := c.Status(); s != datastore.ResyncInProgress {
			t.Errorf("status while down = %s, want ResyncInProgress", s)
		}
		mustDelete(t, mem, objs[0])
		re := mustCreate(t, mem, pool(0)) // same content, new uid: Modified, not Deleted+New
		mustUpdate(t, mem, objs[1])       // same content, new revision: nothing
		f.Up()
		time.Sleep(time.Minute)
		synctest.Wait()
		got := dstest.Summary(c.UpdatesSince(mark))
		if want := []string{"Modified " + key(re).String()}; !slices.Equal(got, want) {
			t.Errorf("updates = %q, want %q", got, want)
		}
		if got := c.StatusesSince(mark); !slices.Equal(got, []datastore.Status{datastore.ResyncInProgress, datastore.InSync}) {
			t.Errorf("statuses = %v", got)
		}
		dstest.WantNoProblems(t, c)
	})
}

func TestSyncerNamespaceScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		a := mustCreate(t, mem, dstest.NetworkPolicy(dstest.NamespaceA, "np"))
		bnp := mustCreate(t, mem, dstest.NetworkPolicy(dstest.NamespaceB, "np"))
		f := dstest.NewFaulty(mem)
		kinds := []datastore.ListOptions{{Kind: api.KindNetworkPolicy, Namespace: dstest.NamespaceA}}
		c, stop := run(t, f, kinds)
		defer stop()
		settle()
		if _, ok := c.Get(key(bnp)); ok || c.Len() != 1 {
			t.Errorf("receiver holds %d objects, want only %s", c.Len(), key(a))
		}
		mustUpdate(t, mem, withLabel(bnp, "x", "y"))
		f.BreakWatches()
		settle()
		if _, ok := c.Get(key(a)); !ok || c.Len() != 1 {
			t.Errorf("after a relist the receiver holds %d objects, want only %s", c.Len(), key(a))
		}
		dstest.WantNoProblems(t, c)
	})
}

// TestSyncerRelistDeletesOnlyItsScope: two watches of one kind in two namespaces; objects deleted
// while the watches are held back are removed by the relists, and a relist never removes what the
// other watch covers (the keys a relist compares with are derived from what the receiver holds).
func TestSyncerRelistDeletesOnlyItsScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		a1 := mustCreate(t, mem, dstest.NetworkPolicy(dstest.NamespaceA, "np1"))
		a2 := mustCreate(t, mem, dstest.NetworkPolicy(dstest.NamespaceA, "np2"))
		b1 := mustCreate(t, mem, dstest.NetworkPolicy(dstest.NamespaceB, "np1"))
		b2 := mustCreate(t, mem, dstest.NetworkPolicy(dstest.NamespaceB, "np2"))
		f := dstest.NewFaulty(mem)
		kinds := []datastore.ListOptions{
			{Kind: api.KindNetworkPolicy, Namespace: dstest.NamespaceA},
			{Kind: api.KindNetworkPolicy, Namespace: dstest.NamespaceB},
		}
		c, stop := run(t, f, kinds)
		defer stop()
		settle()
		if c.Len() != 4 {
			t.Fatalf("receiver holds %d objects, want 4", c.Len())
		}
		mark := c.Mark()
		f.HoldWatches()
		settle()
		mustDelete(t, mem, a2)
		mustDelete(t, mem, b1)
		if err := mem.Compact(mem.Revision()); err != nil {
			t.Fatal(err)
		}
		f.ReleaseWatches()
		settle()
		got := dstest.Summary(c.UpdatesSince(mark))
		want := dstest.Summary([]datastore.Update{
			{Type: datastore.UpdateDeleted, Key: key(a2)},
			{Type: datastore.UpdateDeleted, Key: key(b1)},
		})
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("updates after the relists:\n got %q\nwant %q", got, want)
		}
		for _, o := range []api.Resource{a1, b2} {
			if _, ok := c.Get(key(o)); !ok {
				t.Errorf("%s lost", key(o))
			}
		}
		dstest.WantMatchesList(t, c, mem, kinds)
		dstest.WantNoProblems(t, c)
	})
}

func TestSyncerRejectsBadKinds(t *testing.T) {
	for _, tc := range []struct {
		kinds []datastore.ListOptions
		want  string
	}{
		{nil, "no kinds"},
		{[]datastore.ListOptions{{Kind: "Gadget"}}, `unknown resource kind "Gadget"`},
		{[]datastore.ListOptions{{Kind: api.KindIPPool, Namespace: "x"}}, "cluster-scoped"},
		{[]datastore.ListOptions{{Kind: api.KindIPPool}, {Kind: "pools"}}, "selected twice"},
		{[]datastore.ListOptions{{Kind: api.KindNetworkPolicy, Namespace: "a"}, {Kind: api.KindNetworkPolicy}}, "selected twice"},
	} {
		err := datastore.NewSyncer(memory.New(), syncertest.New(), tc.kinds).Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run with %+v = %v, want an error containing %q", tc.kinds, err, tc.want)
		}
	}
	// Distinct namespaces of one kind are fine.
	synctest.Test(t, func(t *testing.T) {
		_, stop := run(t, memory.New(), []datastore.ListOptions{
			{Kind: api.KindNetworkPolicy, Namespace: "a"}, {Kind: api.KindNetworkPolicy, Namespace: "b"},
		})
		synctest.Wait()
		stop()
	})
}

func TestSyncerRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := datastore.NewSyncer(memory.New(), syncertest.New(), pools)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("second Run = %v, want an error", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestSameContent(t *testing.T) {
	a := dstest.NetworkPolicy("ns", "np")
	a.ResourceVersion = "5"
	b := a.DeepCopy()
	b.ResourceVersion = "9"
	b.Generation = 3
	if !datastore.SameContent(a, b) {
		t.Errorf("objects differing only in revision are not the same content")
	}
	b.Spec.Ingress = nil
	if datastore.SameContent(a, b) {
		t.Errorf("objects with different rules are the same content")
	}
	c := a.DeepCopy()
	c.Labels = map[string]string{}
	if !datastore.SameContent(a, c) {
		t.Errorf("nil and empty labels differ")
	}
	if a.ResourceVersion != "5" || c.ResourceVersion != "5" {
		t.Errorf("SameContent modified its arguments")
	}
}
