package kube

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Ping is a plain GET of /readyz over the client's transport: under the host's path prefix, with
// the configuration's credentials, and a failure names the status and the body.
func TestPingReadyz(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/prefix/readyz":
			http.Error(w, "unexpected path "+r.URL.Path, http.StatusNotFound)
		case r.Header.Get("Authorization") != "Bearer secret-token":
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		case r.Header.Get("User-Agent") != "tortie-test":
			http.Error(w, "user agent "+r.Header.Get("User-Agent"), http.StatusBadRequest)
		case !ready.Load():
			http.Error(w, "[-]etcd failed: reason withheld\nreadyz check failed", http.StatusInternalServerError)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	b, err := New(Config{RESTConfig: &rest.Config{Host: srv.URL + "/prefix/", BearerToken: "secret-token", UserAgent: "tortie-test"},
		RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ready.Store(false)
	err = b.Ping(t.Context())
	if err == nil || !strings.Contains(err.Error(), "GET /readyz") || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "etcd failed") {
		t.Errorf("Ping of a server that is not ready: %v", err)
	}
	_ = b.Close()
	if err := b.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Ping after Close: %v", err)
	}
}
