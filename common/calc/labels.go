package calc

import (
	"slices"
	"strings"
	"unique"
)

// The calculation keeps an entity for every endpoint and network set of the cluster, so what each one
// holds is what the agent's memory scales with (docs/performance.md, Agent memory). Two measures keep it
// small:
//
//   - Strings that many entities share — label keys, most label values (namespace, service account,
//     orchestrator, zone, app), profile names, node names, port names — are interned: the entity holds a
//     unique.Handle, one pointer to the one copy of the string. The handles keep that copy alive; when the
//     last entity using it goes, the runtime drops it, so interning does not grow with churn.
//   - Labels are an immutable slice of (key, value) handle pairs sorted by key, not a map: 16 bytes per
//     label rather than a map's buckets. Every change builds a new slice and nothing writes to one after
//     it is built, so entities may share a slice (an entity's own labels are its flattened labels when
//     no profile adds any) without one entity's change reaching another.

// istr is an interned string.
type istr = unique.Handle[string]

// intern returns the handle of s.
func intern(s string) istr { return unique.Make(s) }

// label is one label of an entity.
type label struct{ k, v istr }

// labels is a label set sorted by key, without duplicate keys. It is immutable: build a new one to
// change it.
type labels []label

// labelsFromMap interns m, with the labels of over (distinct keys; they win over m's), into a label
// set (nil for none) in one allocation of the exact size.
func labelsFromMap(m map[string]string, over ...label) labels {
	n := len(m)
	for _, o := range over {
		if _, ok := m[o.k.Value()]; !ok {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make(labels, 0, n)
next:
	for k, v := range m {
		for _, o := range over {
			if o.k.Value() == k {
				continue next
			}
		}
		out = append(out, label{intern(k), intern(v)})
	}
	out = append(out, over...)
	out.sort()
	return out
}

func (l labels) sort() {
	slices.SortFunc(l, func(a, b label) int { return strings.Compare(a.k.Value(), b.k.Value()) })
}

// find returns the index of key in l, or where it would go.
func (l labels) find(key string) (int, bool) {
	return slices.BinarySearchFunc(l, key, func(e label, key string) int { return strings.Compare(e.k.Value(), key) })
}

// get returns the value of key.
func (l labels) get(key string) (string, bool) {
	if i, ok := l.find(key); ok {
		return l[i].v.Value(), true
	}
	return "", false
}

// with returns l with the labels of over set (over wins). Neither input is changed.
func (l labels) with(over labels) labels {
	if len(over) == 0 {
		return l
	}
	if len(l) == 0 {
		return over
	}
	out := make(labels, 0, len(l)+len(over))
	i, j := 0, 0
	for i < len(l) && j < len(over) {
		switch c := strings.Compare(l[i].k.Value(), over[j].k.Value()); {
		case c < 0:
			out = append(out, l[i])
			i++
		case c > 0:
			out = append(out, over[j])
			j++
		default:
			out = append(out, over[j])
			i++
			j++
		}
	}
	out = append(out, l[i:]...)
	out = append(out, over[j:]...)
	return slices.Clip(out)
}

// toMap returns the labels as a new map (for tests and tracing).
func (l labels) toMap() map[string]string {
	m := make(map[string]string, len(l))
	for _, p := range l {
		m[p.k.Value()] = p.v.Value()
	}
	return m
}

// Get implements selector.Labels over the entity's flattened labels; a pointer, so evaluating a
// selector does not allocate.
func (e *entity) Get(key string) (string, bool) { return e.labels.get(key) }

// internAll interns each string of ss (nil for none).
func internAll(ss []string) []istr {
	if len(ss) == 0 {
		return nil
	}
	out := make([]istr, len(ss))
	for i, s := range ss {
		out[i] = intern(s)
	}
	return out
}
