package cni

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/etcd"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/ipam"
)

// Datastore timeouts for one plugin invocation: short, because the runtime is waiting.
const (
	dialTimeout    = 5 * time.Second
	requestTimeout = 15 * time.Second
)

// Connect builds what conf names: the datastore backend, the in-process IPAM over it, and a
// PodSource when a kubeconfig is configured (always with the kubernetes datastore; with etcdv3 only
// when kubernetes.kubeconfig is set, as Calico reads pods from Kubernetes in that case too). Nothing
// is contacted yet: the first datastore call connects.
func Connect(conf *NetConf, log *slog.Logger) (datastore.Backend, *ipam.Client, PodSource, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rc *rest.Config
	if conf.Kubeconfig != "" {
		var err error
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(conf.Kubeconfig)}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, nil, nil, invalidConfig("kubernetes.kubeconfig", "%s cannot be loaded: %v", conf.Kubeconfig, err)
		}
		rc = rest.CopyConfig(rc)
		rc.Timeout = requestTimeout
		rc.UserAgent = "tortie-cni"
		rc.QPS, rc.Burst = 50, 100
	}
	var be datastore.Backend
	switch conf.DatastoreType {
	case DatastoreKubernetes:
		kb, err := kube.New(kube.Config{RESTConfig: rc, RequestTimeout: requestTimeout, Logger: log})
		if err != nil {
			return nil, nil, nil, Errorf(CodeInvalidConfig, "kubernetes datastore: %v", err)
		}
		be = kb
	default:
		eb, err := etcd.New(etcd.Config{
			Endpoints:      conf.EtcdEndpoints,
			CACertFile:     conf.EtcdCACertFile,
			CertFile:       conf.EtcdCertFile,
			KeyFile:        conf.EtcdKeyFile,
			Prefix:         conf.EtcdKeyPrefix,
			DialTimeout:    dialTimeout,
			RequestTimeout: requestTimeout,
			Logger:         log,
		})
		if err != nil {
			return nil, nil, nil, Errorf(CodeInvalidConfig, "etcdv3 datastore at %v: %v (check etcd_endpoints and the etcd_*_file keys)", conf.EtcdEndpoints, err)
		}
		// gRPC connects on the first request; start now, so the handshake overlaps the plugin's
		// own start-up work instead of delaying its first read.
		eb.Client().ActiveConnection().Connect()
		be = eb
	}
	var pods PodSource
	if rc != nil {
		kp, err := NewKubePods(rc)
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
