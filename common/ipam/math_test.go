package ipam

import (
	"encoding/json"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
)

func TestBlockOrdinalsRoundTrip(t *testing.T) {
	for _, cidr := range []string{"10.0.0.0/26", "10.0.16.0/20", "10.1.2.3/32", "192.168.255.252/30",
		"fd80::/122", "fd80::1000/116", "fd80::1/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120", "255.255.255.0/24"} {
		t.Run(cidr, func(t *testing.T) {
			b, err := newBlock(netip.MustParsePrefix(cidr), nil, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := b.size, 1<<(b.cidr.Addr().BitLen()-b.cidr.Bits()); got != want {
				t.Fatalf("size %d, want %d", got, want)
			}
			prev := netip.Addr{}
			for ord := range b.size {
				a := b.addr(ord)
				if !b.cidr.Contains(a) {
					t.Fatalf("ordinal %d → %s outside %s", ord, a, b.cidr)
				}
				if prev.IsValid() && prev.Next() != a {
					t.Fatalf("ordinal %d → %s does not follow %s", ord, a, prev)
				}
				prev = a
				back, ok := b.ordinal(a)
				if !ok || back != ord {
					t.Fatalf("%s → ordinal %d,%v; want %d", a, back, ok, ord)
				}
			}
			if _, ok := b.ordinal(b.addr(b.size - 1).Next()); ok && b.addr(b.size-1).Next().IsValid() {
				t.Errorf("address after the block maps to an ordinal")
			}
			// An IPv4-mapped IPv6 address is the IPv4 address.
			if b.cidr.Addr().Is4() {
				m := netip.AddrFrom16(b.addr(0).As16())
				if ord, ok := b.ordinal(m); !ok || ord != 0 {
					t.Errorf("mapped %s → %d,%v", m, ord, ok)
				}
			}
		})
	}
}

func TestDecodeBlockRejectsDamage(t *testing.T) {
	good, _ := newBlock(netip.MustParsePrefix("10.0.0.0/30"), nil, time.Unix(0, 0))
	idx := 5
	neg := -1
	for name, mutate := range map[string]func(*api.IPAMBlock){
		"bad cidr":          func(b *api.IPAMBlock) { b.Spec.CIDR = "10.0.0/30" },
		"unmasked cidr":     func(b *api.IPAMBlock) { b.Spec.CIDR = "10.0.0.1/30" },
		"too large":         func(b *api.IPAMBlock) { b.Spec.CIDR = "10.0.0.0/8" },
		"short allocations": func(b *api.IPAMBlock) { b.Spec.Allocations = b.Spec.Allocations[:2] },
		"attr out of range": func(b *api.IPAMBlock) { b.Spec.Allocations[1] = &idx },
		"negative attr":     func(b *api.IPAMBlock) { b.Spec.Allocations[1] = &neg },
		"free out of range": func(b *api.IPAMBlock) { b.Spec.Unallocated = append(b.Spec.Unallocated, 4) },
		"negative free":     func(b *api.IPAMBlock) { b.Spec.Unallocated = append(b.Spec.Unallocated, -1) },
	} {
		t.Run(name, func(t *testing.T) {
			o := good.obj.DeepCopy()
			mutate(o)
			if _, err := decodeBlock(o); err == nil {
				t.Errorf("decodeBlock accepted a damaged block")
			}
		})
	}
	if _, err := decodeBlock(good.obj); err != nil {
		t.Errorf("decodeBlock(good): %v", err)
	}
}

func TestBlockAllocateReleaseFIFOAndSequence(t *testing.T) {
	b, _ := newBlock(netip.MustParsePrefix("10.0.0.0/29"), ptr(hostAffinity("n1")), time.Unix(0, 0))
	resv := reservations{prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
	ords := b.free(3, resv.skipFunc(b.cidr))
	if diff := cmp.Diff([]int{0, 2, 3}, ords); diff != "" {
		t.Fatalf("free (-want +got):\n%s", diff)
	}
	b.assign(ords, "h1", map[string]string{"pod": "a"})
	b.bump()
	if got := b.inUse(); got != 3 {
		t.Fatalf("inUse %d", got)
	}
	if len(b.obj.Spec.Attributes) != 1 {
		t.Errorf("three allocations of one handle should share one attribute, got %d", len(b.obj.Spec.Attributes))
	}
	for _, o := range ords {
		if s, ok := b.seqOf(o); !ok || s != 0 {
			t.Errorf("ordinal %d sequence %d,%v; want 0", o, s, ok)
		}
	}
	more := b.free(2, resv.skipFunc(b.cidr))
	b.assign(more, "h2", nil)
	b.bump()
	if s, _ := b.seqOf(more[0]); s != 1 {
		t.Errorf("second write's sequence number %d, want 1", s)
	}
	if h := b.release(2, 0, time.Unix(0, 0)); h != "h1" {
		t.Errorf("release returned handle %q", h)
	}
	b.compact()
	if _, ok := b.seqOf(2); ok {
		t.Errorf("released ordinal keeps its sequence number")
	}
	// Ordinal 2 went to the tail: the next free ordinals are the never-used ones first.
	if diff := cmp.Diff([]int{6, 7, 2}, b.free(8, resv.skipFunc(b.cidr))); diff != "" {
		t.Errorf("free after release (-want +got):\n%s", diff)
	}
	if got := b.handleCounts(); !cmp.Equal(got, map[string]int{"h1": 2, "h2": 2}) {
		t.Errorf("handle counts %v", got)
	}
	for _, o := range b.ordinalsOf("h1") {
		b.release(o, 0, time.Unix(0, 0))
	}
	for _, o := range b.ordinalsOf("h2") {
		b.release(o, 0, time.Unix(0, 0))
	}
	b.compact()
	if !b.empty() || len(b.obj.Spec.Attributes) != 0 || len(b.check()) != 0 {
		t.Errorf("block not clean after releasing everything: %+v %v", b.obj.Spec, b.check())
	}
	if b.release(0, 0, time.Unix(0, 0)) != "" {
		t.Errorf("releasing a free ordinal did something")
	}
}

func TestBlockCooldown(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b, _ := newBlock(netip.MustParsePrefix("10.0.0.0/30"), nil, t0)
	b.assign(b.free(4, nil), "h", map[string]string{"pod": "p"})
	b.release(1, time.Minute, t0)
	b.release(0, time.Minute, t0.Add(10*time.Second))
	b.compact()
	if b.allocated(0) || b.allocated(1) || !b.cooling(0) || !b.cooling(1) || b.empty() {
		t.Fatalf("released ordinals should be cooling, not free")
	}
	if len(b.free(4, nil)) != 0 {
		t.Errorf("cooling ordinals handed out")
	}
	b.sweep(time.Minute, t0.Add(59*time.Second))
	if len(b.free(4, nil)) != 0 {
		t.Errorf("swept before the cool-down passed")
	}
	b.sweep(time.Minute, t0.Add(2*time.Minute))
	b.compact()
	// Longest-released first.
	if diff := cmp.Diff([]int{1, 0}, b.free(4, nil)); diff != "" {
		t.Errorf("free after cool-down (-want +got):\n%s", diff)
	}
	if len(b.check()) != 0 {
		t.Errorf("check: %v", b.check())
	}
}

func TestHostReservedOrdinals(t *testing.T) {
	b, _ := newBlock(netip.MustParsePrefix("10.0.0.0/26"), nil, time.Unix(0, 0))
	b.reserveHostOrdinals(WindowsHostReserved())
	var got []int
	for ord := range b.size {
		if b.handleOf(ord) == WindowsReservedHandle {
			got = append(got, ord)
		}
	}
	if diff := cmp.Diff([]int{0, 1, 2, 63}, got); diff != "" {
		t.Errorf("reserved ordinals (-want +got):\n%s", diff)
	}
	tiny, _ := newBlock(netip.MustParsePrefix("10.0.0.0/31"), nil, time.Unix(0, 0))
	tiny.reserveHostOrdinals(WindowsHostReserved()) // more reserved than addresses: no panic, all taken
	if tiny.inUse() != 2 {
		t.Errorf("tiny block inUse %d", tiny.inUse())
	}
}

func TestReservations(t *testing.T) {
	objs := []*api.IPReservation{{Spec: api.IPReservationSpec{ReservedCIDRs: []string{"10.0.0.0/24", "10.0.0.5", "10.1.0.0/30", "fd00::1", "bogus"}}}}
	objs[0].Name = "r"
	r, bad := parseReservations(objs)
	if len(bad) != 1 {
		t.Errorf("bad entries %v", bad)
	}
	if diff := cmp.Diff([]string{"10.0.0.0/24", "10.1.0.0/30", "fd00::1/128"}, prefixStrings(r.prefixes)); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
	for s, want := range map[string]bool{"10.0.0.77": true, "10.1.0.3": true, "10.1.0.4": false, "fd00::1": true, "fd00::2": false} {
		if got := r.contains(netip.MustParseAddr(s)); got != want {
			t.Errorf("contains(%s) = %v", s, got)
		}
	}
	if got := r.countIn(netip.MustParsePrefix("10.0.0.0/16")); got.Int64() != 256 {
		t.Errorf("countIn(10.0/16) = %v", got)
	}
	if got := r.countIn(netip.MustParsePrefix("10.0.0.64/26")); got.Int64() != 64 {
		t.Errorf("countIn(10.0.0.64/26) = %v, want the whole block", got)
	}
	if _, ok := r.covering(netip.MustParsePrefix("10.0.0.64/26")); !ok {
		t.Errorf("covering: 10.0.0.0/24 covers 10.0.0.64/26")
	}
	if _, ok := r.covering(netip.MustParsePrefix("10.1.0.0/29")); ok {
		t.Errorf("covering: /30 does not cover a /29")
	}
	halves := reservations{prefixes: mergePrefixes([]netip.Prefix{netip.MustParsePrefix("10.2.0.0/27"), netip.MustParsePrefix("10.2.0.32/27")})}
	if !halves.fullyReserves(netip.MustParsePrefix("10.2.0.0/26")) || halves.fullyReserves(netip.MustParsePrefix("10.2.0.0/25")) {
		t.Errorf("fullyReserves: two /27s reserve exactly their /26")
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func testPool(t *testing.T, cidr string, bs int) *pool {
	t.Helper()
	p, err := parsePool(mkPool(poolSpec{name: "p", cidr: cidr, blockSize: bs}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolBlockEnumeration(t *testing.T) {
	p := testPool(t, "10.0.0.1/22", 26) // host bits set: masked like Calico
	if p.cidr.String() != "10.0.0.0/22" || p.numBlocks().Int64() != 16 {
		t.Fatalf("pool %s with %v blocks", p.cidr, p.numBlocks())
	}
	for i := range 16 {
		b, ok := p.blockAt(big.NewInt(int64(i)))
		if !ok || b.Bits() != 26 || p.blockIndex(b.Addr()).Int64() != int64(i) {
			t.Fatalf("block %d = %s,%v", i, b, ok)
		}
	}
	if _, ok := p.blockAt(big.NewInt(16)); ok {
		t.Errorf("blockAt(16) exists")
	}
	// Huge IPv6 pools: indices are big, lookups stay cheap.
	v6 := testPool(t, "fd00::/48", 122)
	last := new(big.Int).Sub(v6.numBlocks(), big.NewInt(1))
	b, ok := v6.blockAt(last)
	if !ok || b.String() != "fd00::ffff:ffff:ffff:ffff:ffc0/122" || v6.blockIndex(b.Addr()).Cmp(last) != 0 {
		t.Errorf("last block %s,%v", b, ok)
	}
	if s := v6.hostStart("node-1"); s.Sign() < 0 || s.Cmp(v6.numBlocks()) >= 0 || s.Cmp(v6.hostStart("node-1")) != 0 {
		t.Errorf("hostStart out of range or not deterministic: %v", s)
	}
	if v6.hostStart("node-1").Cmp(v6.hostStart("node-2")) == 0 {
		t.Errorf("two hosts start at the same block")
	}
}

func TestBlockWalker(t *testing.T) {
	p := testPool(t, "10.0.0.0/24", 28) // 16 blocks
	w := p.walker("host", map[netip.Prefix]bool{}, reservations{})
	var all []netip.Prefix
	for c, ok := w.next(); ok; c, ok = w.next() {
		all = append(all, c)
	}
	if len(all) != 16 {
		t.Fatalf("walked %d blocks, want 16", len(all))
	}
	start, _ := p.blockAt(p.hostStart("host"))
	if all[0] != start {
		t.Errorf("walk starts at %s, want the host's start %s", all[0], start)
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if sorted = slices.Compact(sorted); len(sorted) != 16 {
		t.Errorf("walk repeated blocks")
	}
	// Taken blocks and blocks covered by a reservation are skipped; a reservation that covers the whole
	// pool leaves nothing.
	taken := map[netip.Prefix]bool{all[0]: true, all[5]: true}
	resv := reservations{prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.64/26")}}
	w = p.walker("host", taken, resv)
	n := 0
	for c, ok := w.next(); ok; c, ok = w.next() {
		n++
		if taken[c] || resv.contains(c.Addr()) {
			t.Errorf("walker returned %s", c)
		}
	}
	want := 16 - 4
	for _, c := range []netip.Prefix{all[0], all[5]} {
		if !resv.contains(c.Addr()) {
			want--
		}
	}
	if n != want {
		t.Errorf("walker returned %d blocks, want %d", n, want)
	}
	w = p.walker("host", nil, reservations{prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}})
	if c, ok := w.next(); ok {
		t.Errorf("fully reserved pool yielded %s", c)
	}
}

func TestHandleName(t *testing.T) {
	for _, id := range []string{"k8s-pod-network.0123abcd", "ipip-tunnel-addr-node-1", WindowsReservedHandle} {
		if HandleName(id) != id {
			t.Errorf("HandleName(%q) = %q, want it unchanged", id, HandleName(id))
		}
	}
	// Calico names a handle object by the lower-cased ID.
	if got := HandleName("K8s-Pod-Network.ABC"); got != "k8s-pod-network.abc" {
		t.Errorf("HandleName(K8s-Pod-Network.ABC) = %q, want Calico's k8s-pod-network.abc", got)
	}
	seen := map[string]string{}
	for _, id := range []string{"Upper.Case", "with space", "under_score", "", "-x-", string(make([]byte, 300))} {
		n := HandleName(id)
		if !validObjectName(n) {
			t.Errorf("HandleName(%q) = %q is not a valid object name", id, n)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("%q and %q share the name %q", prev, id, n)
		}
		seen[n] = id
	}
}

// validObjectName reports whether s is a DNS-1123 subdomain (a valid Kubernetes object name).
func validObjectName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '-' {
				return false
			}
		}
	}
	return true
}

// FuzzBlockOps drives a block through arbitrary allocate/release/sweep sequences and checks that the
// block stays consistent: no ordinal is both free and allocated, counts add up, nothing panics.
func FuzzBlockOps(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 2, 0, 1, 5}, uint8(28), false)
	f.Add([]byte{0, 200, 1, 1, 3, 0, 0, 1}, uint8(124), true)
	f.Fuzz(func(t *testing.T, ops []byte, bits uint8, cool bool) {
		cidr := "10.0.0.0/" + itoa(int(28+bits%5))
		if bits%2 == 1 {
			cidr = "fd00::/" + itoa(int(124+bits%5))
		}
		b, err := newBlock(netip.MustParsePrefix(cidr), nil, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		cooldown := time.Duration(0)
		if cool {
			cooldown = 5 * time.Second
		}
		now := time.Unix(0, 0)
		resv := reservations{prefixes: []netip.Prefix{netip.PrefixFrom(b.addr(1), b.cidr.Addr().BitLen())}}
		for i := 0; i+1 < len(ops); i += 2 {
			now = now.Add(time.Second)
			arg := int(ops[i+1])
			switch ops[i] % 4 {
			case 0:
				ords := b.free(arg%8, resv.skipFunc(b.cidr))
				for _, o := range ords {
					if b.addr(o) == b.addr(1) {
						t.Fatalf("reserved address handed out")
					}
				}
				b.assign(ords, "h"+itoa(arg%3), nil)
			case 1:
				b.release(arg%b.size, cooldown, now)
			case 2:
				b.sweep(cooldown, now)
			case 3:
				b.compact()
			}
			b.bump()
			if probs := b.check(); len(probs) > 0 {
				t.Fatalf("after op %d: %v", i/2, probs)
			}
			total := 0
			for _, n := range b.handleCounts() {
				total += n
			}
			if total != b.inUse() {
				t.Fatalf("handle counts %d != inUse %d", total, b.inUse())
			}
		}
		// Round trip through JSON, as the datastore stores it.
		data, err := json.Marshal(b.obj)
		if err != nil {
			t.Fatal(err)
		}
		var back api.IPAMBlock
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBlock(&back); err != nil {
			t.Fatalf("decode after round trip: %v", err)
		}
	})
}

// FuzzDecodeBlock feeds arbitrary stored blocks to the allocator: decoding may refuse, but whatever it
// accepts must be usable without panics.
func FuzzDecodeBlock(f *testing.F) {
	good, _ := newBlock(netip.MustParsePrefix("10.0.0.0/30"), nil, time.Unix(0, 0))
	data, _ := json.Marshal(good.obj)
	f.Add(data)
	f.Add([]byte(`{"spec":{"cidr":"10.0.0.0/31","allocations":[0,null],"unallocated":[1,1,0],"attributes":[{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o api.IPAMBlock
		if json.Unmarshal(data, &o) != nil {
			return
		}
		b, err := decodeBlock(&o)
		if err != nil {
			return
		}
		now := time.Unix(100, 0)
		b.check()
		b.sweep(time.Second, now)
		ords := b.free(3, nil)
		b.assign(ords, "h", map[string]string{"a": "b"})
		for ord := range b.size {
			b.release(ord, 0, now)
			b.allocation(ord)
		}
		b.compact()
		b.handleCounts()
	})
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }
