package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// listPageSize bounds each page of a List, so that listing a large cluster's pods does not need one
// huge response. Pages of one List are a consistent snapshot (the continue token pins the
// resourceVersion of the first page).
const listPageSize = 500

// listSource lists one source, converting and skipping objects that stand for no tortie object.
func (b *Backend) listSource(ctx context.Context, op string, s *source, namespace string) ([]api.Resource, string, error) {
	c := s.client(b, namespace)
	var (
		out  []api.Resource
		rv   string
		cont string
	)
	for {
		l, err := c.List(ctx, metav1.ListOptions{Limit: listPageSize, Continue: cont})
		if err != nil {
			return nil, "", wrapErr(fmt.Sprintf("%s (reading %s)", op, s.gvr.GroupResource()), err)
		}
		rv = l.GetResourceVersion()
		for i := range l.Items {
			obj, err := s.convert(&l.Items[i])
			if err != nil {
				b.log.Warn("skipping an object that cannot be converted",
					"resource", s.gvr.GroupResource().String(), "namespace", l.Items[i].GetNamespace(),
					"name", l.Items[i].GetName(), "error", err)
				continue
			}
			if obj != nil {
				out = append(out, obj)
			}
		}
		cont = l.GetContinue()
		if cont == "" {
			return out, rv, nil
		}
	}
}

// currentRevision returns the source's current resourceVersion: a one-item list is the cheapest
// consistent read that returns it. Watch uses it for "from now", because a Kubernetes watch without a
// resourceVersion would first replay every existing object as Added.
func (b *Backend) currentRevision(ctx context.Context, op string, s *source, namespace string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	l, err := s.client(b, namespace).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return "", wrapErr(fmt.Sprintf("%s (reading %s)", op, s.gvr.GroupResource()), err)
	}
	return l.GetResourceVersion(), nil
}

// kubeWatcher is a datastore.Watcher over one or more Kubernetes watches (one per source).
type kubeWatcher struct {
	out    chan datastore.WatchEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *kubeWatcher) Events() <-chan datastore.WatchEvent { return w.out }

// Stop ends the watch and waits until its goroutines have exited; the events channel is then closed.
func (w *kubeWatcher) Stop() {
	w.cancel()
	<-w.done
}

// sourceEvent is what a source's goroutine hands to the merging goroutine.
type sourceEvent struct {
	src   *source
	rv    string // the source's resourceVersion after this event
	event *watch.Event
	err   error // ends the whole watch
}

func (b *Backend) startWatch(ctx context.Context, op string, h handler, namespace, revision string) (*kubeWatcher, error) {
	srcs := h.sources()
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	revs, err := parseRevision(revision, names)
	if err != nil {
		return nil, fmt.Errorf("%s in the Kubernetes datastore: %w", op, err)
	}
	for _, s := range srcs {
		if revs[s.name] == "" {
			if revs[s.name], err = b.currentRevision(ctx, op, s, namespace); err != nil {
				return nil, err
			}
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	w := &kubeWatcher{out: make(chan datastore.WatchEvent), cancel: cancel, done: make(chan struct{})}
	in := make(chan sourceEvent)
	var wg sync.WaitGroup
	for _, s := range srcs {
		from := revs[s.name] // read here: mergeWatch owns revs once it runs
		wg.Go(func() { b.runSourceWatch(wctx, op, s, namespace, from, in) })
	}
	go func() {
		defer close(w.done)
		defer close(w.out)
		defer wg.Wait()
		defer cancel()
		b.mergeWatch(wctx, srcs, revs, in, w.out)
	}()
	return w, nil
}

// mergeWatch converts the sources' events into tortie events, tracking each source's resourceVersion
// so that every event carries a revision a new Watch can resume from.
func (b *Backend) mergeWatch(ctx context.Context, srcs []*source, revs map[string]string,
	in <-chan sourceEvent, out chan<- datastore.WatchEvent) {
	send := func(ev datastore.WatchEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		var se sourceEvent
		select {
		case <-ctx.Done():
			return
		case se = <-in:
		}
		if se.err != nil {
			send(datastore.WatchEvent{Type: datastore.Error, Revision: revisionOf(srcs, revs), Err: se.err})
			return
		}
		revs[se.src.name] = se.rv
		if se.event == nil { // a bookmark: only the resourceVersion moved
			continue
		}
		u, ok := se.event.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		obj, err := se.src.convert(u)
		if err != nil {
			key, ok := se.src.keyOf(u)
			b.log.Warn("an object that cannot be converted is reported deleted",
				"resource", se.src.gvr.GroupResource().String(), "namespace", u.GetNamespace(),
				"name", u.GetName(), "key", key.String(), "error", err)
			if !ok {
				continue
			}
			if !send(datastore.WatchEvent{Type: datastore.Deleted, Key: key, Revision: revisionOf(srcs, revs)}) {
				return
			}
			continue
		}
		if obj == nil {
			// The Kubernetes object stands for no tortie object (a host-network or unscheduled pod).
			// Such a pod never becomes an endpoint later except by being scheduled, which arrives as
			// Modified with the endpoint.
			continue
		}
		key, err := datastore.KeyOf(obj)
		if err != nil {
			continue
		}
		ev := datastore.WatchEvent{Key: key, Object: obj, Revision: revisionOf(srcs, revs)}
		switch se.event.Type {
		case watch.Added:
			ev.Type = datastore.Added
		case watch.Modified:
			ev.Type = datastore.Modified
		case watch.Deleted:
			ev.Type = datastore.Deleted
		default:
			continue
		}
		if !send(ev) {
			return
		}
	}
}

// Watch restarts: a Kubernetes watch ends normally when the API server's request timeout (30–60 min)
// passes, or when the connection breaks. The source goroutine then resumes from the last
// resourceVersion it saw; if that fails (API server down, revision compacted) the tortie watch ends
// with an error event, and the caller (the syncer) decides how to recover.
const (
	minHealthyWatch = time.Second
	maxShortWatches = 5
	shortWatchPause = 200 * time.Millisecond
)

func (b *Backend) runSourceWatch(ctx context.Context, op string, s *source, namespace, rv string, in chan<- sourceEvent) {
	send := func(se sourceEvent) bool {
		select {
		case in <- se:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) {
		send(sourceEvent{src: s, err: err})
	}
	short := 0
	for {
		started := time.Now()
		opts := metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}
		if b.watchTimeout > 0 {
			secs := int64(b.watchTimeout / time.Second)
			opts.TimeoutSeconds = &secs
		}
		wi, err := s.client(b, namespace).Watch(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fail(wrapErr(fmt.Sprintf("%s (watching %s from resourceVersion %s)", op, s.gvr.GroupResource(), rv), err))
			return
		}
		for kev := range wi.ResultChan() {
			switch kev.Type {
			case watch.Error:
				wi.Stop()
				fail(wrapErr(fmt.Sprintf("%s (watching %s from resourceVersion %s)", op, s.gvr.GroupResource(), rv),
					watchError(kev.Object)))
				return
			case watch.Bookmark:
				if m, err := meta.Accessor(kev.Object); err == nil && m.GetResourceVersion() != "" {
					rv = m.GetResourceVersion()
					if !send(sourceEvent{src: s, rv: rv}) {
						wi.Stop()
						return
					}
				}
			case watch.Added, watch.Modified, watch.Deleted:
				if m, err := meta.Accessor(kev.Object); err == nil && m.GetResourceVersion() != "" {
					rv = m.GetResourceVersion()
				}
				if !send(sourceEvent{src: s, rv: rv, event: &kev}) {
					wi.Stop()
					return
				}
			}
		}
		wi.Stop()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) < minHealthyWatch {
			short++
			if short >= maxShortWatches {
				fail(fmt.Errorf("%s in the Kubernetes datastore: the watch of %s keeps closing at once (%d times)",
					op, s.gvr.GroupResource(), short))
				return
			}
			select {
			case <-time.After(shortWatchPause):
			case <-ctx.Done():
				return
			}
		} else {
			short = 0
		}
	}
}

// watchError turns the object of a watch.Error event into an error that wrapErr can classify
// (410 Gone/Expired becomes ErrCompacted).
func watchError(obj runtime.Object) error {
	if obj == nil {
		return errors.New("watch error without details")
	}
	return apierrors.FromObject(obj)
}
