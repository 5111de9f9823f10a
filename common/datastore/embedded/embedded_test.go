package embedded_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/dstest"
	"github.com/tortie-net/tortie/common/datastore/embedded"
	"github.com/tortie-net/tortie/common/datastore/etcd"
)

func start(t *testing.T, dir string) *embedded.Embedded {
	t.Helper()
	em, err := embedded.StartEmbedded(t.Context(), embedded.EmbeddedConfig{
		DataDir:       dir,
		ClientURL:     "http://127.0.0.1:0",
		PeerURL:       "http://127.0.0.1:0",
		UnsafeNoFsync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return em
}

// TestDataSurvivesRestart starts a server, writes through the etcd backend, restarts the server on the
// same data dir and reads the data back.
func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	em := start(t, dir)
	eps := em.Endpoints()
	if len(eps) != 1 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") || strings.HasSuffix(eps[0], ":0") {
		t.Fatalf("Endpoints() = %v, want the real loopback port", eps)
	}
	b, err := etcd.New(etcd.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	created, err := b.Create(t.Context(), dstest.IPPool("pool-a", "10.1.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	em.Close() // idempotent

	em = start(t, dir)
	defer em.Close()
	b, err = etcd.New(etcd.Config{Endpoints: em.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := b.Get(t.Context(), datastore.Key{Kind: api.KindIPPool, Name: "pool-a"})
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if got.GetResourceVersion() != created.GetResourceVersion() || got.GetUID() != created.GetUID() {
		t.Errorf("after a restart: rv %s uid %s, want %s %s", got.GetResourceVersion(), got.GetUID(), created.GetResourceVersion(), created.GetUID())
	}
}

func TestStartFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := "http://" + l.Addr().String()
	_, err = embedded.StartEmbedded(t.Context(), embedded.EmbeddedConfig{
		DataDir: t.TempDir(), ClientURL: busy, PeerURL: "http://127.0.0.1:0",
	})
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("start on a busy port = %v, want an error naming it", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	em, err := embedded.StartEmbedded(ctx, embedded.EmbeddedConfig{
		DataDir: t.TempDir(), ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0", StartTimeout: time.Minute,
	})
	if err == nil { // it may have been ready before it looked at ctx
		em.Close()
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("start with a cancelled context = %v", err)
	}
}
