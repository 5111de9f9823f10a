package calc

import (
	"math/bits"
	"slices"
)

// Entities are numbered (entity.id, dense, reused after a removal) so that the label index can hold its
// sets of entities compactly: a label value most of the cluster shares (a namespace, "k8s", a zone) is
// a bitmap of 1 bit per entity rather than a map of 10,000 pointers, and a value only one entity has (a
// pod's name) is that entity's number with no allocation at all.

// idAllocator hands out entity numbers, lowest free first.
type idAllocator struct {
	next uint32
	free []uint32 // a min-heap would do; removals are rare enough that a sorted slice is simpler
}

func (a *idAllocator) get() uint32 {
	if len(a.free) > 0 {
		id := a.free[0]
		a.free = a.free[1:]
		return id
	}
	a.next++
	return a.next - 1
}

func (a *idAllocator) put(id uint32) {
	i, _ := slices.BinarySearch(a.free, id)
	a.free = slices.Insert(a.free, i, id)
}

// idSet is a set of entity numbers in one of three forms, chosen by size: one number (no allocation),
// a sorted slice, or a bitmap once the slice would be larger than the bitmap over the numbers in use.
// The zero idSet is empty.
type idSet struct {
	w     []uint32 // sorted members, or bitmap words when dense
	n     uint32
	one   uint32 // the member while n == 1 and !dense
	dense bool
}

func (s *idSet) len() int { return int(s.n) }

func (s *idSet) has(id uint32) bool {
	switch {
	case s.dense:
		return int(id>>5) < len(s.w) && s.w[id>>5]&(1<<(id&31)) != 0
	case s.n == 1:
		return s.one == id
	}
	_, ok := slices.BinarySearch(s.w, id)
	return ok
}

// add inserts id and reports whether it was new.
func (s *idSet) add(id uint32) bool {
	switch {
	case s.dense:
		w := int(id >> 5)
		if w >= len(s.w) {
			s.w = append(s.w, make([]uint32, w+1-len(s.w))...)
		}
		if s.w[w]&(1<<(id&31)) != 0 {
			return false
		}
		s.w[w] |= 1 << (id & 31)
		s.n++
		return true
	case s.n == 0:
		s.one, s.n = id, 1
		return true
	case s.n == 1:
		if s.one == id {
			return false
		}
		s.w = []uint32{min(s.one, id), max(s.one, id)}
		s.n = 2
		return true
	}
	i, ok := slices.BinarySearch(s.w, id)
	if ok {
		return false
	}
	s.w = slices.Insert(s.w, i, id)
	s.n++
	// A bitmap up to the largest member costs max/32+1 words; switch when that is no larger.
	if words := int(s.w[len(s.w)-1]>>5) + 1; words <= len(s.w) {
		bm := make([]uint32, words)
		for _, m := range s.w {
			bm[m>>5] |= 1 << (m & 31)
		}
		s.w, s.dense = bm, true
	}
	return true
}

// remove deletes id and reports whether it was present.
func (s *idSet) remove(id uint32) bool {
	switch {
	case s.dense:
		w := int(id >> 5)
		if w >= len(s.w) || s.w[w]&(1<<(id&31)) == 0 {
			return false
		}
		s.w[w] &^= 1 << (id & 31)
		s.n--
		// Back to a slice when it would take a quarter of the bitmap (hysteresis against flapping).
		if int(s.n)*4 <= len(s.w) {
			members := s.appendTo(make([]uint32, 0, s.n))
			s.dense = false
			s.w = nil
			s.n = 0
			for _, m := range members {
				s.add(m)
			}
		}
		return true
	case s.n == 0:
		return false
	case s.n == 1:
		if s.one != id {
			return false
		}
		s.n, s.one = 0, 0
		return true
	}
	i, ok := slices.BinarySearch(s.w, id)
	if !ok {
		return false
	}
	s.w = slices.Delete(s.w, i, i+1)
	s.n--
	if s.n == 1 {
		s.one, s.w = s.w[0], nil
	}
	return true
}

// appendTo appends the members in increasing order.
func (s *idSet) appendTo(out []uint32) []uint32 {
	switch {
	case s.dense:
		for i, word := range s.w {
			for word != 0 {
				b := bits.TrailingZeros32(word)
				out = append(out, uint32(i)<<5|uint32(b))
				word &^= 1 << b
			}
		}
		return out
	case s.n == 1:
		return append(out, s.one)
	}
	return append(out, s.w...)
}
