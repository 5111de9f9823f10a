package cni

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/ipam"
)

// Datastore timeouts for one plugin invocation: short, because the runtime is waiting.
const (
	dialTimeout    = 5 * time.Second
	requestTimeout = 15 * time.Second
)

// DatastoreConfig is the datastore choice conf makes, for common/datastore/open: the CNI config's keys
// (with their environment fallbacks, already applied by ParseNetConf) decide, not the calicoctl rules,
// and the connection is tuned for one short invocation (short timeouts, the etcd connection started
// at once).
func DatastoreConfig(conf *NetConf) open.Config {
	cfg := open.Config{
		Reason: "datastore_type in the CNI network configuration",
		Tuning: open.Tuning{DialTimeout: dialTimeout, RequestTimeout: requestTimeout, Preconnect: true,
			UserAgent: "tortie-cni", QPS: 50, Burst: 100},
	}
	switch conf.DatastoreType {
	case DatastoreKubernetes:
		cfg.Type, cfg.Kubeconfig, cfg.Source = open.Kubernetes, conf.Kubeconfig, "kubernetes.kubeconfig"
	default:
		cfg.Type, cfg.Source = open.EtcdV3, "etcd_endpoints"
		cfg.EtcdEndpoints = conf.EtcdEndpoints
		cfg.EtcdCACertFile, cfg.EtcdCertFile, cfg.EtcdKeyFile = conf.EtcdCACertFile, conf.EtcdCertFile, conf.EtcdKeyFile
		cfg.EtcdKeyPrefix = conf.EtcdKeyPrefix
	}
	if conf.Kubeconfig != "" {
		// Also with etcdv3: pods are read from Kubernetes when a kubeconfig is configured.
		cfg.Kubeconfig = conf.Kubeconfig
	}
	return cfg
}

// Connect builds what conf names through common/datastore/open: the datastore backend, the
// in-process IPAM over it, and a PodSource when a kubeconfig is configured (always with the kubernetes
// datastore; with etcdv3 only when kubernetes.kubeconfig is set, as Calico reads pods from Kubernetes in
// that case too). The kubeconfig is loaded once for both. Nothing is contacted yet except that the etcd
// connection starts in the background: the first datastore call waits for it.
func Connect(conf *NetConf, log *slog.Logger) (datastore.Backend, *ipam.Client, PodSource, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := DatastoreConfig(conf)
	if cfg.Kubeconfig != "" {
		rc, err := cfg.LoadREST()
		if err != nil {
			return nil, nil, nil, invalidConfig("kubernetes.kubeconfig", "%s cannot be loaded: %v", conf.Kubeconfig, err)
		}
		cfg.RESTConfig = rc
	}
	be, err := open.New(cfg, log)
	if err != nil {
		if cfg.Type == open.Kubernetes {
			return nil, nil, nil, Errorf(CodeInvalidConfig, "kubernetes datastore: %v", err)
		}
		return nil, nil, nil, Errorf(CodeInvalidConfig, "etcdv3 datastore at %v: %v (check etcd_endpoints and the etcd_*_file keys)", conf.EtcdEndpoints, err)
	}
	var pods PodSource
	if cfg.RESTConfig != nil {
		kp, err := NewKubePods(cfg.RESTConfig)
		if err != nil {
			_ = be.Close()
			return nil, nil, nil, Errorf(CodeInvalidConfig, "%v", err)
		}
		pods = kp
	}
	return be, ipam.New(be, ipam.WithLogger(log)), pods, nil
}

// NewLogger returns the plugin's logger and a function that closes its file. With log_file_path the
// log goes there at log_level (rotated at 100 MB, five files kept, as Calico does); otherwise to
// stderr, which the runtime keeps, at log_level but never below warning, so that routine
// invocations stay quiet.
func NewLogger(conf *NetConf, stderr io.Writer) (*slog.Logger, func()) {
	if conf.LogFilePath == "" {
		lvl := max(conf.LogLevel, slog.LevelWarn)
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("plugin", conf.Type, "pid", os.Getpid()), func() {}
	}
	lj := &lumberjack.Logger{Filename: conf.LogFilePath, MaxSize: 100, MaxBackups: 5}
	h := slog.NewTextHandler(lj, &slog.HandlerOptions{Level: conf.LogLevel})
	return slog.New(h).With("plugin", conf.Type, "pid", os.Getpid()), func() { _ = lj.Close() }
}

// Describe says where the datastore is, for messages.
func (c *NetConf) Describe() string {
	if c.DatastoreType == DatastoreKubernetes {
		return fmt.Sprintf("kubernetes datastore (kubeconfig %s)", c.Kubeconfig)
	}
	return fmt.Sprintf("etcdv3 datastore at %v", c.EtcdEndpoints)
}
