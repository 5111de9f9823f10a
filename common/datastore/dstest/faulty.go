package dstest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// ErrInjected is the error Faulty reports for the faults it injects.
var ErrInjected = errors.New("fault injected by dstest.Faulty")

// Faulty wraps a Backend and injects the failures a syncer must survive, the same way for every
// backend: watches that end, a datastore that stops answering, and watches whose events stall (so that
// the underlying backend's watch falls behind, e.g. behind a compaction).
type Faulty struct {
	datastore.Backend

	mu      sync.Mutex
	down    error // when set, every call fails with it
	held    bool  // watch events are held back
	release chan struct{}
	watches map[*faultyWatch]struct{}
	lists   int // successful List calls
	started int // successful Watch calls
	failed  int // calls failed by Down
}

// NewFaulty wraps b. Closing the Faulty closes b.
func NewFaulty(b datastore.Backend) *Faulty {
	return &Faulty{Backend: b, watches: map[*faultyWatch]struct{}{}, release: make(chan struct{})}
}

// BreakWatches ends every running watch with an Error event carrying ErrInjected.
func (f *Faulty) BreakWatches() {
	f.mu.Lock()
	ws := make([]*faultyWatch, 0, len(f.watches))
	for w := range f.watches {
		ws = append(ws, w)
	}
	f.mu.Unlock()
	for _, w := range ws {
		w.breakWith(fmt.Errorf("watch broken: %w", ErrInjected))
	}
}

// Down makes every later call fail (as if the datastore were unreachable) until Up. With breakWatches
// the running watches end too.
func (f *Faulty) Down(breakWatches bool) {
	f.mu.Lock()
	f.down = fmt.Errorf("datastore unreachable: %w", ErrInjected)
	f.mu.Unlock()
	if breakWatches {
		f.BreakWatches()
	}
}

// Up undoes Down.
func (f *Faulty) Up() {
	f.mu.Lock()
	f.down = nil
	f.mu.Unlock()
}

// HoldWatches stops delivering watch events (they queue in the underlying backend) until
// ReleaseWatches.
func (f *Faulty) HoldWatches() {
	f.mu.Lock()
	f.held = true
	f.mu.Unlock()
}

// ReleaseWatches undoes HoldWatches.
func (f *Faulty) ReleaseWatches() {
	f.mu.Lock()
	f.held = false
	close(f.release)
	f.release = make(chan struct{})
	f.mu.Unlock()
}

// Lists returns how many List calls have succeeded.
func (f *Faulty) Lists() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

// WatchesStarted returns how many Watch calls have succeeded.
func (f *Faulty) WatchesStarted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started
}

// FailedCalls returns how many calls failed because of Down.
func (f *Faulty) FailedCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *Faulty) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		f.failed++
	}
	return f.down
}

// Get implements datastore.Backend.
func (f *Faulty) Get(ctx context.Context, key datastore.Key) (api.Resource, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Backend.Get(ctx, key)
}

// List implements datastore.Backend.
func (f *Faulty) List(ctx context.Context, opts datastore.ListOptions) ([]api.Resource, string, error) {
	if err := f.err(); err != nil {
		return nil, "", err
	}
	objs, rev, err := f.Backend.List(ctx, opts)
	if err == nil {
		f.mu.Lock()
		f.lists++
		f.mu.Unlock()
	}
	return objs, rev, err
}

// Create implements datastore.Backend.
func (f *Faulty) Create(ctx context.Context, obj api.Resource) (api.Resource, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Backend.Create(ctx, obj)
}

// Update implements datastore.Backend.
func (f *Faulty) Update(ctx context.Context, obj api.Resource) (api.Resource, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Backend.Update(ctx, obj)
}

// Delete implements datastore.Backend.
func (f *Faulty) Delete(ctx context.Context, key datastore.Key, revision string) (api.Resource, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Backend.Delete(ctx, key, revision)
}

// Ping implements datastore.Backend.
func (f *Faulty) Ping(ctx context.Context) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Backend.Ping(ctx)
}

// Watch implements datastore.Backend.
func (f *Faulty) Watch(ctx context.Context, opts datastore.ListOptions, revision string) (datastore.Watcher, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	inner, err := f.Backend.Watch(ctx, opts, revision)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &faultyWatch{f: f, inner: inner, ch: make(chan datastore.WatchEvent), cancel: cancel, broken: make(chan error, 1)}
	f.mu.Lock()
	f.watches[w] = struct{}{}
	f.started++
	f.mu.Unlock()
	go w.run(ctx)
	return w, nil
}

type faultyWatch struct {
	f      *Faulty
	inner  datastore.Watcher
	ch     chan datastore.WatchEvent
	cancel context.CancelFunc
	broken chan error
}

func (w *faultyWatch) Events() <-chan datastore.WatchEvent { return w.ch }
func (w *faultyWatch) Stop()                               { w.cancel() }

func (w *faultyWatch) breakWith(err error) {
	select {
	case w.broken <- err:
	default:
	}
}

func (w *faultyWatch) run(ctx context.Context) {
	defer func() {
		w.f.mu.Lock()
		delete(w.f.watches, w)
		w.f.mu.Unlock()
		w.inner.Stop()
		w.cancel()
		close(w.ch)
	}()
	fail := func(err error) {
		select {
		case w.ch <- datastore.WatchEvent{Type: datastore.Error, Err: err}:
		case <-ctx.Done():
		}
	}
	for {
		// While held, wait for the release (or a break) before taking the next event.
		w.f.mu.Lock()
		held, release := w.f.held, w.f.release
		w.f.mu.Unlock()
		if held {
			select {
			case <-release:
				continue
			case err := <-w.broken:
				fail(err)
				return
			case <-ctx.Done():
				return
			}
		}
		select {
		case ev, ok := <-w.inner.Events():
			if !ok {
				return
			}
			select {
			case w.ch <- ev:
			case err := <-w.broken:
				fail(err)
				return
			case <-ctx.Done():
				return
			}
			if ev.Type == datastore.Error {
				return
			}
		case err := <-w.broken:
			fail(err)
			return
		case <-ctx.Done():
			return
		}
	}
}
