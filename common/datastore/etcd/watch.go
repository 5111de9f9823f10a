package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
)

// Watch implements datastore.Backend with an etcd watch on the kind's (or namespace's) key prefix from
// revision+1, with previous values so that deletions carry the last state. The etcd client resumes a
// watch across reconnects by itself; when the revision it needs has been compacted meanwhile, the watch
// ends with an Error event wrapping datastore.ErrCompacted. The watch requires a leader, so a member cut
// off from its cluster ends it rather than going quiet.
func (b *Backend) Watch(ctx context.Context, opts datastore.ListOptions, revision string) (datastore.Watcher, error) {
	opts, info, err := objutil.LookupList(opts)
	if err != nil {
		return nil, fmt.Errorf("watching in etcd: %w", err)
	}
	st := b.storeOf(opts, info)
	wopts := []clientv3.OpOption{clientv3.WithRange(st.end), clientv3.WithPrevKV()}
	if revision != "" {
		r, err := parseRev(revision)
		if err != nil {
			return nil, fmt.Errorf("watching %s in etcd: %w", info.Plural, err)
		}
		wopts = append(wopts, clientv3.WithRev(r+1))
	}
	what := info.Plural
	if opts.Namespace != "" {
		what += " in namespace " + strconv.Quote(opts.Namespace)
	}
	if revision != "" {
		what += " (watch started after revision " + revision + ")"
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w := &watcher{
		b:      b,
		st:     st,
		ch:     make(chan datastore.WatchEvent),
		cancel: cancel,
		what:   what,
	}
	wch := b.cli.Watch(ctx, st.start, wopts...)
	go w.run(ctx, wch)
	return w, nil
}

type watcher struct {
	b      *Backend
	st     store
	ch     chan datastore.WatchEvent
	cancel context.CancelFunc
	what   string
}

func (w *watcher) Events() <-chan datastore.WatchEvent { return w.ch }
func (w *watcher) Stop()                               { w.cancel() }

func (w *watcher) run(ctx context.Context, wch clientv3.WatchChan) {
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
	fail := func(err error) { send(datastore.WatchEvent{Type: datastore.Error, Err: err}) }
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-wch:
		case <-ctx.Done():
			return
		}
		if !ok {
			if ctx.Err() == nil {
				fail(fmt.Errorf("watching %s in etcd: the etcd client closed the watch", w.what))
			}
			return
		}
		if resp.CompactRevision != 0 {
			fail(fmt.Errorf("watching %s in etcd (compacted at %d): %w", w.what, resp.CompactRevision, datastore.ErrCompacted))
			return
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				err = fmt.Errorf("%w: %w", datastore.ErrCompacted, err)
			}
			fail(fmt.Errorf("watching %s in etcd: %w", w.what, err))
			return
		}
		for _, ev := range resp.Events {
			out, ok := w.convert(ev)
			if ok && !send(out) {
				return
			}
		}
	}
}

// convert turns an etcd event into ours. A value that does not decode is reported as a deletion of its
// key, so that a receiver never keeps acting on an older value it can no longer trust.
func (w *watcher) convert(ev *clientv3.Event) (datastore.WatchEvent, bool) {
	key, ok := w.st.parse(string(ev.Kv.Key))
	if !ok {
		w.b.log.Warn("ignoring etcd key of an unexpected shape", "etcd_key", string(ev.Kv.Key))
		return datastore.WatchEvent{}, false
	}
	out := datastore.WatchEvent{Key: key, Revision: formatRev(ev.Kv.ModRevision)}
	switch ev.Type {
	case mvccpb.PUT:
		obj, err := w.st.decode(ev.Kv, key)
		if err != nil {
			w.b.log.Warn("etcd value does not decode; reporting the key as deleted", "etcd_key", string(ev.Kv.Key), "error", err)
			out.Type = datastore.Deleted
			return out, true
		}
		out.Object = obj
		out.Type = datastore.Modified
		if ev.IsCreate() {
			out.Type = datastore.Added
		}
	case mvccpb.DELETE:
		out.Type = datastore.Deleted
		if ev.PrevKv != nil {
			if obj, err := w.st.decode(ev.PrevKv, key); err == nil {
				out.Object = obj
			}
		}
	default:
		return datastore.WatchEvent{}, false
	}
	return out, true
}
