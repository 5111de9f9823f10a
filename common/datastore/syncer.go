package datastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
)

// Syncer defaults. They suit an agent on a node; a relay may want bigger batches.
const (
	// DefaultBatchWindow is how long the first pending update waits for others to join its batch.
	DefaultBatchWindow = 10 * time.Millisecond
	// DefaultMaxBatch is the most updates delivered in one OnUpdates call.
	DefaultMaxBatch = 1000
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait before relisting a kind whose watch ended
	// or whose list failed; the wait doubles (with jitter) after each consecutive failure.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// SyncerOption tunes a Syncer.
type SyncerOption func(*syncerOptions)

type syncerOptions struct {
	batchWindow time.Duration
	maxBatch    int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	logger      *slog.Logger
}

// WithBatchWindow sets how long an update may wait for others to be delivered with it (0: deliver what is
// already queued, without waiting).
func WithBatchWindow(d time.Duration) SyncerOption {
	return func(o *syncerOptions) { o.batchWindow = max(d, 0) }
}

// WithMaxBatch sets the most updates in one OnUpdates call (at least 1).
func WithMaxBatch(n int) SyncerOption {
	return func(o *syncerOptions) { o.maxBatch = max(n, 1) }
}

// WithBackoff sets the bounds of the wait before a relist.
func WithBackoff(minWait, maxWait time.Duration) SyncerOption {
	return func(o *syncerOptions) {
		o.minBackoff = max(minWait, time.Millisecond)
		o.maxBackoff = max(maxWait, o.minBackoff)
	}
}

// WithLogger sets where the syncer logs watch failures and relists (default: nowhere).
func WithLogger(l *slog.Logger) SyncerOption {
	return func(o *syncerOptions) {
		if l != nil {
			o.logger = l
		}
	}
}

// ListWatchSyncer is the Syncer over a Backend: it turns the Backend into the stream a Callbacks receives: per kind it lists, then watches from the
// list's revision; after any failure (watch error, compaction, closed watch, datastore unreachable) it
// relists with backoff and sends the receiver only what really changed.
//
// The stream, in order:
//
//   - OnStatusUpdated(WaitForDatastore) when Run starts;
//   - OnStatusUpdated(ResyncInProgress) once the first list succeeds, then the snapshot as batches of
//     UpdateNew;
//   - OnStatusUpdated(InSync) once every kind has listed and its snapshot has been delivered;
//   - deltas (UpdateNew, UpdateModified, UpdateDeleted) in batches;
//   - when a kind's watch fails: OnStatusUpdated(ResyncInProgress), the differences between what the
//     receiver holds and the fresh list, then OnStatusUpdated(InSync).
//
// What the receiver holds is tracked per key (revision and a content digest), so a relist never produces a delete
// followed by a re-add, and an update whose content equals what the receiver holds (ignoring
// metadata.resourceVersion and metadata.managedFields) is not sent at all, also outside a resync. So the
// resourceVersion of an object the receiver holds can be older than the datastore's when only the
// revision moved; writers must Get before a compare-and-swap. Updates to one key within a batch are
// coalesced into one. Status is sent only when it changes.
//
// Callbacks are called from Run's goroutine only, never concurrently. Objects passed to the callbacks
// belong to the receiver from then on; the syncer keeps no reference to them (only a digest), so the
// receiver may modify or drop them.
type ListWatchSyncer struct {
	b       Backend
	cb      Callbacks
	kinds   []ListOptions
	opts    syncerOptions
	running atomic.Bool
}

// NewSyncer returns a ListWatchSyncer over b that streams the given kinds to cb. Each ListOptions is listed and
// watched on its own; they must not overlap (the same kind twice with the same namespace, or once with
// and once without). Nothing happens until Run.
func NewSyncer(b Backend, cb Callbacks, kinds []ListOptions, opts ...SyncerOption) *ListWatchSyncer {
	o := syncerOptions{
		batchWindow: DefaultBatchWindow,
		maxBatch:    DefaultMaxBatch,
		minBackoff:  DefaultMinBackoff,
		maxBackoff:  DefaultMaxBackoff,
		logger:      slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &ListWatchSyncer{b: b, cb: cb, kinds: append([]ListOptions(nil), kinds...), opts: o}
}

// Run streams until ctx is done and then returns ctx's error. It returns early, with a descriptive
// error, only when the kinds are invalid (unknown, overlapping, a namespace on a cluster-scoped kind) or
// when Run is already running. Transient datastore errors never end Run: they cause a resync.
func (s *ListWatchSyncer) Run(ctx context.Context) error {
	kinds, err := normalizeKinds(s.kinds)
	if err != nil {
		return fmt.Errorf("starting syncer: %w", err)
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("starting syncer: it is already running")
	}
	defer s.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	msgs := make(chan syncMsg, 64)
	for i, k := range kinds {
		wg.Go(func() { s.watchLoop(ctx, i, k, msgs) })
	}

	st := newSyncState(s, kinds)
	st.setStatus(WaitForDatastore)
	for {
		select {
		case <-ctx.Done():
			st.stopTimer()
			return ctx.Err()
		case m := <-msgs:
			st.handle(m)
			// Take what is already queued before going back to the timer, so a burst costs one batch.
		drain:
			for range s.opts.maxBatch {
				select {
				case m := <-msgs:
					st.handle(m)
				default:
					break drain
				}
			}
			st.afterMessages()
		case <-st.timerC:
			st.timerC = nil
			st.flush()
		}
	}
}

// normalizeKinds resolves kind aliases to their canonical names and rejects invalid or overlapping
// selections.
func normalizeKinds(in []ListOptions) ([]ListOptions, error) {
	if len(in) == 0 {
		return nil, errors.New("no kinds to sync")
	}
	out := make([]ListOptions, len(in))
	for i, k := range in {
		info, ok := api.LookupKind(k.Kind)
		if !ok {
			return nil, fmt.Errorf("unknown resource kind %q", k.Kind)
		}
		if k.Namespace != "" && !info.Namespaced {
			return nil, fmt.Errorf("kind %s is cluster-scoped but a namespace (%q) was given", info.Kind, k.Namespace)
		}
		out[i] = ListOptions{Kind: info.Kind, Namespace: k.Namespace}
		for _, prev := range out[:i] {
			if prev.Kind == info.Kind && (prev.Namespace == "" || k.Namespace == "" || prev.Namespace == k.Namespace) {
				return nil, fmt.Errorf("kind %s is selected twice (namespaces %q and %q)", info.Kind, prev.Namespace, k.Namespace)
			}
		}
	}
	return out, nil
}

type syncMsgType int

const (
	msgSnapshot syncMsgType = iota // a successful list: objs at rev
	msgEvent                       // one watch event (never Error)
	msgLost                        // the watch ended; a relist follows
)

// syncMsg travels from a kind's watch loop to Run's goroutine, which owns all state.
type syncMsg struct {
	w    int // index into the kinds
	typ  syncMsgType
	objs []api.Resource
	rev  string
	ev   WatchEvent
}

// watchLoop lists and watches one kind until ctx is done, sending what it sees to msgs.
func (s *ListWatchSyncer) watchLoop(ctx context.Context, w int, opts ListOptions, msgs chan<- syncMsg) {
	log := s.opts.logger.With("kind", opts.Kind)
	if opts.Namespace != "" {
		log = log.With("namespace", opts.Namespace)
	}
	send := func(m syncMsg) bool {
		m.w = w
		select {
		case msgs <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	bo := backoff{min: s.opts.minBackoff, max: s.opts.maxBackoff}
	// A watch that lasted this long was healthy: the next failure starts the backoff afresh.
	healthy := max(s.opts.maxBackoff, time.Second)
	for ctx.Err() == nil {
		objs, rev, err := s.b.List(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := bo.next()
			log.Warn("listing failed; retrying", "error", err, "retry_in", wait)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		if !send(syncMsg{typ: msgSnapshot, objs: objs, rev: rev}) {
			return
		}
		started := time.Now()
		err = s.watch(ctx, opts, rev, send)
		if ctx.Err() != nil {
			return
		}
		if !send(syncMsg{typ: msgLost}) {
			return
		}
		if time.Since(started) >= healthy {
			bo.reset()
		}
		wait := bo.next()
		log.Info("watch ended; relisting", "error", err, "revision", rev, "retry_in", wait)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// watch forwards one watch's events until it ends, and says why it ended.
func (s *ListWatchSyncer) watch(ctx context.Context, opts ListOptions, rev string, send func(syncMsg) bool) error {
	w, err := s.b.Watch(ctx, opts, rev)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return errors.New("watch channel closed")
			}
			if ev.Type == Error {
				if ev.Err == nil {
					return errors.New("watch error without a reason")
				}
				return ev.Err
			}
			if !send(syncMsg{typ: msgEvent, ev: ev}) {
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff doubles from min to max, with up to 20% jitter so that many agents do not relist in step.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur + time.Duration(rand.Int64N(int64(b.cur)/5+1))
}

func (b *backoff) reset() { b.cur = 0 }

// held is what the receiver holds for one key: the revision and a digest of the content (contentHash),
// not the object, so the syncer does not keep a second copy of every object alive. rev may be newer
// than the delivered object's resourceVersion when an update changed only the revision (and so was not
// sent).
type held struct {
	rev  string
	hash uint64
}

// ownKey returns k with strings of its own: a backend's key strings are often slices of a larger
// string (etcd's whole key), which a held key would otherwise keep alive for as long as the object
// exists, and, like the revision strings (cloned too), they sit among the snapshot's decoded objects,
// whose memory pages one retained string each would keep from being returned. Namespaces are interned;
// a map write replaces the stored key, so every write uses this.
func ownKey(k Key) Key {
	return Key{Kind: unique.Make(k.Kind).Value(), Namespace: unique.Make(k.Namespace).Value(), Name: strings.Clone(k.Name)}
}

// pending is the latest known state of a key not yet reconciled with the receiver; obj nil means the
// key is gone (rev is then the revision of the deletion, or of the list that showed it gone).
type pending struct {
	obj api.Resource
	rev string
}

// syncState is owned by Run's goroutine.
type syncState struct {
	s      *ListWatchSyncer
	kinds  []ListOptions
	status Status
	sent   bool // status has been sent at least once

	synced  []bool
	nSynced int

	// held is what the receiver holds; with the pending keys it is also what the datastore holds as far
	// as we know, which a relist compares with what it sees (kept once, not again per kind: memory).
	held    map[Key]held
	pending map[Key]pending
	order   []Key // pending keys in first-touched order
	timer   *time.Timer
	timerC  <-chan time.Time
}

func newSyncState(s *ListWatchSyncer, kinds []ListOptions) *syncState {
	st := &syncState{
		s:       s,
		kinds:   kinds,
		synced:  make([]bool, len(kinds)),
		held:    map[Key]held{},
		pending: map[Key]pending{},
	}
	return st
}

func (st *syncState) handle(m syncMsg) {
	switch m.typ {
	case msgSnapshot:
		st.applySnapshot(m.w, m.objs, m.rev)
	case msgEvent:
		st.applyEvent(m.w, m.ev)
	case msgLost:
		if st.synced[m.w] {
			st.synced[m.w] = false
			st.nSynced--
		}
		if st.status == InSync {
			st.setStatus(ResyncInProgress)
		}
	}
}

// afterMessages runs once per drained burst: it completes a resync or arms the batch timer.
func (st *syncState) afterMessages() {
	if st.nSynced == len(st.kinds) && st.status != InSync {
		st.setStatus(InSync)
		return
	}
	if len(st.pending) == 0 {
		return
	}
	if st.s.opts.batchWindow == 0 {
		st.flush()
		return
	}
	if st.timerC == nil {
		if st.timer == nil {
			st.timer = time.NewTimer(st.s.opts.batchWindow)
		} else {
			st.timer.Reset(st.s.opts.batchWindow)
		}
		st.timerC = st.timer.C
	}
}

func (st *syncState) stopTimer() {
	if st.timer != nil {
		st.timer.Stop()
	}
	st.timerC = nil
}

func (st *syncState) applySnapshot(w int, objs []api.Resource, rev string) {
	if st.status == WaitForDatastore {
		st.setStatus(ResyncInProgress)
	}
	opts := st.kinds[w]
	now := make(map[Key]struct{}, len(objs))
	for _, obj := range objs {
		k := Key{Kind: opts.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
		now[k] = struct{}{}
		st.touch(k, pending{obj: obj, rev: obj.GetResourceVersion()})
	}
	// What the list no longer shows, of what this watch covers: keys held and not already going, and
	// keys pending delivery.
	inScope := func(k Key) bool {
		_, seen := now[k]
		return !seen && k.Kind == opts.Kind && (opts.Namespace == "" || k.Namespace == opts.Namespace)
	}
	var gone []Key
	for k := range st.held {
		if p, ok := st.pending[k]; inScope(k) && (!ok || p.obj != nil) {
			gone = append(gone, k)
		}
	}
	for k, p := range st.pending {
		if _, ok := st.held[k]; !ok && p.obj != nil && inScope(k) {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		st.touch(k, pending{rev: rev})
	}
	if !st.synced[w] {
		st.synced[w] = true
		st.nSynced++
	}
}

func (st *syncState) applyEvent(w int, ev WatchEvent) {
	k := ev.Key
	if k.Name == "" && ev.Object != nil {
		k = Key{Kind: st.kinds[w].Kind, Namespace: ev.Object.GetNamespace(), Name: ev.Object.GetName()}
	}
	k.Kind = st.kinds[w].Kind
	switch ev.Type {
	case Added, Modified:
		if ev.Object == nil {
			st.s.opts.logger.Warn("ignoring watch event without an object", "key", k.String(), "type", ev.Type.String())
			return
		}
		rev := ev.Object.GetResourceVersion()
		if rev == "" {
			rev = ev.Revision
		}
		st.touch(k, pending{obj: ev.Object, rev: rev})
	case Deleted:
		st.touch(k, pending{rev: ev.Revision})
	}
}

// touch records the latest state of k; a full batch is flushed at once.
func (st *syncState) touch(k Key, p pending) {
	if _, ok := st.pending[k]; !ok {
		st.order = append(st.order, k)
	}
	st.pending[k] = p
	if len(st.pending) >= st.s.opts.maxBatch {
		st.flush()
	}
}

// flush reconciles the pending keys with what the receiver holds and delivers the differences.
func (st *syncState) flush() {
	st.stopTimer()
	if len(st.pending) == 0 {
		return
	}
	ups := make([]Update, 0, len(st.order))
	for _, k := range st.order {
		p := st.pending[k]
		h, had := st.held[k]
		switch {
		case p.obj == nil && !had:
		case p.obj == nil:
			delete(st.held, k)
			ups = append(ups, Update{Type: UpdateDeleted, Key: k, Revision: p.rev})
		case !had:
			st.held[ownKey(k)] = held{rev: strings.Clone(p.rev), hash: contentHash(p.obj)}
			ups = append(ups, Update{Type: UpdateNew, Key: k, Value: p.obj, Revision: p.rev})
		case h.rev == p.rev:
		default:
			sum := contentHash(p.obj)
			st.held[ownKey(k)] = held{rev: strings.Clone(p.rev), hash: sum}
			if sum != h.hash {
				ups = append(ups, Update{Type: UpdateModified, Key: k, Value: p.obj, Revision: p.rev})
			}
		}
	}
	clear(st.pending)
	st.order = st.order[:0]
	if len(ups) > 0 {
		st.s.cb.OnUpdates(ups)
	}
}

// setStatus delivers pending updates first, so that a status always describes everything before it.
func (st *syncState) setStatus(s Status) {
	st.flush()
	if st.sent && st.status == s {
		return
	}
	st.status, st.sent = s, true
	st.s.opts.logger.Debug("syncer status", "status", s.String())
	st.s.cb.OnStatusUpdated(s)
}

// contentEquality is apimachinery's semantic equality (nil equals empty, times compare as instants)
// with the fields that change on every write without changing meaning left out.
var contentEquality = func() equalities {
	e := equality.Semantic.Copy()
	if err := e.AddFunc(func(a, b metav1.ObjectMeta) bool {
		a.ResourceVersion, b.ResourceVersion = "", ""
		a.ManagedFields, b.ManagedFields = nil, nil
		a.Generation, b.Generation = 0, 0
		return equality.Semantic.DeepEqual(a, b)
	}); err != nil {
		panic(err)
	}
	return e
}()

type equalities interface{ DeepEqual(a, b any) bool }

// sameContent reports whether two objects of one key differ only in revision bookkeeping.
func sameContent(a, b api.Resource) bool {
	return contentEquality.DeepEqual(a, b)
}

// SameContent reports whether a and b are equal apart from metadata.resourceVersion, generation and
// managedFields (nil and empty collections are equal): the test the Syncer uses to drop updates that
// change nothing.
func SameContent(a, b api.Resource) bool { return sameContent(a, b) }
