package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
)

// DefaultHistory is how many changes the backend keeps for watches that start in the past.
const DefaultHistory = 10000

// watchChunk bounds the events a watch copies out per pass, so a far-behind watch does not hold the
// lock for long.
const watchChunk = 1000

// Option configures a Backend.
type Option func(*Backend)

// WithHistory sets how many changes are kept for watches (at least 1). Older changes are compacted
// away: a watch from before them fails with datastore.ErrCompacted, as it would in etcd.
func WithHistory(n int) Option {
	return func(b *Backend) { b.hist = newRing(max(n, 1)) }
}

// WithClock sets the clock used for creationTimestamp (tests).
func WithClock(now func() time.Time) Option {
	return func(b *Backend) { b.now = now }
}

// Backend is an in-memory datastore.Backend. The zero value is not usable; call New.
type Backend struct {
	mu     sync.Mutex
	rev    int64                                     // the revision of the last change; 0 when empty
	byKind map[string]map[datastore.Key]api.Resource // stored objects, never mutated, with resourceVersion set
	hist   *ring
	// minRev is the lowest revision whose change a watch can still receive: a watch after revision R
	// needs R+1 >= minRev.
	minRev  int64
	changed chan struct{} // closed and replaced on every change and on Close
	closed  bool
	now     func() time.Time
}

var _ datastore.Backend = (*Backend)(nil)

// New returns an empty Backend.
func New(opts ...Option) *Backend {
	b := &Backend{
		byKind:  map[string]map[datastore.Key]api.Resource{},
		hist:    newRing(DefaultHistory),
		minRev:  1,
		changed: make(chan struct{}),
		now:     time.Now,
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

var errClosed = errors.New("the memory datastore is closed")

func formatRev(r int64) string { return strconv.FormatInt(r, 10) }

func parseRev(s string) (int64, error) {
	r, err := strconv.ParseInt(s, 10, 64)
	if err != nil || r < 0 {
		return 0, fmt.Errorf("invalid revision %q: want a non-negative decimal integer", s)
	}
	return r, nil
}

// Get implements datastore.Backend.
func (b *Backend) Get(_ context.Context, key datastore.Key) (api.Resource, error) {
	key, _, err := objutil.LookupKey(key)
	if err != nil {
		return nil, fmt.Errorf("getting %s from the memory datastore: %w", key, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("getting %s from the memory datastore: %w", key, errClosed)
	}
	obj, ok := b.byKind[key.Kind][key]
	if !ok {
		return nil, fmt.Errorf("getting %s from the memory datastore: %w", key, datastore.ErrNotFound)
	}
	return objutil.Copy(obj), nil
}

// List implements datastore.Backend.
func (b *Backend) List(_ context.Context, opts datastore.ListOptions) ([]api.Resource, string, error) {
	opts, _, err := objutil.LookupList(opts)
	if err != nil {
		return nil, "", fmt.Errorf("listing in the memory datastore: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, "", fmt.Errorf("listing %s in the memory datastore: %w", opts.Kind, errClosed)
	}
	var out []api.Resource
	for k, obj := range b.byKind[opts.Kind] {
		if opts.Namespace == "" || k.Namespace == opts.Namespace {
			out = append(out, objutil.Copy(obj))
		}
	}
	slices.SortFunc(out, objutil.Compare)
	return out, formatRev(b.rev), nil
}

// Create implements datastore.Backend.
func (b *Backend) Create(_ context.Context, obj api.Resource) (api.Resource, error) {
	key, info, err := objutil.Check(obj)
	if err != nil {
		return nil, fmt.Errorf("creating in the memory datastore: %w", err)
	}
	if rv := obj.GetResourceVersion(); rv != "" {
		return nil, fmt.Errorf("creating %s in the memory datastore: resourceVersion must be empty, not %q", key, rv)
	}
	stored := objutil.ForCreate(obj, info, b.now())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("creating %s in the memory datastore: %w", key, errClosed)
	}
	if _, ok := b.byKind[key.Kind][key]; ok {
		return nil, fmt.Errorf("creating %s in the memory datastore: %w", key, datastore.ErrAlreadyExists)
	}
	b.commit(datastore.Added, key, stored)
	return objutil.Copy(stored), nil
}

// Update implements datastore.Backend.
func (b *Backend) Update(_ context.Context, obj api.Resource) (api.Resource, error) {
	key, info, err := objutil.Check(obj)
	if err != nil {
		return nil, fmt.Errorf("updating in the memory datastore: %w", err)
	}
	want := obj.GetResourceVersion()
	if want != "" {
		if _, err := parseRev(want); err != nil {
			return nil, fmt.Errorf("updating %s in the memory datastore: %w", key, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("updating %s in the memory datastore: %w", key, errClosed)
	}
	cur, ok := b.byKind[key.Kind][key]
	if !ok {
		return nil, fmt.Errorf("updating %s in the memory datastore: %w", key, datastore.ErrNotFound)
	}
	if want != "" && want != cur.GetResourceVersion() {
		return nil, fmt.Errorf("updating %s at revision %s in the memory datastore (stored: %s): %w",
			key, want, cur.GetResourceVersion(), datastore.ErrConflict)
	}
	stored := objutil.ForUpdate(obj, cur, info)
	b.commit(datastore.Modified, key, stored)
	return objutil.Copy(stored), nil
}

// Delete implements datastore.Backend.
func (b *Backend) Delete(_ context.Context, key datastore.Key, revision string) (api.Resource, error) {
	key, _, err := objutil.LookupKey(key)
	if err != nil {
		return nil, fmt.Errorf("deleting %s from the memory datastore: %w", key, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("deleting %s from the memory datastore: %w", key, errClosed)
	}
	cur, ok := b.byKind[key.Kind][key]
	if !ok {
		return nil, fmt.Errorf("deleting %s from the memory datastore: %w", key, datastore.ErrNotFound)
	}
	if revision != "" && revision != cur.GetResourceVersion() {
		return nil, fmt.Errorf("deleting %s at revision %s from the memory datastore (stored: %s): %w",
			key, revision, cur.GetResourceVersion(), datastore.ErrConflict)
	}
	b.commit(datastore.Deleted, key, cur)
	return objutil.Copy(cur), nil
}

// commit applies one change under b.mu: a new revision, the stored map, the history, and a wake-up for
// the watches. For Deleted, obj is the last stored state.
func (b *Backend) commit(typ datastore.EventType, key datastore.Key, obj api.Resource) {
	b.rev++
	if typ == datastore.Deleted {
		delete(b.byKind[key.Kind], key)
	} else {
		obj.SetResourceVersion(formatRev(b.rev))
		m := b.byKind[key.Kind]
		if m == nil {
			m = map[datastore.Key]api.Resource{}
			b.byKind[key.Kind] = m
		}
		m[key] = obj
	}
	if dropped, ok := b.hist.push(change{typ: typ, key: key, obj: obj, rev: b.rev}); ok {
		b.minRev = max(b.minRev, dropped.rev+1)
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// Watch implements datastore.Backend. The changes come from the history, so a watch can start at any
// revision not yet compacted (see WithHistory and Compact); a watch that falls behind the history ends
// with datastore.ErrCompacted. A slow reader never slows writers.
func (b *Backend) Watch(ctx context.Context, opts datastore.ListOptions, revision string) (datastore.Watcher, error) {
	opts, _, err := objutil.LookupList(opts)
	if err != nil {
		return nil, fmt.Errorf("watching in the memory datastore: %w", err)
	}
	var from int64
	if revision != "" {
		if from, err = parseRev(revision); err != nil {
			return nil, fmt.Errorf("watching %s in the memory datastore: %w", opts.Kind, err)
		}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("watching %s in the memory datastore: %w", opts.Kind, errClosed)
	}
	if revision == "" {
		from = b.rev
	}
	b.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{ch: make(chan datastore.WatchEvent), cancel: cancel}
	go b.runWatch(ctx, w, opts, from)
	return w, nil
}

func (b *Backend) runWatch(ctx context.Context, w *watcher, opts datastore.ListOptions, pos int64) {
	defer close(w.ch)
	defer w.cancel()
	send := func(ev datastore.WatchEvent) bool {
		select {
		case w.ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		if pos+1 < b.minRev {
			minRev := b.minRev
			b.mu.Unlock()
			send(datastore.WatchEvent{
				Type: datastore.Error,
				Err: fmt.Errorf("watching %s after revision %d in the memory datastore (oldest kept: %d): %w",
					opts.Kind, pos, minRev, datastore.ErrCompacted),
			})
			return
		}
		var batch []change
		end := min(b.rev, pos+watchChunk)
		for r := pos + 1; r <= end; r++ {
			c := b.hist.at(r)
			if c.key.Kind == opts.Kind && (opts.Namespace == "" || c.key.Namespace == opts.Namespace) {
				batch = append(batch, c)
			}
		}
		pos = max(pos, end) // a watch may start after the current revision
		caughtUp := pos >= b.rev
		changed := b.changed
		b.mu.Unlock()

		// Stored objects are immutable, so they can be copied outside the lock.
		for _, c := range batch {
			if !send(datastore.WatchEvent{Type: c.typ, Key: c.key, Object: objutil.Copy(c.obj), Revision: formatRev(c.rev)}) {
				return
			}
		}
		if !caughtUp {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

type watcher struct {
	ch     chan datastore.WatchEvent
	cancel context.CancelFunc
}

func (w *watcher) Events() <-chan datastore.WatchEvent { return w.ch }
func (w *watcher) Stop()                               { w.cancel() }

// Ping implements datastore.Backend.
func (b *Backend) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	return nil
}

// Close implements datastore.Backend: every watch ends and later calls fail.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.changed)
	}
	return nil
}

// Revision returns the current revision (test helper).
func (b *Backend) Revision() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return formatRev(b.rev)
}

// Compact discards the history before revision (as etcd's compaction does): watches that need an
// older change, running or new, end with datastore.ErrCompacted. It is the test hook for the syncer's
// resync path.
func (b *Backend) Compact(revision string) error {
	r, err := parseRev(revision)
	if err != nil {
		return fmt.Errorf("compacting the memory datastore: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if r > b.rev {
		return fmt.Errorf("compacting the memory datastore at revision %d: the current revision is only %d", r, b.rev)
	}
	if r > b.minRev {
		b.minRev = r
		b.hist.dropBefore(r)
		// Wake the watches so those behind the compaction end now, as etcd's do.
		close(b.changed)
		b.changed = make(chan struct{})
	}
	return nil
}

// change is one entry of the history.
type change struct {
	typ datastore.EventType
	key datastore.Key
	obj api.Resource
	rev int64
}

// ring holds the most recent changes. Revisions are consecutive (every change takes the next one), so
// the change of revision r sits at a computable position.
type ring struct {
	buf   []change
	start int // position of the oldest change
	n     int
}

func newRing(size int) *ring { return &ring{buf: make([]change, size)} }

// push appends c and returns the change it pushed out, if the ring was full.
func (r *ring) push(c change) (change, bool) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = c
		r.n++
		return change{}, false
	}
	old := r.buf[r.start]
	r.buf[r.start] = c
	r.start = (r.start + 1) % len(r.buf)
	return old, true
}

// at returns the change of revision rev, which must be held.
func (r *ring) at(rev int64) change {
	oldest := r.buf[r.start].rev
	return r.buf[(r.start+int(rev-oldest))%len(r.buf)]
}

// dropBefore forgets the changes older than rev.
func (r *ring) dropBefore(rev int64) {
	for r.n > 0 && r.buf[r.start].rev < rev {
		r.buf[r.start] = change{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
}
