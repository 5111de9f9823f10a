package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/memory"
)

// testCtx is a bounded context for one test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newMemory(t testing.TB) *memory.Backend {
	b := memory.New()
	t.Cleanup(func() { b.Close() })
	return b
}

type poolSpec struct {
	name         string
	cidr         string
	blockSize    int
	disabled     bool
	uses         []api.IPPoolAllowedUse
	nodeSelector string
	nsSelector   string
	manual       bool
}

func mkPool(ps poolSpec) *api.IPPool {
	p := api.NewIPPool()
	p.Name = ps.name
	if p.Name == "" {
		p.Name = "pool-" + api.CIDRToName(ps.cidr)
	}
	p.Spec.CIDR = ps.cidr
	p.Spec.BlockSize = ps.blockSize
	p.Spec.Disabled = ps.disabled
	p.Spec.AllowedUses = ps.uses
	p.Spec.NodeSelector = ps.nodeSelector
	p.Spec.NamespaceSelector = ps.nsSelector
	if ps.manual {
		m := api.AssignmentModeManual
		p.Spec.AssignmentMode = &m
	}
	return p
}

// createPools creates pools, leaving existing ones alone.
func createPools(t testing.TB, b datastore.Backend, pools ...poolSpec) {
	t.Helper()
	for _, ps := range pools {
		if _, err := b.Create(testCtx(t), mkPool(ps)); err != nil && !errors.Is(err, datastore.ErrAlreadyExists) {
			t.Fatalf("creating pool %s: %v", ps.cidr, err)
		}
	}
}

func setConfig(t testing.TB, b datastore.Backend, strict bool, maxBlocks int, mutate ...func(*api.IPAMConfigSpec)) {
	t.Helper()
	ctx := testCtx(t)
	cfg := api.NewIPAMConfig()
	cfg.Name = api.IPAMConfigName
	cfg.Spec.StrictAffinity = strict
	cfg.Spec.MaxBlocksPerHost = maxBlocks
	for _, m := range mutate {
		m(&cfg.Spec)
	}
	cur, err := b.Get(ctx, datastore.Key{Kind: api.KindIPAMConfig, Name: api.IPAMConfigName})
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		_, err = b.Create(ctx, cfg)
	case err == nil:
		cfg.ResourceVersion = cur.GetResourceVersion()
		_, err = b.Update(ctx, cfg)
	}
	if err != nil {
		t.Fatalf("writing IPAMConfig: %v", err)
	}
}

func reserve(t testing.TB, b datastore.Backend, name string, cidrs ...string) {
	t.Helper()
	r := api.NewIPReservation()
	r.Name = name
	r.Spec.ReservedCIDRs = cidrs
	if _, err := b.Create(testCtx(t), r); err != nil {
		t.Fatalf("creating IPReservation: %v", err)
	}
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// consistency verifies the invariants the whole package promises, by reading every object back:
// no address is allocated twice (blocks never overlap), every block is structurally sound, each
// handle's counts match its allocations exactly (when exactHandles; otherwise handles may over-count,
// the crash-recoverable direction, but never under-count), and every affine block's owner has a
// confirmed affinity. It returns the allocated addresses by handle.
func consistency(t testing.TB, b datastore.Backend, exactHandles bool) map[string][]netip.Addr {
	t.Helper()
	ctx := testCtx(t)
	c := New(b)
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byHandle := map[string][]netip.Addr{}
	owners := map[netip.Addr]string{}
	actual := map[string]map[string]int{}
	var cidrs []netip.Prefix
	for _, o := range blocks {
		blk, err := decodeBlock(o)
		if err != nil {
			t.Errorf("block %s: %v", o.Name, err)
			continue
		}
		if probs := blk.check(); len(probs) > 0 {
			t.Errorf("block %s: %s", blk.cidr, strings.Join(probs, "; "))
		}
		if o.Name != api.CIDRToName(blk.cidr.String()) {
			t.Errorf("block %s is stored as %q", blk.cidr, o.Name)
		}
		cidrs = append(cidrs, blk.cidr)
		for ord := range blk.size {
			if !blk.allocated(ord) {
				continue
			}
			a, h := blk.addr(ord), blk.handleOf(ord)
			if prev, dup := owners[a]; dup {
				t.Errorf("address %s allocated twice (handles %q and %q)", a, prev, h)
			}
			owners[a] = h
			byHandle[h] = append(byHandle[h], a)
			if actual[h] == nil {
				actual[h] = map[string]int{}
			}
			actual[h][blk.cidr.String()]++
		}
	}
	sort.Slice(cidrs, func(i, j int) bool { return cidrs[i].Addr().Less(cidrs[j].Addr()) })
	for i := 1; i < len(cidrs); i++ {
		if cidrs[i-1].Overlaps(cidrs[i]) {
			t.Errorf("blocks %s and %s overlap", cidrs[i-1], cidrs[i])
		}
	}
	handles, err := c.listHandles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, h := range handles {
		id := h.Spec.HandleID
		seen[id] = true
		for cidr, n := range h.Spec.Block {
			got := actual[id][cidr]
			if exactHandles && got != n || got > n {
				t.Errorf("handle %q records %d addresses in %s, the block holds %d", id, n, cidr, got)
			}
		}
		for cidr, n := range actual[id] {
			if h.Spec.Block[cidr] < n {
				t.Errorf("handle %q records %d addresses in %s, the block holds %d", id, h.Spec.Block[cidr], cidr, n)
			}
		}
		if exactHandles && len(actual[id]) == 0 {
			t.Errorf("handle %q holds no addresses but exists", id)
		}
	}
	for id := range actual {
		if !seen[id] && id != WindowsReservedHandle {
			t.Errorf("handle %q owns %d blocks' addresses but has no IPAMHandle", id, len(actual[id]))
		}
	}
	affs, err := c.listAffinities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := map[string]bool{}
	for _, a := range affs {
		if a.Spec.State == api.BlockAffinityConfirmed {
			confirmed[a.Spec.Node+"|"+normCIDR(a.Spec.CIDR)] = true
		}
	}
	for _, o := range blocks {
		if h, ok := affinityHost(o.Spec.Affinity); ok && exactHandles && !confirmed[h+"|"+normCIDR(o.Spec.CIDR)] {
			t.Errorf("block %s is affine to %q without a confirmed affinity", o.Spec.CIDR, h)
		}
	}
	return byHandle
}

func fmtPrefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return fmt.Sprint(s)
}
