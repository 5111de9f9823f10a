package ipam

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
)

// maxBlockHostBits bounds the size of a block (2^16 addresses); pools' block sizes (v4 20-32, v6
// 116-128) stay far below it. A stored block claiming more is rejected rather than allocated in.
const maxBlockHostBits = 16

// block is a decoded IPAMBlock that the allocator changes in place. It works on a private copy of the
// stored object (as read from the datastore), so a failed compare-and-swap leaves nothing behind: the
// next attempt reads the block again. The methods are pure block math (no datastore access) and never
// panic on a block that decodeBlock accepted.
type block struct {
	obj  *api.IPAMBlock
	cidr netip.Prefix
	size int
}

// decodeBlock checks a stored block and wraps it for the allocator, which then changes obj in place:
// callers pass an object nobody else uses (every Backend read returns a private copy). It rejects what
// could make the allocator misbehave: a bad or unmasked CIDR, a block too large, allocations of the
// wrong length, attribute indices or free ordinals out of range.
func decodeBlock(obj *api.IPAMBlock) (*block, error) {
	if obj == nil {
		return nil, fmt.Errorf("nil block: %w", ErrInvalidBlock)
	}
	p, err := netip.ParsePrefix(obj.Spec.CIDR)
	if err != nil {
		return nil, fmt.Errorf("block %q: spec.cidr %q: %w: %w", obj.Name, obj.Spec.CIDR, err, ErrInvalidBlock)
	}
	if p.Masked() != p {
		return nil, fmt.Errorf("block %q: spec.cidr %s has host bits set: %w", obj.Name, p, ErrInvalidBlock)
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > maxBlockHostBits {
		return nil, fmt.Errorf("block %q: %s is larger than a block may be (/%d): %w", obj.Name, p, p.Addr().BitLen()-maxBlockHostBits, ErrInvalidBlock)
	}
	size := 1 << hostBits
	b := &block{obj: obj, cidr: p, size: size}
	s := &b.obj.Spec
	if len(s.Allocations) != size {
		return nil, fmt.Errorf("block %s: %d allocations for %d addresses: %w", p, len(s.Allocations), size, ErrInvalidBlock)
	}
	for i, a := range s.Allocations {
		if a != nil && (*a < 0 || *a >= len(s.Attributes)) {
			return nil, fmt.Errorf("block %s: allocation %d refers to attribute %d of %d: %w", p, i, *a, len(s.Attributes), ErrInvalidBlock)
		}
	}
	for _, u := range s.Unallocated {
		if u < 0 || u >= size {
			return nil, fmt.Errorf("block %s: free ordinal %d is out of range 0-%d: %w", p, u, size-1, ErrInvalidBlock)
		}
	}
	return b, nil
}

// newBlock returns a fresh block for cidr: every ordinal free, in address order. affinity is
// "host:<node>" or nil.
func newBlock(cidr netip.Prefix, affinity *string, now time.Time) (*block, error) {
	cidr = cidr.Masked()
	hostBits := cidr.Addr().BitLen() - cidr.Bits()
	if hostBits > maxBlockHostBits {
		return nil, fmt.Errorf("block %s is larger than a block may be (/%d): %w", cidr, cidr.Addr().BitLen()-maxBlockHostBits, ErrInvalidBlock)
	}
	size := 1 << hostBits
	obj := api.NewIPAMBlock()
	obj.Name = api.CIDRToName(cidr.String())
	obj.Spec.CIDR = cidr.String()
	obj.Spec.Affinity = affinity
	if affinity != nil {
		t := metav1.NewTime(now)
		obj.Spec.AffinityClaimTime = &t
	}
	obj.Spec.Allocations = make([]*int, size)
	obj.Spec.Unallocated = make([]int, size)
	for i := range size {
		obj.Spec.Unallocated[i] = i
	}
	obj.Spec.Attributes = []api.AllocationAttribute{}
	// Calico starts a block's sequence number at the time of its creation, so that an allocation in a
	// block deleted and created again never gets the sequence number of an earlier one.
	obj.Spec.SequenceNumber = uint64(now.UnixNano())
	obj.Spec.SequenceNumberForAllocation = map[string]uint64{}
	return &block{obj: obj, cidr: cidr, size: size}, nil
}

// certainlyFull reports, without decoding, that a stored block has nothing to hand out: no free ordinal
// and nothing cooling down that a sweep could free.
func certainlyFull(obj *api.IPAMBlock) bool {
	if len(obj.Spec.Unallocated) > 0 {
		return false
	}
	for _, a := range obj.Spec.Attributes {
		if a.ReleasedAt != nil {
			return false
		}
	}
	return true
}

// hostAffinity is the block affinity string of a host.
func hostAffinity(host string) string { return api.AffinityTypeHost + ":" + host }

// affinityHost returns the host of a "host:<node>" affinity.
func affinityHost(a *string) (string, bool) {
	if a == nil {
		return "", false
	}
	const p = api.AffinityTypeHost + ":"
	if len(*a) > len(p) && (*a)[:len(p)] == p {
		return (*a)[len(p):], true
	}
	return "", false
}

func (b *block) affineTo(host string) bool {
	h, ok := affinityHost(b.obj.Spec.Affinity)
	return ok && h == host
}

// addr returns the address of ordinal ord (0 ≤ ord < size).
func (b *block) addr(ord int) netip.Addr { return addrAt(b.cidr, ord) }

// addrAt returns the address at offset off (< 2^32) from the base of the masked prefix p.
func addrAt(p netip.Prefix, off int) netip.Addr {
	base := p.Addr()
	if base.Is4() {
		a := base.As4()
		binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(off))
		return netip.AddrFrom4(a)
	}
	a := base.As16()
	binary.BigEndian.PutUint32(a[12:], binary.BigEndian.Uint32(a[12:])+uint32(off))
	return netip.AddrFrom16(a)
}

// ordinal returns a's index in the block, or false when a is outside it.
func (b *block) ordinal(a netip.Addr) (int, bool) {
	a = a.Unmap()
	if !b.cidr.Contains(a) {
		return 0, false
	}
	return offsetIn(b.cidr, a), true
}

// offsetIn returns a's offset from the base of p, for a in p with at most 32 host bits.
func offsetIn(p netip.Prefix, a netip.Addr) int {
	if a.Is4() {
		x, y := a.As4(), p.Addr().As4()
		return int(binary.BigEndian.Uint32(x[:]) - binary.BigEndian.Uint32(y[:]))
	}
	x, y := a.As16(), p.Addr().As16()
	return int(binary.BigEndian.Uint32(x[12:]) - binary.BigEndian.Uint32(y[12:]))
}

// attr returns the attribute of an allocated ordinal, or nil when the ordinal is free.
func (b *block) attr(ord int) *api.AllocationAttribute {
	if ord < 0 || ord >= b.size {
		return nil
	}
	a := b.obj.Spec.Allocations[ord]
	if a == nil {
		return nil
	}
	return &b.obj.Spec.Attributes[*a]
}

// allocated reports whether ord holds a live allocation (not free, not cooling down).
func (b *block) allocated(ord int) bool {
	a := b.attr(ord)
	return a != nil && a.ReleasedAt == nil
}

// cooling reports whether ord was released and waits out the cool-down.
func (b *block) cooling(ord int) bool {
	a := b.attr(ord)
	return a != nil && a.ReleasedAt != nil
}

// handleOf returns the handle of an allocated ordinal ("" when there is none).
func (b *block) handleOf(ord int) string {
	if a := b.attr(ord); a != nil && a.ReleasedAt == nil && a.HandleID != nil {
		return *a.HandleID
	}
	return ""
}

// seqOf returns the sequence number recorded when ord was allocated.
func (b *block) seqOf(ord int) (uint64, bool) {
	s, ok := b.obj.Spec.SequenceNumberForAllocation[strconv.Itoa(ord)]
	return s, ok
}

// inUse counts live allocations.
func (b *block) inUse() int {
	n := 0
	for ord := range b.size {
		if b.allocated(ord) {
			n++
		}
	}
	return n
}

// empty reports whether the block has neither live nor cooling allocations.
func (b *block) empty() bool {
	for _, a := range b.obj.Spec.Allocations {
		if a != nil {
			return false
		}
	}
	return true
}

// handleCounts returns the number of live allocations per handle.
func (b *block) handleCounts() map[string]int {
	m := map[string]int{}
	for ord := range b.size {
		if h := b.handleOf(ord); h != "" {
			m[h]++
		}
	}
	return m
}

// ordinalsOf returns the allocated ordinals owned by handle.
func (b *block) ordinalsOf(handle string) []int {
	var out []int
	for ord := range b.size {
		if b.handleOf(ord) == handle {
			out = append(out, ord)
		}
	}
	return out
}

// free returns up to n free ordinals in hand-out order (the head of the unallocated FIFO), skipping
// ordinals whose address skip reports (reservations) and any duplicate or inconsistent entry.
func (b *block) free(n int, skip func(netip.Addr) bool) []int {
	if n <= 0 {
		return nil
	}
	var out []int
	seen := make(map[int]bool, n)
	for _, ord := range b.obj.Spec.Unallocated {
		if len(out) == n {
			break
		}
		if seen[ord] || b.obj.Spec.Allocations[ord] != nil {
			continue
		}
		if skip != nil && skip(b.addr(ord)) {
			continue
		}
		seen[ord] = true
		out = append(out, ord)
	}
	return out
}

// freeCount counts the ordinals free() could hand out.
func (b *block) freeCount(skip func(netip.Addr) bool) int {
	return len(b.free(b.size, skip))
}

// assign allocates ords (which must come from free) to handle with attrs. The block's current sequence
// number is recorded per ordinal; bump must follow before the block is written.
func (b *block) assign(ords []int, handle string, attrs map[string]string) {
	if len(ords) == 0 {
		return
	}
	s := &b.obj.Spec
	idx := b.attrIndex(handle, attrs)
	take := make(map[int]bool, len(ords))
	for _, ord := range ords {
		take[ord] = true
		i := idx
		s.Allocations[ord] = &i
		if s.SequenceNumberForAllocation == nil {
			s.SequenceNumberForAllocation = map[string]uint64{}
		}
		s.SequenceNumberForAllocation[strconv.Itoa(ord)] = s.SequenceNumber
	}
	s.Unallocated = slices.DeleteFunc(s.Unallocated, func(o int) bool { return take[o] })
}

// attrIndex returns the index of a live attribute equal to (handle, attrs), appending one if needed.
func (b *block) attrIndex(handle string, attrs map[string]string) int {
	s := &b.obj.Spec
	for i, a := range s.Attributes {
		if a.ReleasedAt == nil && a.HandleID != nil && *a.HandleID == handle && maps.Equal(a.Secondary, attrs) {
			return i
		}
	}
	h := handle
	a := api.AllocationAttribute{HandleID: &h}
	if len(attrs) > 0 {
		a.Secondary = maps.Clone(attrs)
	}
	s.Attributes = append(s.Attributes, a)
	return len(s.Attributes) - 1
}

// release frees an allocated ordinal. With a cool-down the ordinal keeps an attribute stamped with
// releasedAt (and no handle) until sweep returns it to the free list; otherwise it goes straight to
// the tail of the free list, so the longest-free address is reused first. It returns the handle that
// owned the ordinal.
func (b *block) release(ord int, cooldown time.Duration, now time.Time) string {
	if !b.allocated(ord) {
		return ""
	}
	s := &b.obj.Spec
	handle := b.handleOf(ord)
	delete(s.SequenceNumberForAllocation, strconv.Itoa(ord))
	if cooldown > 0 {
		old := s.Attributes[*s.Allocations[ord]]
		t := metav1.NewTime(now)
		s.Attributes = append(s.Attributes, api.AllocationAttribute{Secondary: maps.Clone(old.Secondary), ReleasedAt: &t})
		i := len(s.Attributes) - 1
		s.Allocations[ord] = &i
		return handle
	}
	s.Allocations[ord] = nil
	s.Unallocated = slices.DeleteFunc(s.Unallocated, func(o int) bool { return o == ord })
	s.Unallocated = append(s.Unallocated, ord)
	return handle
}

// sweep returns cooled-down ordinals whose cool-down has passed to the tail of the free list, the
// longest-released first.
func (b *block) sweep(cooldown time.Duration, now time.Time) {
	type cooled struct {
		ord int
		at  time.Time
	}
	var done []cooled
	for ord := range b.size {
		a := b.attr(ord)
		if a == nil || a.ReleasedAt == nil {
			continue
		}
		if now.Sub(a.ReleasedAt.Time) >= cooldown {
			done = append(done, cooled{ord, a.ReleasedAt.Time})
		}
	}
	if len(done) == 0 {
		return
	}
	slices.SortStableFunc(done, func(x, y cooled) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		return cmp.Compare(x.ord, y.ord)
	})
	s := &b.obj.Spec
	for _, c := range done {
		s.Allocations[c.ord] = nil
		s.Unallocated = slices.DeleteFunc(s.Unallocated, func(o int) bool { return o == c.ord })
		s.Unallocated = append(s.Unallocated, c.ord)
	}
}

// compact drops attributes no allocation refers to and renumbers the rest (keeping their order).
func (b *block) compact() {
	s := &b.obj.Spec
	used := make([]bool, len(s.Attributes))
	for _, a := range s.Allocations {
		if a != nil {
			used[*a] = true
		}
	}
	remap := make([]int, len(s.Attributes))
	var kept []api.AllocationAttribute
	for i, a := range s.Attributes {
		if used[i] {
			remap[i] = len(kept)
			kept = append(kept, a)
		}
	}
	if kept == nil {
		kept = []api.AllocationAttribute{}
	}
	for ord, a := range s.Allocations {
		if a != nil {
			n := remap[*a]
			s.Allocations[ord] = &n
		}
	}
	s.Attributes = kept
}

// bump marks one more write of the block.
func (b *block) bump() { b.obj.Spec.SequenceNumber++ }

// reserveHostOrdinals allocates the first start and the last end ordinals to handle (Windows keeps
// them for the host: network, gateway, DNS and broadcast addresses).
func (b *block) reserveHostOrdinals(r *HostReservedAttr) {
	if r == nil || (r.StartOfBlock <= 0 && r.EndOfBlock <= 0) {
		return
	}
	var ords []int
	for i := 0; i < r.StartOfBlock && i < b.size; i++ {
		ords = append(ords, i)
	}
	for i := max(b.size-r.EndOfBlock, r.StartOfBlock); i < b.size; i++ {
		if i >= 0 {
			ords = append(ords, i)
		}
	}
	var attrs map[string]string
	if r.Note != "" {
		attrs = map[string]string{AttributeNote: r.Note}
	}
	b.assign(ords, r.Handle, attrs)
}

// check reports inconsistencies that decodeBlock tolerates but that point at a damaged block: free
// ordinals missing from the free list, allocated ordinals on it, duplicates on it, allocations without
// a sequence number.
func (b *block) check() []string {
	var probs []string
	s := &b.obj.Spec
	onList := make(map[int]int, len(s.Unallocated))
	for _, u := range s.Unallocated {
		onList[u]++
	}
	for ord := range b.size {
		switch {
		case s.Allocations[ord] == nil && onList[ord] == 0:
			probs = append(probs, fmt.Sprintf("ordinal %d (%s) is free but not on the unallocated list", ord, b.addr(ord)))
		case s.Allocations[ord] != nil && onList[ord] > 0:
			probs = append(probs, fmt.Sprintf("ordinal %d (%s) is allocated but also on the unallocated list", ord, b.addr(ord)))
		}
		if onList[ord] > 1 {
			probs = append(probs, fmt.Sprintf("ordinal %d (%s) is on the unallocated list %d times", ord, b.addr(ord), onList[ord]))
		}
		if b.allocated(ord) && b.handleOf(ord) == "" {
			probs = append(probs, fmt.Sprintf("ordinal %d (%s) is allocated without a handle", ord, b.addr(ord)))
		}
	}
	return probs
}
