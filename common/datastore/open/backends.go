package open

import (
	"context"
	"log/slog"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
)

// The real backends are wired here and only here, so that their constructors' signatures touch one file.
// Neither constructor contacts the datastore; Open pings it.
func init() {
	connectEtcd = func(_ context.Context, cfg Config, log *slog.Logger) (datastore.Backend, error) {
		be, err := etcd.New(etcd.Config{
			Endpoints:      cfg.EtcdEndpoints,
			CACertFile:     cfg.EtcdCACertFile,
			CertFile:       cfg.EtcdCertFile,
			KeyFile:        cfg.EtcdKeyFile,
			Username:       cfg.EtcdUsername,
			Password:       cfg.EtcdPassword,
			Prefix:         cfg.EtcdKeyPrefix,
			DialTimeout:    cfg.Tuning.DialTimeout,
			RequestTimeout: cfg.Tuning.RequestTimeout,
			Logger:         log,
		})
		if err != nil {
			return nil, err
		}
		if cfg.Tuning.Preconnect {
			// gRPC connects on the first request; starting now overlaps the handshake with the
			// caller's own start-up work.
			be.Client().ActiveConnection().Connect()
		}
		return be, nil
	}
	connectKube = func(_ context.Context, cfg Config, log *slog.Logger) (datastore.Backend, error) {
		rc, err := cfg.LoadREST()
		if err != nil {
			return nil, err
		}
		be, err := kube.New(kube.Config{RESTConfig: rc, RequestTimeout: cfg.Tuning.RequestTimeout, Logger: log})
		if err != nil {
			return nil, err
		}
		return be, nil
	}
}
