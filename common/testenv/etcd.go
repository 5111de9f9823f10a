package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EtcdEnv names the environment variable holding the path of the etcd binary
// that EtcdProcess and KubeAPIServer run (default: etcd on PATH).
const EtcdEnv = "TORTIE_ETCD"

// startAttempts bounds retries when a just-chosen free port was taken by
// someone else before the service bound it.
const startAttempts = 3

var sharedEtcd struct {
	mu        sync.Mutex
	endpoints []string
	err       error
}

// Etcd returns the client endpoints of a real etcd server embedded in the
// test binary, listening on 127.0.0.1. With Main it is started once and
// shared by every test of the binary (use a key prefix per test, or
// EtcdClean); without Main each call gets its own, closed by t.Cleanup.
func Etcd(t testing.TB) (endpoints []string) {
	t.Helper()
	if !shared() {
		e, dir, err := startEmbeddedEtcd()
		if err != nil {
			t.Fatalf("starting embedded etcd: %v", err)
		}
		t.Cleanup(func() { e.Close(); _ = os.RemoveAll(dir) })
		return clientURLs(e)
	}
	sharedEtcd.mu.Lock()
	defer sharedEtcd.mu.Unlock()
	if sharedEtcd.endpoints == nil && sharedEtcd.err == nil {
		e, dir, err := startEmbeddedEtcd()
		if err != nil {
			sharedEtcd.err = err
		} else {
			sharedEtcd.endpoints = clientURLs(e)
			register(func() {
				e.Close()
				_ = os.RemoveAll(dir)
				sharedEtcd.mu.Lock()
				sharedEtcd.endpoints, sharedEtcd.err = nil, nil
				sharedEtcd.mu.Unlock()
			})
		}
	}
	if sharedEtcd.err != nil {
		t.Fatalf("starting embedded etcd: %v", sharedEtcd.err)
	}
	return append([]string(nil), sharedEtcd.endpoints...)
}

func clientURLs(e *embed.Etcd) []string {
	var eps []string
	for _, u := range e.Config().AdvertiseClientUrls {
		eps = append(eps, u.String())
	}
	return eps
}

// startEmbeddedEtcd starts a single-member etcd on free loopback ports with
// a fresh data directory, retrying with new ports if one was taken.
func startEmbeddedEtcd() (*embed.Etcd, string, error) {
	dir, err := tempDir("etcd")
	if err != nil {
		return nil, "", err
	}
	var errs []error
	for attempt := range startAttempts {
		e, err := tryEmbeddedEtcd(filepath.Join(dir, strconv.Itoa(attempt)))
		if err == nil {
			return e, dir, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return nil, "", errors.Join(errs...)
}

func tryEmbeddedEtcd(dataDir string) (*embed.Etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := embed.NewConfig()
	cfg.Name = "testenv"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// Nothing here survives a machine crash anyway; fsync only slows tests.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd on %s: %w", clientURL.Host, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: %w", clientURL.Host, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s not ready after 30s", clientURL.Host)
	}
}

// EtcdClient returns a quiet client for endpoints, closed by t.Cleanup.
func EtcdClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// EtcdClean deletes every key in the etcd at endpoints. Tests that call it
// on the shared Etcd must not run in parallel with other users of it.
func EtcdClean(t testing.TB, endpoints []string) {
	t.Helper()
	c := EtcdClient(t, endpoints)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Delete(ctx, "", clientv3.WithPrefix()); err != nil {
		t.Fatalf("deleting all keys in etcd %v: %v", endpoints, err)
	}
}

// EtcdProcess starts a private etcd from the etcd binary (TORTIE_ETCD or etcd
// on PATH; Debian's etcd-server package, 3.4) as a separate process on free
// loopback ports, for tests that stop, kill and restart etcd. Stop/Kill and
// Start keep its data directory and ports. It is stopped by t.Cleanup.
// Without the binary the test is skipped (failed under
// TORTIE_REQUIRE_SERVICES=1).
func EtcdProcess(t testing.TB) *Process {
	t.Helper()
	bin := etcdBinary(t)
	dir, err := tempDir("etcdproc")
	if err != nil {
		t.Fatal(err)
	}
	p, err := startEtcdProcess(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping etcd: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return p
}

// etcdBinary returns the etcd binary's path, or skips t.
func etcdBinary(t testing.TB) string {
	t.Helper()
	bin, reason, ok := lookBinary(EtcdEnv, "etcd")
	if !ok {
		Unavailable(t, "etcd binary: %s", reason)
	}
	return bin
}

// startEtcdProcess starts an etcd process that keeps its data and log under
// dir, retrying with new ports if a chosen port was taken meanwhile.
func startEtcdProcess(bin, dir string) (*Process, error) {
	var errs []error
	for attempt := range startAttempts {
		p, err := newEtcdProcess(bin, filepath.Join(dir, "etcd"+strconv.Itoa(attempt)))
		if err == nil {
			err = p.Start()
		}
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if !portTaken(err) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// portTaken reports whether a start failed because a port was in use.
func portTaken(err error) bool {
	return strings.Contains(err.Error(), "address already in use")
}

func newEtcdProcess(bin, dir string) (*Process, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	args := []string{
		"--name=testenv",
		"--data-dir=" + filepath.Join(dir, "data"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=testenv=" + peer,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=warn",
	}
	health := client + "/health"
	return &Process{
		name:         "etcd",
		path:         bin,
		args:         args,
		logPath:      filepath.Join(dir, "etcd.log"),
		endpoints:    []string{client},
		ready:        func(ctx context.Context) error { return etcdHealthy(ctx, health) },
		readyTimeout: 30 * time.Second,
	}, nil
}

// etcdHealthy checks etcd's /health endpoint, which answers true once the
// member has a leader and serves requests.
func etcdHealthy(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
	}
	if h.Health != "true" {
		return fmt.Errorf("GET %s: health %q", url, h.Health)
	}
	return nil
}
