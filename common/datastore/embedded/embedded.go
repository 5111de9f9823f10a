package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tortie-net/tortie/common/datastore/internal/zapslog"
)

// Defaults for EmbeddedConfig: a single-member etcd on loopback, the same ports as a standalone etcd,
// so that etcdctl and calicoctl find it without flags.
const (
	DefaultDataDir   = "/var/lib/tortie/etcd"
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
	DefaultName      = "tortie"
	// DefaultCompactionRetention keeps an hour of history: watchers that fall further behind relist.
	DefaultCompactionRetention = time.Hour
	DefaultStartTimeout        = time.Minute
)

// EmbeddedConfig configures an etcd server inside the process. Every field is optional.
type EmbeddedConfig struct {
	// DataDir holds the database and the write-ahead log (default DefaultDataDir); it is created with
	// mode 0700. An existing data dir is reused, so data survives restarts.
	DataDir string
	// ClientURL is where clients connect (default DefaultClientURL). Port 0 picks a free port; see
	// Endpoints.
	ClientURL string
	// PeerURL is the raft peer address; a single member only listens on it (default DefaultPeerURL).
	PeerURL string
	// Name is the member name (default DefaultName). Keep it stable across restarts of one data dir.
	Name string
	// Logger receives etcd's warnings and errors (default: discarded).
	Logger *slog.Logger
	// CompactionRetention is how much history periodic compaction keeps (default
	// DefaultCompactionRetention; negative disables compaction).
	CompactionRetention time.Duration
	// StartTimeout bounds the wait for the server to serve (default DefaultStartTimeout).
	StartTimeout time.Duration
	// UnsafeNoFsync skips fsync: faster, and data is lost on a machine crash. For tests only.
	UnsafeNoFsync bool
}

// Embedded is a running embedded etcd server.
type Embedded struct {
	e         *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// StartEmbedded starts an etcd server in this process and returns once it serves clients, or fails if
// it does not within the start timeout or ctx is done first.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.ClientURL == "" {
		cfg.ClientURL = DefaultClientURL
	}
	if cfg.PeerURL == "" {
		cfg.PeerURL = DefaultPeerURL
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.CompactionRetention == 0 {
		cfg.CompactionRetention = DefaultCompactionRetention
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	client, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", cfg.ClientURL, err)
	}
	peer, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL %q: %w", cfg.PeerURL, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: creating data dir: %w", err)
	}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{*client}
	ec.AdvertiseClientUrls = []url.URL{*client}
	ec.ListenPeerUrls = []url.URL{*peer}
	ec.AdvertisePeerUrls = []url.URL{*peer}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.LogLevel = "warn"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapslog.New(cfg.Logger, zap.WarnLevel))
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	if cfg.CompactionRetention > 0 {
		ec.AutoCompactionMode = embed.CompactorModePeriodic
		ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd in %s on %s: %w", cfg.DataDir, cfg.ClientURL, err)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s on %s: %w", cfg.DataDir, cfg.ClientURL, err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s on %s: not serving after %v", cfg.DataDir, cfg.ClientURL, cfg.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s on %s: %w", cfg.DataDir, cfg.ClientURL, ctx.Err())
	}
	em := &Embedded{e: e}
	for _, l := range e.Clients {
		em.endpoints = append(em.endpoints, client.Scheme+"://"+l.Addr().String())
	}
	if len(em.endpoints) == 0 {
		e.Close()
		return nil, errors.New("embedded etcd: started without a client listener")
	}
	return em, nil
}

// Endpoints returns the client URLs, with the real ports when port 0 was asked for.
func (em *Embedded) Endpoints() []string { return append([]string(nil), em.endpoints...) }

// Err delivers a fatal server error, should one happen while running.
func (em *Embedded) Err() <-chan error { return em.e.Err() }

// Close stops the server gracefully and waits until it has stopped. It is idempotent.
func (em *Embedded) Close() error {
	em.closeOnce.Do(func() {
		em.e.Close()
		<-em.e.Server.StopNotify()
	})
	return nil
}
