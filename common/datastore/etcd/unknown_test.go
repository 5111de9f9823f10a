package etcd_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// decodeExact decodes a JSON document keeping numbers as written, so that a large integer compares
// exactly.
func decodeExact(t *testing.T, data []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return m
}

// TestUnknownFieldsSurvive stores values as a newer Calico might write them, with fields tortie's types
// do not have (top level, metadata, spec, and inside known sub-objects), updates them through the
// backend and checks the raw value: the change is there, every unknown field is kept, known fields the
// update cleared stay cleared, and lists are written as tortie has them.
func TestUnknownFieldsSurvive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    datastore.Key
		stored string
		change func(t *testing.T, obj api.Resource)
		want   string
	}{{
		name: "FelixConfiguration",
		key:  datastore.Key{Kind: api.KindFelixConfiguration, Name: "default"},
		stored: `{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","futureField":{"a":1},
			"metadata":{"name":"default","uid":"u-1","creationTimestamp":"2026-01-01T00:00:00Z","futureMeta":"m"},
			"spec":{"logSeverityScreen":"Info","futureSetting":"x",
				"bpfConntrackTimeouts":{"tcpSynSent":"20s","tcpEstablished":"1h","futureTimeout":"5s"},
				"failsafeInboundHostPorts":[{"protocol":"TCP","port":22,"futureFlag":true}]}}`,
		change: func(t *testing.T, obj api.Resource) {
			fc := obj.(*api.FelixConfiguration)
			fc.Spec.LogSeverityScreen = "Debug"
			fc.Spec.BPFConntrackTimeouts.TCPSynSent = nil // a known field cleared: it must stay cleared
		},
		want: `{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","futureField":{"a":1},
			"metadata":{"name":"default","uid":"u-1","creationTimestamp":"2026-01-01T00:00:00Z","futureMeta":"m"},
			"spec":{"logSeverityScreen":"Debug","futureSetting":"x",
				"bpfConntrackTimeouts":{"tcpEstablished":"1h","futureTimeout":"5s"},
				"failsafeInboundHostPorts":[{"protocol":"TCP","port":22}]}}`,
	}, {
		name: "BGPConfiguration",
		key:  datastore.Key{Kind: api.KindBGPConfiguration, Name: "default"},
		stored: `{"apiVersion":"projectcalico.org/v3","kind":"BGPConfiguration",
			"metadata":{"name":"default","uid":"u-2","creationTimestamp":"2026-01-01T00:00:00Z"},
			"spec":{"asNumber":64512,"futureBig":9007199254740993,
				"nodeMeshPassword":{"secretKeyRef":{"name":"bgp","key":"pw","futureRefField":"r"},"futureSource":{"vault":"v"}}}}`,
		change: func(t *testing.T, obj api.Resource) {
			bc := obj.(*api.BGPConfiguration)
			asn := api.ASNumber(64513)
			bc.Spec.ASNumber = &asn
		},
		want: `{"apiVersion":"projectcalico.org/v3","kind":"BGPConfiguration",
			"metadata":{"name":"default","uid":"u-2","creationTimestamp":"2026-01-01T00:00:00Z"},
			"spec":{"asNumber":64513,"futureBig":9007199254740993,
				"nodeMeshPassword":{"secretKeyRef":{"name":"bgp","key":"pw","futureRefField":"r"},"futureSource":{"vault":"v"}}}}`,
	}, {
		name: "IPPool known fields removed",
		key:  datastore.Key{Kind: api.KindIPPool, Name: "pool-a"},
		stored: `{"apiVersion":"projectcalico.org/v3","kind":"IPPool",
			"metadata":{"name":"pool-a","uid":"u-3","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"a":"1","b":"2"}},
			"spec":{"cidr":"10.48.0.0/16","natOutgoing":true,"ipipMode":"Always","futureMode":"x"}}`,
		change: func(t *testing.T, obj api.Resource) {
			p := obj.(*api.IPPool)
			p.Spec.NATOutgoing = false
			p.Spec.IPIPMode = ""
			p.Labels = map[string]string{"a": "1"}
		},
		want: `{"apiVersion":"projectcalico.org/v3","kind":"IPPool",
			"metadata":{"name":"pool-a","uid":"u-3","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"a":"1"}},
			"spec":{"cidr":"10.48.0.0/16","futureMode":"x"}}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			b := newBackend(t)
			path, err := b.Path(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Client().Put(ctx, path, tc.stored); err != nil {
				t.Fatal(err)
			}
			for _, conditional := range []bool{true, false} {
				obj, err := b.Get(ctx, tc.key)
				if err != nil {
					t.Fatal(err)
				}
				tc.change(t, obj)
				if !conditional {
					obj.SetResourceVersion("")
				}
				if _, err := b.Update(ctx, obj); err != nil {
					t.Fatalf("Update (conditional %v): %v", conditional, err)
				}
				resp, err := b.Client().Get(ctx, path)
				if err != nil || len(resp.Kvs) != 1 {
					t.Fatalf("raw Get %s: %v", path, err)
				}
				if d := cmp.Diff(decodeExact(t, []byte(tc.want)), decodeExact(t, resp.Kvs[0].Value)); d != "" {
					t.Errorf("stored value after update (conditional %v) (-want +got):\n%s", conditional, d)
				}
			}
		})
	}
}

// TestUnknownFieldsCAS checks that carrying unknown fields keeps the update one compare-and-swap: a
// value rewritten since the caller read it is a conflict, and the newer value (with its unknown
// fields) stays as it is.
func TestUnknownFieldsCAS(t *testing.T) {
	ctx := t.Context()
	b := newBackend(t)
	key := datastore.Key{Kind: api.KindFelixConfiguration, Name: "default"}
	path, err := b.Path(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client().Put(ctx, path, `{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"futureSetting":"1"}}`); err != nil {
		t.Fatal(err)
	}
	obj, err := b.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	newer := `{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"futureSetting":"2"}}`
	if _, err := b.Client().Put(ctx, path, newer); err != nil {
		t.Fatal(err)
	}
	obj.(*api.FelixConfiguration).Spec.LogSeverityScreen = "Debug"
	if _, err := b.Update(ctx, obj); !errors.Is(err, datastore.ErrConflict) {
		t.Fatalf("Update of a value rewritten meanwhile: %v, want ErrConflict", err)
	}
	resp, err := b.Client().Get(ctx, path)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw Get %s: %v", path, err)
	}
	if got := string(resp.Kvs[0].Value); got != newer {
		t.Errorf("stored value = %s, want the newer write %s unchanged", got, newer)
	}
}
