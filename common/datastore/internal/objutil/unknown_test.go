package objutil_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/internal/objutil"
)

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}

// TestUnknownPart compares stored values with their projection through tortie's IPPool type.
func TestUnknownPart(t *testing.T) {
	for _, tc := range []struct {
		name, stored string
		want         any
	}{
		{"all known", `{"kind":"IPPool","metadata":{"name":"p","labels":{"a":"1"}},"spec":{"cidr":"10.0.0.0/16","natOutgoing":true}}`, nil},
		{"unknown at every depth",
			`{"kind":"IPPool","future":1,"metadata":{"name":"p","futureMeta":{"x":"y"}},"spec":{"cidr":"10.0.0.0/16","futureSpec":[1,2]}}`,
			map[string]any{"future": float64(1), "metadata": map[string]any{"futureMeta": map[string]any{"x": "y"}}, "spec": map[string]any{"futureSpec": []any{float64(1), float64(2)}}}},
		// encoding/json reads "NATOutgoing" into natOutgoing: known, not carried.
		{"other case", `{"kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","NATOutgoing":true}}`, nil},
		// A zero value the type omits is reported; carried where the update does not set it, it means
		// the same as absent.
		{"omitted zero", `{"kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","natOutgoing":false}}`,
			map[string]any{"spec": map[string]any{"natOutgoing": false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := jsonMap(t, tc.stored)
			var pool api.IPPool
			if err := json.Unmarshal([]byte(tc.stored), &pool); err != nil {
				t.Fatal(err)
			}
			proj, err := json.Marshal(&pool)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, objutil.UnknownPart(stored, jsonMap(t, string(proj)))); d != "" {
				t.Errorf("UnknownPart (-want +got):\n%s", d)
			}
		})
	}
}

func TestMergeAbsent(t *testing.T) {
	dst := jsonMap(t, `{"spec":{"a":1,"sub":{"b":2},"list":[1],"scalar":"s"}}`)
	objutil.MergeAbsent(dst, jsonMap(t, `{"top":true,"spec":{"a":9,"sub":{"c":3},"list":[{"x":1}],"scalar":{"d":4},"new":{"e":5}}}`))
	want := jsonMap(t, `{"top":true,"spec":{"a":1,"sub":{"b":2,"c":3},"list":[1],"scalar":"s","new":{"e":5}}}`)
	if d := cmp.Diff(want, dst); d != "" {
		t.Errorf("MergeAbsent (-want +got):\n%s", d)
	}
}
