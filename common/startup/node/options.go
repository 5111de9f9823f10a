package node

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/version"
)

// Datastore types, spelled as DATASTORE_TYPE.
const (
	DatastoreKubernetes = "kubernetes"
	DatastoreEtcd       = "etcdv3"
)

// DefaultNodeWaitTimeout bounds the wait for the Kubernetes Node in the Kubernetes datastore.
const DefaultNodeWaitTimeout = 2 * time.Minute

// Options configure Run. Only Backend is required.
type Options struct {
	// Backend is the datastore (required).
	Backend datastore.Backend
	// DatastoreType is DatastoreKubernetes or DatastoreEtcd; empty means: kubernetes when Backend is
	// the kube backend, etcdv3 otherwise. In the Kubernetes datastore the Node is the Kubernetes Node:
	// startup waits for it instead of creating it, does not write a per-node FelixConfiguration, and
	// adds "kdd" to ClusterInformation's clusterType.
	DatastoreType string
	// Env reads the environment; nil means os.Getenv.
	Env func(string) string
	// Interfaces lists the host's interfaces (address autodetection, MTU detection, the default IPv4
	// pool's overlap check); nil means autodetect.SystemInterfaces.
	Interfaces autodetect.InterfaceSource
	// Kube, when set, is used to read the kubeadm-config and Rancher ConfigMaps (default pool CIDRs,
	// clusterType) and the Node's InternalIP for IP_AUTODETECTION_METHOD=kubernetes-internal-ip.
	// Without it those are skipped; kubernetes-internal-ip then falls back to the InternalIP addresses
	// the Kubernetes datastore reports on the Node.
	Kube kubernetes.Interface
	// Files are the state files; zero fields take their defaults (see Files).
	Files Files
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger

	// NodeWaitTimeout bounds the wait for the Kubernetes Node in the Kubernetes datastore (default
	// DefaultNodeWaitTimeout); NodeWaitInterval is how often it is polled (default 1s).
	NodeWaitTimeout, NodeWaitInterval time.Duration
	// Hostname returns the OS hostname for the node name; nil means os.Hostname.
	Hostname func() (string, error)
	// GOOS is the node's OS as runtime.GOOS spells it; empty means runtime.GOOS. It decides the
	// autodetection exclusions' OS (through autodetect), the "win" cluster type and IPv6 support.
	GOOS string
	// IPv6Supported reports whether the host can do IPv6 (for the default IPv6 pool); nil means Calico's
	// check: false on Windows, else whether /proc/sys/net/ipv6 exists.
	IPv6Supported func() bool
	// Version is written to ClusterInformation calicoVersion; empty means version.Version.
	Version string
	// Rand is the randomness for the cluster GUID, the ULA pool and VXLAN MACs; nil means crypto/rand.
	Rand io.Reader
}

// Files are the files startup writes. An empty field takes its default, in this order: the
// environment variable named below (with its TORTIE_ alias), then the built-in path.
type Files struct {
	// NodenameFile is Calico's node-name file, which the CNI plugin reads (CALICO_NODENAME_FILE;
	// /var/lib/calico/nodename).
	NodenameFile string
	// TortieNodenameFile is tortie's own copy, read first by autodetect.NodeName
	// (TORTIE_NODENAME_FILE; /var/lib/tortie/nodename).
	TortieNodenameFile string
	// MTUFile receives the pod MTU for the CNI plugin (/var/lib/calico/mtu).
	MTUFile string
}

// resolved fills the empty fields.
func (f Files) resolved(env func(string) string) Files {
	if f.NodenameFile == "" {
		// Not lookup: TORTIE_NODENAME_FILE names tortie's own copy, not an alias of this one.
		if v := strings.TrimSpace(env(autodetect.EnvNodeNameFile)); v != "" {
			f.NodenameFile = v
		} else {
			f.NodenameFile = config.NodenameFile
		}
	}
	if f.TortieNodenameFile == "" {
		if v := strings.TrimSpace(env(autodetect.EnvTortieNodeNameFile)); v != "" {
			f.TortieNodenameFile = v
		} else {
			f.TortieNodenameFile = autodetect.TortieNodeNameFile
		}
	}
	if f.MTUFile == "" {
		f.MTUFile = config.MTUFile
	}
	return f
}

// withDefaults checks and completes the options.
func (o Options) withDefaults() (Options, error) {
	if o.Backend == nil {
		return o, errors.New("node startup: no datastore backend given")
	}
	if o.Env == nil {
		o.Env = os.Getenv
	}
	if o.Interfaces == nil {
		o.Interfaces = autodetect.SystemInterfaces{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NodeWaitTimeout <= 0 {
		o.NodeWaitTimeout = DefaultNodeWaitTimeout
	}
	if o.NodeWaitInterval <= 0 {
		o.NodeWaitInterval = time.Second
	}
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	if o.IPv6Supported == nil {
		goos := o.GOOS
		o.IPv6Supported = func() bool {
			if goos == "windows" {
				return false
			}
			_, err := os.Stat("/proc/sys/net/ipv6")
			return err == nil
		}
	}
	if o.Version == "" {
		o.Version = version.Version
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.DatastoreType == "" {
		o.DatastoreType = DatastoreEtcd
		if _, ok := o.Backend.(*kube.Backend); ok {
			o.DatastoreType = DatastoreKubernetes
		}
	}
	switch o.DatastoreType {
	case DatastoreKubernetes, DatastoreEtcd:
	default:
		return o, errors.New("node startup: DatastoreType must be " + DatastoreKubernetes + " or " + DatastoreEtcd + ", not " + o.DatastoreType)
	}
	o.Files = o.Files.resolved(o.Env)
	return o, nil
}
