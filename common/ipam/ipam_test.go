package ipam

import (
	"encoding/json"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

func TestBorrowFromAnotherHostsBlock(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/25", blockSize: 26})
	c := New(b)
	ra, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "a1", Hostname: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "b1", Hostname: "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	blockA, blockB := ra.IPv4[0].Masked(), rb.IPv4[0].Masked()
	if blockA == blockB {
		t.Fatalf("both hosts got block %s", blockA)
	}
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 64, HandleID: "a2", Hostname: "host-a"})
	if err != nil || len(r.IPv4) != 64 {
		t.Fatalf("AutoAssign: %d addresses, %v", len(r.IPv4), err)
	}
	var inA, inB int
	for _, p := range r.IPv4 {
		switch p.Masked() {
		case blockA:
			inA++
		case blockB:
			inB++
		}
	}
	if inA != 63 || inB != 1 {
		t.Errorf("got %d from host-a's block and %d borrowed from host-b's; want 63 and 1", inA, inB)
	}
	// The borrowed address stays in host-b's block: the block's affinity did not change.
	alloc, err := c.GetAssignmentAttributes(ctx, r.IPv4[63].Addr())
	if err != nil {
		t.Fatal(err)
	}
	if alloc.Handle != "a2" {
		t.Errorf("allocation %+v", alloc)
	}
	consistency(t, b, true)

	// With strict affinity, nothing more is borrowed.
	setConfig(t, b, true, 0)
	if err := c.ReleaseByHandle(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	r, err = c.AutoAssign(ctx, AutoAssignArgs{Num4: 64, HandleID: "a3", Hostname: "host-a"})
	if err != nil || len(r.IPv4) != 63 {
		t.Fatalf("strict AutoAssign: %d addresses, %v", len(r.IPv4), err)
	}
	for _, p := range r.IPv4 {
		if p.Masked() != blockA {
			t.Errorf("strict affinity borrowed %s", p)
		}
	}
	consistency(t, b, true)
}

func TestHandleAccountingDualStack(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24", blockSize: 30}, poolSpec{cidr: "fd00::/120", blockSize: 126})
	c := New(b)
	res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 6, Num6: 3, HandleID: "k8s-pod-network.abc", Hostname: "n1",
		Attrs: map[string]string{AttributePod: "p", AttributeNamespace: "ns"}})
	if err != nil || len(res.IPv4) != 6 || len(res.IPv6) != 3 {
		t.Fatalf("AutoAssign: %v %v", res, err)
	}
	h, err := c.getHandle(ctx, "k8s-pod-network.abc")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range h.Spec.Block {
		total += n
	}
	if total != 9 || len(h.Spec.Block) != 3 {
		t.Errorf("handle records %v", h.Spec.Block)
	}
	got, err := c.IPsByHandle(ctx, "k8s-pod-network.abc")
	if err != nil || len(got) != 9 {
		t.Fatalf("IPsByHandle: %v %v", got, err)
	}
	alloc, err := c.GetAssignmentAttributes(ctx, res.IPv6[0].Addr())
	if err != nil || alloc.Attrs[AttributePod] != "p" || alloc.Handle != "k8s-pod-network.abc" || alloc.SequenceNumber == nil {
		t.Errorf("GetAssignmentAttributes: %+v %v", alloc, err)
	}
	consistency(t, b, true)
	if err := c.ReleaseByHandle(ctx, "k8s-pod-network.abc"); err != nil {
		t.Fatal(err)
	}
	if left := consistency(t, b, true); len(left) != 0 {
		t.Errorf("left allocated: %v", left)
	}
	err = c.ReleaseByHandle(ctx, "k8s-pod-network.abc")
	if !errors.Is(err, ErrHandleNotFound) || !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("second ReleaseByHandle: %v, want ErrHandleNotFound", err)
	}
	if _, err := c.IPsByHandle(ctx, "nope"); !errors.Is(err, ErrHandleNotFound) {
		t.Errorf("IPsByHandle(unknown): %v", err)
	}
	// The node keeps its (now empty) blocks: affinity survives releases.
	affs, _ := c.hostAffinities(ctx, "n1")
	if len(affs) != 3 {
		t.Errorf("n1 has %d affinities after release, want 3", len(affs))
	}
}

func TestSequenceNumberABA(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/26"})
	c := New(b)
	ip := mustAddr(t, "10.0.0.7")
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: ip, HandleID: "old", Hostname: "n1"}); err != nil {
		t.Fatal(err)
	}
	first, err := c.GetAssignmentAttributes(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	// Released and handed to someone else.
	if _, err := c.ReleaseIPs(ctx, ReleaseOptions{Address: ip, Handle: "old", SequenceNumber: first.SequenceNumber}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: ip, HandleID: "new", Hostname: "n1"}); err != nil {
		t.Fatal(err)
	}
	second, _ := c.GetAssignmentAttributes(ctx, ip)
	if *second.SequenceNumber == *first.SequenceNumber {
		t.Fatalf("reallocation kept sequence number %d", *first.SequenceNumber)
	}
	// A stale release (say, a GC that observed the first allocation) must not free the new one.
	_, err = c.ReleaseIPs(ctx, ReleaseOptions{Address: ip, SequenceNumber: first.SequenceNumber})
	if !errors.Is(err, ErrBadSequenceNumber) {
		t.Fatalf("stale release: %v, want ErrBadSequenceNumber", err)
	}
	_, err = c.ReleaseIPs(ctx, ReleaseOptions{Address: ip, Handle: "old"})
	if !errors.Is(err, ErrHandleMismatch) {
		t.Fatalf("release with the old handle: %v, want ErrHandleMismatch", err)
	}
	if a, err := c.GetAssignmentAttributes(ctx, ip); err != nil || a.Handle != "new" {
		t.Fatalf("the new allocation was lost: %+v %v", a, err)
	}
	consistency(t, b, true)
}

func TestReleaseEmptyBlocks(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24", blockSize: 28})
	c := New(b)
	// n1 gets two blocks (20 addresses), n2 borrows nothing.
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 20, HandleID: "h1", Hostname: "n1"}); err != nil {
		t.Fatal(err)
	}
	affs, _ := c.hostAffinities(ctx, "n1")
	if len(affs) != 2 {
		t.Fatalf("n1 has %d blocks", len(affs))
	}
	// requireEmpty refuses non-empty blocks and changes nothing.
	err := c.ReleaseHostAffinities(ctx, "n1", true)
	if !errors.Is(err, ErrBlockNotEmpty) {
		t.Fatalf("ReleaseHostAffinities(requireEmpty): %v", err)
	}
	consistency(t, b, true)
	// Node deleted: blocks lose their affinity but keep the addresses...
	if err := c.ReleaseHostAffinities(ctx, "n1", false); err != nil {
		t.Fatal(err)
	}
	if affs, _ := c.hostAffinities(ctx, "n1"); len(affs) != 0 {
		t.Errorf("affinities left: %v", len(affs))
	}
	blocks, _ := c.listBlocks(ctx)
	for _, o := range blocks {
		if o.Spec.Affinity != nil {
			t.Errorf("block %s still affine to %s", o.Spec.CIDR, *o.Spec.Affinity)
		}
	}
	if held := consistency(t, b, false); len(held["h1"]) != 20 {
		t.Errorf("addresses lost: %v", held)
	}
	// ...and unaffine blocks are deleted once their last address goes.
	if err := c.ReleaseByHandle(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if blocks, _ := c.listBlocks(ctx); len(blocks) != 0 {
		t.Errorf("%d empty unaffine blocks left", len(blocks))
	}
	// An empty affine block is released through the affinity protocol.
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h2", Hostname: "n2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseByHandle(ctx, "h2"); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseHostAffinities(ctx, "n2", true); err != nil {
		t.Fatal(err)
	}
	if blocks, _ := c.listBlocks(ctx); len(blocks) != 0 {
		t.Errorf("blocks left: %d", len(blocks))
	}
	if affs, _ := c.listAffinities(ctx); len(affs) != 0 {
		t.Errorf("affinities left: %d", len(affs))
	}
}

func TestReleaseAffinityCIDR(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24"})
	c := New(b)
	claimed, failed, err := c.ClaimAffinity(ctx, netip.MustParsePrefix("10.0.0.0/25"), "n1")
	if err != nil || len(claimed) != 2 || len(failed) != 0 {
		t.Fatalf("ClaimAffinity: %v %v %v", claimed, failed, err)
	}
	// Claiming again is idempotent.
	if claimed, _, _ := c.ClaimAffinity(ctx, netip.MustParsePrefix("10.0.0.0/25"), "n1"); len(claimed) != 2 {
		t.Errorf("re-claim: %v", claimed)
	}
	if err := c.ReleaseAffinity(ctx, netip.MustParsePrefix("10.0.0.64/26"), "n1", true); err != nil {
		t.Fatal(err)
	}
	if affs, _ := c.hostAffinities(ctx, "n1"); len(affs) != 1 || affs[0].Spec.CIDR != "10.0.0.0/26" {
		t.Errorf("affinities after release: %v", affs)
	}
	if err := c.ReleaseAffinity(ctx, netip.MustParsePrefix("10.0.0.0/27"), "n1", true); !errors.Is(err, ErrCIDRTooSmall) {
		t.Errorf("release of a sub-block CIDR: %v", err)
	}
	if _, _, err := c.ClaimAffinity(ctx, netip.MustParsePrefix("11.0.0.0/26"), "n1"); !errors.Is(err, ErrNotInPool) {
		t.Errorf("claim outside pools: %v", err)
	}
	consistency(t, b, true)
}

func TestReservationsNeverHandedOut(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{name: "p", cidr: "10.0.0.0/24", blockSize: 26})
	// A whole block, and single addresses in others.
	reserve(t, b, "r1", "10.0.0.64/26", "10.0.0.1", "10.0.0.130/31")
	c := New(b)
	res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 300, HandleID: "h", Hostname: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := 256 - 64 - 1 - 2; len(res.IPv4) != want {
		t.Errorf("got %d addresses, want %d (%v)", len(res.IPv4), want, res.Msgs)
	}
	for _, p := range res.IPv4 {
		if a := p.Addr(); netip.MustParsePrefix("10.0.0.64/26").Contains(a) || a == mustAddr(t, "10.0.0.1") ||
			a == mustAddr(t, "10.0.0.130") || a == mustAddr(t, "10.0.0.131") {
			t.Errorf("reserved %s handed out", a)
		}
	}
	if blocks, _ := c.listBlocks(ctx); len(blocks) != 3 {
		t.Errorf("%d blocks, want 3 (the reserved block is never claimed)", len(blocks))
	}
	u, err := c.GetUtilization(ctx, UtilizationArgs{Pools: []string{"p"}})
	if err != nil || len(u) != 1 {
		t.Fatalf("GetUtilization: %v %v", u, err)
	}
	if u[0].Capacity.Int64() != 256 || u[0].InUse.Int64() != 189 || u[0].Reserved.Int64() != 67 || u[0].Available.Int64() != 0 {
		t.Errorf("utilization %v/%v/%v/%v", u[0].Capacity, u[0].InUse, u[0].Reserved, u[0].Available)
	}
	if len(u[0].Blocks) != 3 {
		t.Errorf("per-block utilization: %+v", u[0].Blocks)
	}
	for _, bu := range u[0].Blocks {
		if bu.Capacity != 64 || bu.Available != 0 || bu.InUse+bu.Reserved != 64 || bu.Affinity != "host:n1" {
			t.Errorf("block %+v", bu)
		}
	}
	// Asking for a reserved address by name works (reservations only steer AutoAssign), and it is then
	// counted as in use, not as reserved.
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, "10.0.0.70"), HandleID: "x", Hostname: "n1"}); err != nil {
		t.Fatalf("AssignIP of a reserved address: %v", err)
	}
	u, _ = c.GetUtilization(ctx, UtilizationArgs{Pools: []string{"10.0.0.0/24"}})
	if u[0].InUse.Int64() != 190 || u[0].Reserved.Int64() != 66 {
		t.Errorf("after AssignIP: in use %v, reserved %v", u[0].InUse, u[0].Reserved)
	}
	consistency(t, b, true)
}

func TestPoolSelection(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b,
		poolSpec{name: "rack1", cidr: "10.1.0.0/24", nodeSelector: "rack == '1'"},
		poolSpec{name: "rack2", cidr: "10.2.0.0/24", nodeSelector: "rack == '2'"},
		poolSpec{name: "team", cidr: "10.3.0.0/24", nsSelector: "team == 'a'"},
		poolSpec{name: "manual", cidr: "10.4.0.0/24", manual: true},
		poolSpec{name: "off", cidr: "10.5.0.0/24", disabled: true},
		poolSpec{name: "tunnel", cidr: "10.6.0.0/24", uses: []api.IPPoolAllowedUse{api.IPPoolAllowedUseTunnel}},
	)
	node := api.NewNode()
	node.Name = "n1"
	node.Labels = map[string]string{"rack": "2"}
	if _, err := b.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	c := New(b)
	in := func(p netip.Prefix, pool string) bool {
		return netip.MustParsePrefix(map[string]string{"rack1": "10.1.0.0/24", "rack2": "10.2.0.0/24", "team": "10.3.0.0/24",
			"manual": "10.4.0.0/24", "off": "10.5.0.0/24", "tunnel": "10.6.0.0/24"}[pool]).Contains(p.Addr())
	}
	for _, tc := range []struct {
		name    string
		args    AutoAssignArgs
		want    []string // acceptable pools
		wantErr error
	}{
		{"node labels read from the Node", AutoAssignArgs{}, []string{"rack2", "team"}, nil},
		{"labels given", AutoAssignArgs{HostLabels: map[string]string{"rack": "1"}}, []string{"rack1", "team"}, nil},
		{"namespace selector excludes", AutoAssignArgs{NamespaceLabels: map[string]string{"team": "b"}}, []string{"rack2"}, nil},
		{"namespace selector matches", AutoAssignArgs{NamespaceLabels: map[string]string{"team": "a"}, IPv4Pools: []string{"team"}}, []string{"team"}, nil},
		{"manual only when requested", AutoAssignArgs{IPv4Pools: []string{"manual"}}, []string{"manual"}, nil},
		{"request by CIDR ignores the node selector", AutoAssignArgs{IPv4Pools: []string{"10.1.0.0/24"}}, []string{"rack1"}, nil},
		{"tunnel use", AutoAssignArgs{IntendedUse: api.IPPoolAllowedUseTunnel, HostLabels: map[string]string{}}, []string{"tunnel", "team"}, nil},
		{"requested disabled pool", AutoAssignArgs{IPv4Pools: []string{"off"}}, nil, ErrPoolDisabled},
		{"requested missing pool", AutoAssignArgs{IPv4Pools: []string{"nope"}}, nil, ErrPoolNotFound},
		{"requested pool forbids the use", AutoAssignArgs{IPv4Pools: []string{"tunnel"}}, nil, ErrNoQualifiedPool},
		{"no IPv6 pool", AutoAssignArgs{Num6: 1}, nil, ErrNoQualifiedPool},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args.Num6 == 0 {
				args.Num4 = 1
			}
			args.HandleID, args.Hostname = "h-"+api.CIDRToName(tc.name), "n1"
			res, err := c.AutoAssign(ctx, args)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(res.IPv4) != 1 {
				t.Fatalf("AutoAssign: %v %v", res, err)
			}
			ok := false
			for _, p := range tc.want {
				ok = ok || in(res.IPv4[0], p)
			}
			if !ok {
				t.Errorf("got %s, want one of %v", res.IPv4[0], tc.want)
			}
		})
	}
}

func TestAssignIPSpecifics(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24"}, poolSpec{cidr: "10.9.0.0/24", disabled: true},
		poolSpec{cidr: "10.8.0.0/24", uses: []api.IPPoolAllowedUse{api.IPPoolAllowedUseTunnel}})
	c := New(b)
	// n1 owns 10.0.0.0/26; n2 asks for an address in it: honoured, in n1's block.
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "n1-pod", Hostname: "n1"}); err != nil {
		t.Fatal(err)
	}
	p, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, "10.0.0.10"), HandleID: "n2-pod", Hostname: "n2"})
	if err != nil || p.String() != "10.0.0.10/26" {
		t.Fatalf("AssignIP in another node's block: %v %v", p, err)
	}
	if a, _ := c.GetAssignmentAttributes(ctx, mustAddr(t, "10.0.0.10")); a.Affinity != "host:n1" {
		t.Errorf("block affinity changed: %+v", a)
	}
	// No host: an unaffine block.
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, "10.0.0.200"), HandleID: "nohost"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := c.GetAssignmentAttributes(ctx, mustAddr(t, "10.0.0.200")); a.Affinity != "" {
		t.Errorf("block without host has affinity %q", a.Affinity)
	}
	for _, tc := range []struct {
		ip   string
		use  api.IPPoolAllowedUse
		want error
	}{
		{"10.9.0.1", "", ErrPoolDisabled},
		{"10.8.0.1", "", ErrUseNotAllowed},
		{"10.7.0.1", "", ErrNotInPool},
		{"10.0.0.10", "", ErrAlreadyAllocated},
	} {
		if _, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, tc.ip), HandleID: "x", Hostname: "n3", IntendedUse: tc.use}); !errors.Is(err, tc.want) {
			t.Errorf("AssignIP(%s): %v, want %v", tc.ip, err, tc.want)
		}
	}
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, "10.8.0.1"), HandleID: "tun", Hostname: "n3", IntendedUse: api.IPPoolAllowedUseTunnel}); err != nil {
		t.Errorf("tunnel AssignIP: %v", err)
	}
	// Block limit applies when AssignIP has to claim a block.
	setConfig(t, b, true, 1)
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: mustAddr(t, "10.0.0.70"), HandleID: "y", Hostname: "n1"}); !errors.Is(err, ErrBlockLimit) {
		t.Errorf("AssignIP over the block limit: %v", err)
	}
	consistency(t, b, true)
}

func TestCooldown(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/30", blockSize: 30})
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setConfig(t, b, false, 0, func(s *api.IPAMConfigSpec) { s.IPCooldownSeconds = ptr(60) })
	c := New(b, WithClock(clock))
	res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 4, HandleID: "h", Hostname: "n1"})
	if err != nil || len(res.IPv4) != 4 {
		t.Fatal(res, err)
	}
	ip := res.IPv4[2].Addr()
	if _, err := c.ReleaseIPs(ctx, ReleaseOptions{Address: ip}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignIP(ctx, AssignIPArgs{IP: ip, HandleID: "again", Hostname: "n1"}); !errors.Is(err, ErrAlreadyAllocated) {
		t.Errorf("AssignIP during cool-down: %v", err)
	}
	if r, _ := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h2", Hostname: "n1"}); len(r.IPv4) != 0 {
		t.Errorf("cooling address handed out: %v", r.IPv4)
	}
	if _, err := c.GetAssignmentAttributes(ctx, ip); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("a cooling address reads as allocated: %v", err)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h3", Hostname: "n1"})
	if err != nil || len(r.IPv4) != 1 || r.IPv4[0].Addr() != ip {
		t.Errorf("after the cool-down: %v %v, want %s", r.IPv4, err, ip)
	}
	consistency(t, b, false)
}

func TestWindowsReservedAndEnsureBlock(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24"}, poolSpec{cidr: "fd00::/120"})
	setConfig(t, b, true, 0)
	c := New(b)
	eb, err := c.EnsureBlock(ctx, EnsureBlockArgs{Hostname: "win1", IPv4: true, IPv6: true,
		HostReservedAttrIPv4s: WindowsHostReserved(), HostReservedAttrIPv6s: WindowsHostReserved()})
	if err != nil || !eb.IPv4.IsValid() || !eb.IPv6.IsValid() {
		t.Fatalf("EnsureBlock: %+v %v", eb, err)
	}
	again, err := c.EnsureBlock(ctx, EnsureBlockArgs{Hostname: "win1", IPv4: true, IPv6: true})
	if err != nil || again != eb {
		t.Errorf("EnsureBlock is not stable: %+v then %+v (%v)", eb, again, err)
	}
	res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 100, HandleID: "h", Hostname: "win1", HostReservedAttrIPv4s: WindowsHostReserved()})
	if err != nil {
		t.Fatal(err)
	}
	// The first block keeps 4 addresses for the host; the second block is created with them reserved too.
	if len(res.IPv4) != 100 {
		t.Errorf("%d addresses", len(res.IPv4))
	}
	for _, p := range res.IPv4 {
		if ord := offsetIn(p.Masked(), p.Addr()); ord < 3 || ord == 63 {
			t.Errorf("Windows-reserved %s handed out", p)
		}
	}
	u, _ := c.GetUtilization(ctx, UtilizationArgs{})
	if u[0].InUse.Int64() != 108 {
		t.Errorf("v4 in use %v, want 100 + 2×4 reserved", u[0].InUse)
	}
	consistency(t, b, true)
}

// TestClaimCrashRecovery leaves the claim protocol's intermediate states behind and checks that the next
// allocation (or Check) repairs them.
func TestClaimCrashRecovery(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24"})
	c := New(b)
	cidr := netip.MustParsePrefix("10.0.0.128/26")

	// Crash after step 1: a pending affinity, no block. n1's next allocation resumes the claim.
	if _, err := c.pendingAffinity(ctx, cidr, "n1"); err != nil {
		t.Fatal(err)
	}
	res, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h1", Hostname: "n1"})
	if err != nil || len(res.IPv4) != 1 || res.IPv4[0].Masked() != cidr {
		t.Fatalf("resumed claim: %v %v", res, err)
	}
	consistency(t, b, true)

	// Crash after step 2: block created, affinity still pending. Confirmed on the next allocation.
	cidr2 := netip.MustParsePrefix("10.0.0.0/26")
	aff, err := c.pendingAffinity(ctx, cidr2, "n2")
	if err != nil {
		t.Fatal(err)
	}
	nb, _ := newBlock(cidr2, ptr(hostAffinity("n2")), time.Now())
	if _, err := b.Create(ctx, nb.obj); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h2", Hostname: "n2"}); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Get(ctx, datastore.Key{Kind: api.KindBlockAffinity, Name: aff.Name})
	if got.(*api.BlockAffinity).Spec.State != api.BlockAffinityConfirmed {
		t.Errorf("affinity not confirmed: %s", got.(*api.BlockAffinity).Spec.State)
	}
	consistency(t, b, true)

	// A claim that lost the race and crashed: pending affinity for a block n1 owns. n3's next
	// allocation drops it; the block stays n1's.
	if _, err := c.pendingAffinity(ctx, cidr, "n3"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "h3", Hostname: "n3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, affinityKey("n3", cidr.String())); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("stale pending affinity kept: %v", err)
	}
	consistency(t, b, true)
}

func TestCheckAndReleaseFromReport(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	createPools(t, b, poolSpec{cidr: "10.0.0.0/24", blockSize: 28})
	c := New(b, WithEmptyBlockMinAge(0))
	ts := Timestamp(time.Now().Add(-time.Hour))
	assign := func(handle, host string, n int) []netip.Addr {
		t.Helper()
		r, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: n, HandleID: handle, Hostname: host, Attrs: map[string]string{AttributeTimestamp: ts}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Addrs()
	}
	live := assign("live", "n1", 2)
	leak := assign("leak", "n1", 3)
	partly := assign("partly", "n1", 2) // one address live: the whole handle stays
	gone := assign("on-gone-node", "gone", 1)
	// A handle whose count is too high (crash between handle and block writes).
	h := &handleRef{id: "live"}
	if err := c.adjustHandle(ctx, h, "10.0.0.0/28", 5, false); err != nil {
		t.Fatal(err)
	}
	// A handle with no addresses at all.
	if err := c.adjustHandle(ctx, &handleRef{id: "empty"}, "10.0.0.16/28", 1, false); err != nil {
		t.Fatal(err)
	}
	// Two blocks nobody has: one gets a stale pending affinity, the other becomes an extra empty block of n1.
	taken, err := c.existingBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := testPool(t, "10.0.0.0/24", 28).walker("picker", taken, reservations{})
	staleCIDR, _ := w.next()
	emptyCIDR, _ := w.next()
	if _, err := c.pendingAffinity(ctx, staleCIDR, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ClaimAffinity(ctx, emptyCIDR, "n1"); err != nil {
		t.Fatal(err)
	}
	var lv Liveness
	lv.AddNode("n1")
	for _, a := range live {
		lv.AddIP(a, "pod live")
	}
	lv.AddIP(partly[0], "pod partly")
	lv.AddIP(mustAddr(t, "10.0.0.250"), "pod without allocation")
	lv.AddIP(mustAddr(t, "192.168.0.1"), "pod outside pools")

	r, err := c.Check(ctx, lv)
	if err != nil {
		t.Fatal(err)
	}
	var leaked []netip.Addr
	for _, a := range r.Leaked {
		leaked = append(leaked, a.IP)
	}
	if diff := cmp.Diff(append(append([]netip.Addr{}, leak...), gone...), leaked, cmpAddrs); diff != "" {
		t.Errorf("leaked (-want +got):\n%s", diff)
	}
	if len(r.NotAllocated) != 1 || len(r.OutsidePools) != 1 {
		t.Errorf("not allocated %v, outside %v", r.NotAllocated, r.OutsidePools)
	}
	if len(r.OrphanNodes) != 1 || r.OrphanNodes[0].Node != "gone" {
		t.Errorf("orphan nodes %+v", r.OrphanNodes)
	}
	if len(r.StaleAffinities) != 1 || len(r.EmptyBlocks) != 1 || r.EmptyBlocks[0].CIDR != emptyCIDR {
		t.Errorf("stale affinities %+v, empty blocks %+v", r.StaleAffinities, r.EmptyBlocks)
	}
	problems := map[string]string{}
	for _, p := range r.HandleProblems {
		problems[p.HandleID] = p.Problem
	}
	if diff := cmp.Diff(map[string]string{"live": problemCounts, "empty": problemNoAddresses}, problems); diff != "" {
		t.Errorf("handle problems (-want +got):\n%s", diff)
	}
	// The grace period hides young allocations (a pod being created holds its address before its
	// endpoint exists).
	if _, err := c.AutoAssign(ctx, AutoAssignArgs{Num4: 1, HandleID: "young", Hostname: "n1",
		Attrs: map[string]string{AttributeTimestamp: Timestamp(time.Now())}}); err != nil {
		t.Fatal(err)
	}
	r2, err := c.Check(ctx, lv, WithLeakGracePeriod(10*time.Minute))
	if err != nil || r2.Summary.Recent != 1 || len(r2.Leaked) != len(r.Leaked) {
		t.Errorf("with grace: recent %d, leaked %d (%v)", r2.Summary.Recent, len(r2.Leaked), err)
	}
	if err := c.ReleaseByHandle(ctx, "young"); err != nil {
		t.Fatal(err)
	}
	// The report survives JSON, as tortiectl writes it to a file.
	data, err := jsonRoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.ReleaseFromReport(ctx, data)
	if err != nil {
		t.Fatalf("ReleaseFromReport: %v (%+v)", err, sum)
	}
	if sum.Released != 4 || sum.HandlesRepaired != 2 || sum.BlocksReleased != 1 || sum.AffinitiesReleased < 2 {
		t.Errorf("summary %+v", sum)
	}
	after, err := c.Check(ctx, lv)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Clean() {
		t.Errorf("report after repair is not clean: %+v", after)
	}
	held := consistency(t, b, true)
	if len(held["live"]) != 2 || len(held["partly"]) != 2 || len(held["leak"]) != 0 {
		t.Errorf("allocations after GC: %v", held)
	}
}

func jsonRoundTrip(r Report) (Report, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return Report{}, err
	}
	var out Report
	err = json.Unmarshal(data, &out)
	return out, err
}

var cmpAddrs = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestReportPersisting(t *testing.T) {
	seq := uint64(3)
	a := Allocation{IP: netip.MustParseAddr("10.0.0.1"), Handle: "h", SequenceNumber: &seq}
	seq2 := uint64(4)
	b := Allocation{IP: netip.MustParseAddr("10.0.0.1"), Handle: "h", SequenceNumber: &seq2}
	c := Allocation{IP: netip.MustParseAddr("10.0.0.2"), Handle: "h"}
	first := Report{Leaked: []Allocation{a, c}, EmptyBlocks: []BlockRef{{CIDR: netip.MustParsePrefix("10.0.0.0/26"), Revision: "5"}}}
	second := Report{Leaked: []Allocation{b, c}, EmptyBlocks: []BlockRef{{CIDR: netip.MustParsePrefix("10.0.0.0/26"), Revision: "6"}}}
	got := second.Persisting(first)
	if len(got.Leaked) != 1 || got.Leaked[0].IP != c.IP || len(got.EmptyBlocks) != 0 {
		t.Errorf("Persisting: %+v", got)
	}
}

func TestLivenessFromDatastore(t *testing.T) {
	ctx := testCtx(t)
	b := newMemory(t)
	n := api.NewNode()
	n.Name = "n1"
	n.Spec.BGP = &api.NodeBGPSpec{IPv4IPIPTunnelAddr: "10.0.0.1"}
	n.Spec.IPv4VXLANTunnelAddr = "10.0.0.2"
	n.Spec.Wireguard = &api.NodeWireguardSpec{InterfaceIPv6Address: "fd00::3"}
	w := api.NewWorkloadEndpoint()
	w.Namespace, w.Name = "ns", api.WorkloadEndpointName("n1", "k8s", "web", "eth0")
	w.Spec.IPNetworks = []string{"10.0.0.9/32", "fd00::9/128"}
	for _, o := range []api.Resource{n, w} {
		if _, err := b.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	l, err := LivenessFromDatastore(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Nodes["n1"] || len(l.Nodes) != 1 {
		t.Errorf("nodes %v", l.Nodes)
	}
	for _, s := range []string{"10.0.0.1", "10.0.0.2", "fd00::3", "10.0.0.9", "fd00::9"} {
		if len(l.IPs[mustAddr(t, s)]) != 1 {
			t.Errorf("%s not live: %v", s, l.IPs)
		}
	}
	if len(l.IPs) != 5 {
		t.Errorf("%d live addresses, want 5", len(l.IPs))
	}
}
