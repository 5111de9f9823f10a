package kube

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// TestMergeWatch drives the merging of two sources' events: composite revisions that advance with
// every source event (bookmarks and skipped objects included), objects that stand for nothing, objects
// that cannot be converted (reported deleted), and an error that ends the watch.
func TestMergeWatch(t *testing.T) {
	info, _ := api.LookupKind(api.KindGlobalNetworkSet)
	// An object labelled bad=true cannot be converted; one labelled none=true stands for nothing.
	mk := func(name string) *source {
		return &source{
			name: name,
			convert: func(u *unstructured.Unstructured) (api.Resource, error) {
				switch {
				case u.GetLabels()["bad"] == "true":
					return nil, errors.New("cannot convert")
				case u.GetLabels()["none"] == "true":
					return nil, nil
				}
				return fromCR(info, u)
			},
			keyOf: func(u *unstructured.Unstructured) (datastore.Key, bool) {
				return datastore.Key{Kind: info.Kind, Name: u.GetName()}, true
			},
		}
	}
	crd, knp := mk("crd"), mk("knp")
	obj := func(name, rv string, labels map[string]string) *watch.Event {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkSet"}}
		u.SetName(name)
		u.SetResourceVersion(rv)
		u.SetLabels(labels)
		return &watch.Event{Object: u}
	}
	withType := func(ev *watch.Event, typ watch.EventType) *watch.Event { ev.Type = typ; return ev }

	b := &Backend{log: slog.New(slog.DiscardHandler)}
	in := make(chan sourceEvent)
	out := make(chan datastore.WatchEvent, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.mergeWatch(ctx, []*source{crd, knp}, map[string]string{"crd": "10", "knp": "20"}, in, out)
	}()
	for _, se := range []sourceEvent{
		{src: crd, rv: "11", event: withType(obj("a", "11", nil), watch.Added)},
		{src: knp, rv: "25"}, // bookmark
		{src: knp, rv: "26", event: withType(obj("skipped", "26", map[string]string{"none": "true"}), watch.Modified)},
		{src: crd, rv: "12", event: withType(obj("a", "12", map[string]string{"bad": "true"}), watch.Modified)},
		{src: knp, rv: "27", event: withType(obj("b", "27", nil), watch.Deleted)},
		{src: crd, err: errors.New("boom")},
	} {
		in <- se
	}
	<-done
	close(out)
	type ev struct {
		Type datastore.EventType
		Name string
		Obj  bool
		Rev  string
		Err  string
	}
	var got []ev
	for e := range out {
		g := ev{Type: e.Type, Name: e.Key.Name, Obj: e.Object != nil, Rev: e.Revision}
		if e.Err != nil {
			g.Err = e.Err.Error()
		}
		got = append(got, g)
	}
	want := []ev{
		{Type: datastore.Added, Name: "a", Obj: true, Rev: "crd:11;knp:20"},
		{Type: datastore.Deleted, Name: "a", Rev: "crd:12;knp:26"}, // cannot be converted: deleted, without an object
		{Type: datastore.Deleted, Name: "b", Obj: true, Rev: "crd:12;knp:27"},
		{Type: datastore.Error, Rev: "crd:12;knp:27", Err: "boom"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}
