package dpmodel

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func keysOf(s *State) *Keys {
	k := NewKeys()
	for _, u := range s.Snapshot() {
		k.Add(u)
	}
	return k
}

// TestDiffKeysReachesTarget: a receiver holding one state, told DiffKeys with the identities of what
// changed (every object Diff touches, plus unchanged ones and ones that came and went unseen), ends at
// the target through updates that keep the contract, and the held set ends as the target's.
func TestDiffKeysReachesTarget(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 2))
		from, to := randomState(r), randomState(r)
		changed := NewKeys()
		for _, u := range Diff(from, to) {
			changed.Add(u)
		}
		// Changed and changed back: in to with the same value (sent again).
		for _, u := range to.Snapshot() {
			if r.IntN(4) == 0 {
				changed.Add(u)
			}
		}
		// Came and went between two calls: in neither state, never held.
		changed.Add(WorkloadEndpointRemove{ID: WorkloadEndpointID{"ns", "gone"}})
		changed.Add(IPSetRemove{ID: "s:gone"})
		changed.Add(RouteRemove{Dst: pfx("10.9.0.0/26")})
		changedBefore := changed.Len()

		held := keysOf(from)
		got := from.Clone()
		us := DiffKeys(held, changed, to)
		if err := got.ApplyAll(us); err != nil {
			t.Fatalf("seed %d: DiffKeys does not apply: %v\nupdates %v", seed, err, us)
		}
		if !got.Equal(to) {
			t.Fatalf("seed %d: DiffKeys did not reach the target; remaining %v", seed, Diff(got, to))
		}
		if d := cmp.Diff(keysOf(to), held); d != "" {
			t.Fatalf("seed %d: held after DiffKeys (-want +got):\n%s", seed, d)
		}
		if changed.Len() != changedBefore {
			t.Fatalf("seed %d: DiffKeys modified changed", seed)
		}
		for _, u := range us {
			switch u := u.(type) {
			case WorkloadEndpointRemove:
				if u.ID.Name == "gone" {
					t.Fatalf("seed %d: removal of an object the receiver never held: %v", seed, u)
				}
			case IPSetRemove:
				if u.ID == "s:gone" {
					t.Fatalf("seed %d: removal of an object the receiver never held: %v", seed, u)
				}
			}
		}
		// Nothing changed: nothing to send.
		changed.Clear()
		if us := DiffKeys(held, changed, to); len(us) != 0 || changed.Len() != 0 {
			t.Fatalf("seed %d: DiffKeys with nothing changed = %v", seed, us)
		}
	}
}
