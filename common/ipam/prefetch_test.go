package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// opLog is a Backend that records every call ("get IPAMBlock/10-0-0-0-26", "create IPAMHandle/h1",
// "list IPPool") in the order the calls start.
type opLog struct {
	datastore.Backend
	mu  sync.Mutex
	ops []string
}

func (o *opLog) add(s string) {
	o.mu.Lock()
	o.ops = append(o.ops, s)
	o.mu.Unlock()
}

func (o *opLog) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ops := o.ops
	o.ops = nil
	return ops
}

func (o *opLog) Get(ctx context.Context, k datastore.Key) (api.Resource, error) {
	o.add("get " + k.Kind + "/" + k.Name)
	return o.Backend.Get(ctx, k)
}

func (o *opLog) List(ctx context.Context, opts datastore.ListOptions) ([]api.Resource, string, error) {
	o.add("list " + opts.Kind)
	return o.Backend.List(ctx, opts)
}

func (o *opLog) Create(ctx context.Context, r api.Resource) (api.Resource, error) {
	o.add("create " + r.GetObjectKind().GroupVersionKind().Kind + "/" + r.GetName())
	return o.Backend.Create(ctx, r)
}

func (o *opLog) Update(ctx context.Context, r api.Resource) (api.Resource, error) {
	o.add("update " + r.GetObjectKind().GroupVersionKind().Kind + "/" + r.GetName())
	return o.Backend.Update(ctx, r)
}

func (o *opLog) Delete(ctx context.Context, k datastore.Key, rev string) (api.Resource, error) {
	o.add("delete " + k.Kind + "/" + k.Name)
	return o.Backend.Delete(ctx, k, rev)
}

// readsBeforeWrites checks that ops are reads followed by writes — IPAM's reads all happen before its
// first write, in one round trip — and returns the reads.
func readsBeforeWrites(t *testing.T, ops []string) (reads []string) {
	t.Helper()
	wrote := false
	for _, op := range ops {
		isRead := strings.HasPrefix(op, "get ") || strings.HasPrefix(op, "list ")
		if isRead && wrote {
			t.Errorf("read %q after a write: %q", op, ops)
		}
		if isRead {
			reads = append(reads, op)
		} else {
			wrote = true
		}
	}
	return reads
}

func blockGet(p netip.Prefix) string {
	return "get " + api.KindIPAMBlock + "/" + api.CIDRToName(p.String())
}

// prefetchEnv is a pool and one host that already owns two blocks (the second one with room), as
// a node that has run pods for a while; every test Client is new, as a CNI invocation's is.
func prefetchEnv(t *testing.T) (*opLog, netip.Prefix, netip.Prefix) {
	t.Helper()
	ctx := testCtx(t)
	mem := newMemory(t)
	createPools(t, mem, poolSpec{name: "p", cidr: "10.0.0.0/24", blockSize: 29})
	c := New(mem)
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 9, HandleID: "old", Hostname: "n1"})
	if err != nil || len(r.IPv4) != 9 {
		t.Fatalf("AutoAssign: %v %v", r, err)
	}
	first, second := r.IPv4[0].Masked(), r.IPv4[8].Masked()
	if first == second {
		t.Fatalf("one block: %v", r.IPv4)
	}
	return &opLog{Backend: mem}, first, second
}

func TestPrefetchHintedBlock(t *testing.T) {
	ctx := testCtx(t)
	ol, first, second := prefetchEnv(t)
	c := New(ol)
	pf := c.Prefetch(ctx, "n1", second)
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1", Prefetch: pf})
	if err != nil || len(r.IPv4) != 1 {
		t.Fatalf("AutoAssign: %v %v", r, err)
	}
	if r.IPv4[0].Masked() != second {
		t.Errorf("allocated %s, want one from the hinted block %s", r.IPv4[0], second)
	}
	ops := ol.take()
	reads := readsBeforeWrites(t, ops)
	if len(reads) != 5 {
		// IPAMConfig, pools, reservations, affinities, the hinted block; nothing else (the full first
		// block is not read: the hinted one comes first).
		t.Errorf("reads %q, want 5", reads)
	}
	for _, r := range reads {
		if r == blockGet(first) {
			t.Errorf("read the full block %s: %q", first, ops)
		}
	}
	if want := []string{"create IPAMHandle/h1", "update IPAMBlock/" + api.CIDRToName(second.String())}; fmt.Sprint(ops[len(reads):]) != fmt.Sprint(want) {
		t.Errorf("writes %q, want %q", ops[len(reads):], want)
	}
	consistency(t, ol, true)
}

func TestPrefetchWithoutHintReadsFirstAffineBlock(t *testing.T) {
	ctx := testCtx(t)
	ol, first, _ := prefetchEnv(t)
	c := New(ol)
	// The first block is full: the allocator moves on to the second, which is read then.
	pf := c.Prefetch(ctx, "n1")
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1", Prefetch: pf})
	if err != nil || len(r.IPv4) != 1 {
		t.Fatalf("AutoAssign: %v %v", r, err)
	}
	ops := ol.take()
	if len(ops) < 5 || !strings.Contains(fmt.Sprint(ops[:5]), blockGet(first)) {
		t.Errorf("the first affine block %s was not read with the affinities: %q", first, ops)
	}
	consistency(t, ol, true)

	// Release the first block's addresses: now the first block has room and is allocated from with
	// no read of its own.
	if err := c.ReleaseByHandle(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	ol.take()
	c = New(ol)
	r, err = c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h2", Hostname: "n1", Prefetch: c.Prefetch(ctx, "n1")})
	if err != nil || len(r.IPv4) != 1 || r.IPv4[0].Masked() != first {
		t.Fatalf("AutoAssign: %v %v, want an address of %s", r, err, first)
	}
	if reads := readsBeforeWrites(t, ol.take()); len(reads) != 5 {
		t.Errorf("reads %q, want 5", reads)
	}
	consistency(t, ol, true)
}

func TestPrefetchWithoutPrefetchReadsFirstAffineBlock(t *testing.T) {
	// AutoAssign reading for itself does the same: the first affine block with the affinities.
	ctx := testCtx(t)
	ol, first, _ := prefetchEnv(t)
	c := New(ol)
	if err := c.ReleaseByHandle(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	ol.take()
	c = New(ol)
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1"})
	if err != nil || len(r.IPv4) != 1 || r.IPv4[0].Masked() != first {
		t.Fatalf("AutoAssign: %v %v, want an address of %s", r, err, first)
	}
	if reads := readsBeforeWrites(t, ol.take()); len(reads) != 5 {
		t.Errorf("reads %q, want 5", reads)
	}
}

func TestPrefetchStaleHints(t *testing.T) {
	ctx := testCtx(t)
	ol, _, second := prefetchEnv(t)
	// Another host's block, a block that does not exist and a block outside every pool: read, not used.
	c := New(ol)
	other, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "other", Hostname: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	ol.take()
	c = New(ol)
	pf := c.Prefetch(ctx, "n1", other.IPv4[0].Masked(), netip.MustParsePrefix("10.0.0.248/29"), netip.MustParsePrefix("192.168.0.0/29"))
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1", Prefetch: pf})
	if err != nil || len(r.IPv4) != 1 || r.IPv4[0].Masked() != second {
		t.Fatalf("AutoAssign: %v %v, want an address of the host's block %s", r, err, second)
	}
	consistency(t, ol, true)
}

func TestPrefetchForAnotherHostOrClientIsNotUsed(t *testing.T) {
	ctx := testCtx(t)
	ol, _, _ := prefetchEnv(t)
	c := New(ol)
	pf := c.Prefetch(ctx, "n1")
	// n2's request cannot use n1's affinities: it reads its own.
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h2", Hostname: "n2", Prefetch: pf})
	if err != nil || len(r.IPv4) != 1 {
		t.Fatalf("AutoAssign: %v %v", r, err)
	}
	// Another Client's Prefetch is ignored too.
	c2 := New(ol)
	if _, err := c2.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h3", Hostname: "n1", Prefetch: pf}); err != nil {
		t.Fatal(err)
	}
	// And the Prefetch still serves its own host.
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1", Prefetch: pf}); err != nil {
		t.Fatal(err)
	}
	consistency(t, ol, true)
}

func TestPrefetchAssignIP(t *testing.T) {
	ctx := testCtx(t)
	ol, _, _ := prefetchEnv(t)
	c := New(ol)
	pf := c.Prefetch(ctx, "n1")
	for _, a := range []string{"10.0.0.200", "10.0.0.201"} {
		if _, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, a), HandleID: "h1", Hostname: "n1", Prefetch: pf}); err != nil {
			t.Fatalf("AssignIP %s: %v", a, err)
		}
	}
	pools := 0
	for _, op := range ol.take() {
		if op == "list "+api.KindIPPool {
			pools++
		}
	}
	if pools != 1 {
		t.Errorf("listed the pools %d times, want once (by the Prefetch)", pools)
	}
	consistency(t, ol, true)
}

// failingLists fails every List.
type failingLists struct{ *opLog }

func (f failingLists) List(ctx context.Context, opts datastore.ListOptions) ([]api.Resource, string, error) {
	f.add("list " + opts.Kind)
	return nil, "", errors.New("injected: the datastore is unreachable")
}

func TestPrefetchError(t *testing.T) {
	ol, _, _ := prefetchEnv(t)
	c := New(failingLists{ol})
	pf := c.Prefetch(testCtx(t), "n1")
	if _, err := c.AutoAssign(testCtx(t), AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1", Prefetch: pf}); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("AutoAssign with a failed Prefetch: %v, want the Prefetch's error", err)
	}
	for _, op := range ol.take() {
		if !strings.HasPrefix(op, "get ") && !strings.HasPrefix(op, "list ") {
			t.Errorf("wrote after a failed Prefetch: %s", op)
		}
	}
}
