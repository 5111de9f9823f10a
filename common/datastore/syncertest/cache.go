package syncertest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// Cache is a datastore.Callbacks that applies the stream to a map, records everything it received, and
// notes every breach of the stream's promises (see Problems). It is safe for concurrent use: the syncer
// calls it from one goroutine while the test reads it from another.
type Cache struct {
	mu       sync.Mutex
	objs     map[datastore.Key]datastore.Update
	statuses []datastore.Status
	updates  []datastore.Update
	batches  []int // size of each OnUpdates call
	problems []string
	// deletedInResync are keys deleted since the last ResyncInProgress; a New for one of them before
	// InSync is a spurious delete/re-add.
	deletedInResync map[datastore.Key]bool
	changed         chan struct{}
}

var _ datastore.Callbacks = (*Cache)(nil)

// New returns an empty Cache.
func New() *Cache {
	return &Cache{objs: map[datastore.Key]datastore.Update{}, changed: make(chan struct{})}
}

// OnStatusUpdated implements datastore.Callbacks.
func (c *Cache) OnStatusUpdated(s datastore.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.statuses); n > 0 && c.statuses[n-1] == s {
		c.problemf("status %s sent twice in a row", s)
	}
	switch s {
	case datastore.ResyncInProgress:
		c.deletedInResync = map[datastore.Key]bool{}
	case datastore.InSync:
		c.deletedInResync = nil
	}
	c.statuses = append(c.statuses, s)
	c.notify()
}

// OnUpdates implements datastore.Callbacks.
func (c *Cache) OnUpdates(ups []datastore.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ups) == 0 {
		c.problemf("empty batch")
	}
	if len(c.statuses) == 0 {
		c.problemf("updates before any status")
	}
	c.batches = append(c.batches, len(ups))
	for _, u := range ups {
		c.updates = append(c.updates, u)
		prev, held := c.objs[u.Key]
		switch u.Type {
		case datastore.UpdateNew, datastore.UpdateModified:
			if u.Value == nil {
				c.problemf("%s %s without a value", u.Type, u.Key)
				continue
			}
			if u.Value.GetName() != u.Key.Name || u.Value.GetNamespace() != u.Key.Namespace {
				c.problemf("%s %s carries %s/%s", u.Type, u.Key, u.Value.GetNamespace(), u.Value.GetName())
			}
			if info, err := api.KindOf(u.Value); err != nil || info.Kind != u.Key.Kind {
				c.problemf("%s %s carries a %T", u.Type, u.Key, u.Value)
			}
			switch {
			case u.Type == datastore.UpdateNew && held:
				c.problemf("New %s, which is already held", u.Key)
			case u.Type == datastore.UpdateNew && c.deletedInResync[u.Key]:
				c.problemf("New %s right after deleting it in the same resync (spurious delete/re-add)", u.Key)
			case u.Type == datastore.UpdateModified && !held:
				c.problemf("Modified %s, which is not held", u.Key)
			case u.Type == datastore.UpdateModified && datastore.SameContent(prev.Value, u.Value):
				c.problemf("Modified %s changes nothing (revision %s → %s)", u.Key, prev.Revision, u.Revision)
			}
			c.objs[u.Key] = u
		case datastore.UpdateDeleted:
			if u.Value != nil {
				c.problemf("Deleted %s with a value", u.Key)
			}
			if !held {
				c.problemf("Deleted %s, which is not held", u.Key)
			}
			if c.deletedInResync != nil {
				c.deletedInResync[u.Key] = true
			}
			delete(c.objs, u.Key)
		default:
			c.problemf("update of unknown type %v for %s", u.Type, u.Key)
		}
	}
	c.notify()
}

func (c *Cache) problemf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *Cache) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Status returns the last status received (WaitForDatastore when none was).
func (c *Cache) Status() datastore.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.statuses) == 0 {
		return datastore.WaitForDatastore
	}
	return c.statuses[len(c.statuses)-1]
}

// Statuses returns every status received, in order.
func (c *Cache) Statuses() []datastore.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.statuses)
}

// Updates returns every update received, in order.
func (c *Cache) Updates() []datastore.Update {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.updates)
}

// Mark returns a position in the update history for UpdatesSince and StatusesSince.
func (c *Cache) Mark() Mark {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Mark{updates: len(c.updates), statuses: len(c.statuses), batches: len(c.batches)}
}

// Mark is a position in a Cache's history.
type Mark struct{ updates, statuses, batches int }

// UpdatesSince returns the updates received after m.
func (c *Cache) UpdatesSince(m Mark) []datastore.Update {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.updates[m.updates:])
}

// StatusesSince returns the statuses received after m.
func (c *Cache) StatusesSince(m Mark) []datastore.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.statuses[m.statuses:])
}

// BatchesSince returns the sizes of the OnUpdates calls after m.
func (c *Cache) BatchesSince(m Mark) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches[m.batches:])
}

// Problems returns every breach of the stream's promises seen so far: a New for a held key, a Modified
// or Deleted for a key not held, a Modified that changes nothing, a delete and re-add of one key within a
// resync, a repeated status, an empty batch, a value that does not match its key.
func (c *Cache) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.problems)
}

// Len returns how many objects the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.objs)
}

// Get returns the held object of k.
func (c *Cache) Get(k datastore.Key) (api.Resource, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.objs[k]
	return u.Value, ok
}

// Objects returns the held objects of kind (all kinds when empty), sorted by kind, namespace and name.
func (c *Cache) Objects(kind string) []api.Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]datastore.Key, 0, len(c.objs))
	for k := range c.objs {
		if kind == "" || k.Kind == kind {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]api.Resource, len(keys))
	for i, k := range keys {
		out[i] = c.objs[k].Value
	}
	return out
}

// WaitFor blocks until cond holds (it is checked after every callback) or ctx is done, and returns
// ctx's error in that case.
func (c *Cache) WaitFor(ctx context.Context, cond func(*Cache) bool) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond(c) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitForStatus waits until the last status received is s.
func (c *Cache) WaitForStatus(ctx context.Context, s datastore.Status) error {
	return c.WaitFor(ctx, func(c *Cache) bool { return c.Status() == s })
}

// Diff compares the held objects of the kinds of want (plus kinds) with want, ignoring revisions (see
// datastore.SameContent), and describes the differences; it returns "" when they are equal.
func (c *Cache) Diff(want []api.Resource, kinds ...string) string {
	kindSet := map[string]bool{}
	for _, k := range kinds {
		kindSet[k] = true
	}
	for _, o := range want {
		if info, err := api.KindOf(o); err == nil {
			kindSet[info.Kind] = true
		}
	}
	var got []api.Resource
	for k := range kindSet {
		got = append(got, c.Objects(k)...)
	}
	return Diff(got, want)
}

// Diff compares two sets of objects by key and content, ignoring revisions, and describes the
// differences; it returns "" when they are equal.
func Diff(got, want []api.Resource) string {
	index := func(objs []api.Resource) (map[datastore.Key]api.Resource, []string) {
		m := map[datastore.Key]api.Resource{}
		var bad []string
		for _, o := range objs {
			k, err := datastore.KeyOf(o)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			if _, dup := m[k]; dup {
				bad = append(bad, fmt.Sprintf("%s appears twice", k))
			}
			m[k] = o
		}
		return m, bad
	}
	g, badG := index(got)
	w, badW := index(want)
	var out []string
	for _, b := range badG {
		out = append(out, "got: "+b)
	}
	for _, b := range badW {
		out = append(out, "want: "+b)
	}
	var keys []datastore.Key
	for k := range g {
		keys = append(keys, k)
	}
	for k := range w {
		if _, ok := g[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		gv, gok := g[k]
		wv, wok := w[k]
		switch {
		case !wok:
			out = append(out, fmt.Sprintf("%s: held but not wanted", k))
		case !gok:
			out = append(out, fmt.Sprintf("%s: wanted but not held", k))
		case !datastore.SameContent(gv, wv):
			out = append(out, fmt.Sprintf("%s differs (-got +want):\n%s", k, gocmp.Diff(asMap(gv), asMap(wv))))
		}
	}
	return strings.Join(out, "\n")
}

// asMap renders an object as generic JSON without its revision, for readable diffs.
func asMap(o api.Resource) map[string]any {
	b, err := json.Marshal(o)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{"error": err.Error()}
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
		delete(md, "managedFields")
	}
	return m
}

func compareKeys(a, b datastore.Key) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}
