package open

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/config/kubeconfig"
	"github.com/tortie-net/tortie/common/datastore"
)

// Type is a datastore type, spelled as calicoctl's DATASTORE_TYPE.
type Type string

const (
	// Kubernetes stores resources as CRDs through the Kubernetes API ("kdd").
	Kubernetes Type = "kubernetes"
	// EtcdV3 stores resources as JSON keys in etcd v3 (also tortie-lab's embedded etcd).
	EtcdV3 Type = "etcdv3"
)

// DefaultEtcdEndpoint is used when nothing names a datastore: calicoctl's default, and where tortie-lab's
// embedded etcd listens.
const DefaultEtcdEndpoint = "http://127.0.0.1:2379"

// DefaultConfigFile is calicoctl's default config file. It is read when it exists; a missing default file
// is not an error (a missing file named with -c is).
const DefaultConfigFile = "/etc/calico/calicoctl.cfg"

// DefaultTimeout bounds connecting to and pinging the datastore in FromEnv.
const DefaultTimeout = 10 * time.Second

// Overrides are the command-line settings that take part in choosing the datastore.
type Overrides struct {
	// ConfigFile is a CalicoAPIConfig file (-c/--config); empty means none.
	ConfigFile string
	// ConfigFileRequired makes a missing ConfigFile an error; set it when the user named the file.
	ConfigFileRequired bool
	// Kubeconfig (--kubeconfig) overrides KUBECONFIG and the file's spec.kubeconfig, and selects the
	// kubernetes datastore when DATASTORE_TYPE is not set.
	Kubeconfig string
	// DefaultType is the datastore type when DATASTORE_TYPE (or the file's datastoreType) is not set; it
	// takes precedence over inferring the type from ETCD_ENDPOINTS or KUBECONFIG. kubectl plugin mode sets
	// Kubernetes. Empty means infer.
	DefaultType Type
	// Timeout bounds connecting and the first ping; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives debug messages about the choice; nil discards them.
	Logger *slog.Logger
}

// Config is a resolved datastore choice.
type Config struct {
	Type Type
	// Reason says why Type was chosen, in words for error messages ("DATASTORE_TYPE=etcdv3").
	Reason string
	// Source names where the connection settings came from, e.g. "ETCD_ENDPOINTS" or "config file x.cfg".
	Source string

	EtcdEndpoints  []string
	EtcdUsername   string
	EtcdPassword   string
	EtcdCACertFile string
	EtcdCertFile   string
	EtcdKeyFile    string

	// Kubeconfig is the kubeconfig path, or several separated by the OS path-list separator (merged as
	// kubectl does); empty with InCluster means the pod's service account.
	Kubeconfig string
	InCluster  bool

	// EtcdKeyPrefix puts every etcd key under this prefix (the CNI config's etcd_key_prefix); empty
	// means Calico's layout at the root.
	EtcdKeyPrefix string
	// Tuning adjusts the connection; the zero value keeps the backends' defaults.
	Tuning Tuning
	// RESTConfig, when set, is the already loaded Kubernetes client configuration (see LoadREST); the
	// kubernetes backend uses it instead of loading Kubeconfig again.
	RESTConfig *rest.Config
}

// Tuning adjusts how a backend connects. Short-lived callers (the CNI plugin, whose runtime is waiting)
// set short timeouts and Preconnect; the agent and the CLI keep the defaults.
type Tuning struct {
	// DialTimeout bounds establishing an etcd connection; RequestTimeout bounds each request (etcd and
	// Kubernetes API).
	DialTimeout, RequestTimeout time.Duration
	// Preconnect starts the etcd connection when the backend is built, so that the gRPC (and TLS)
	// handshake overlaps the caller's own start-up work instead of delaying its first request.
	Preconnect bool
	// UserAgent, QPS and Burst of the Kubernetes API client.
	UserAgent string
	QPS       float32
	Burst     int
}

// LoadREST loads the Kubernetes client configuration c names (Kubeconfig, or the pod's service account
// when InCluster) with c.Tuning applied, through common/config/kubeconfig, the one loader.
func (c Config) LoadREST() (*rest.Config, error) {
	if c.RESTConfig != nil {
		return c.RESTConfig, nil
	}
	src := kubeconfig.Source{Path: c.Kubeconfig, From: c.Source}
	if c.Kubeconfig == "" {
		src.From = "in-cluster"
	}
	return kubeconfig.LoadSource(src, kubeconfig.Options{UserAgent: c.Tuning.UserAgent, Timeout: c.Tuning.RequestTimeout,
		QPS: c.Tuning.QPS, Burst: c.Tuning.Burst})
}

// Where describes the datastore location for messages.
func (c Config) Where() string {
	switch c.Type {
	case EtcdV3:
		return "etcdv3 datastore at " + strings.Join(c.EtcdEndpoints, ",")
	case Kubernetes:
		if c.Kubeconfig != "" {
			return "kubernetes datastore with kubeconfig " + c.Kubeconfig
		}
		return "kubernetes datastore using the in-cluster service account"
	}
	return string(c.Type) + " datastore"
}

// setting is one value with where it came from.
type setting struct{ value, from string }

func pick(file setting, getenv func(string) string, env string) setting {
	if file.value != "" {
		return file
	}
	v, from := config.Lookup(getenv, env)
	return setting{v, from}
}

// Resolve decides which datastore to use and how to reach it, without connecting. getenv is usually
// os.Getenv; tests pass a map lookup.
func Resolve(getenv func(string) string, flags Overrides) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var fs fileSpec
	if flags.ConfigFile != "" {
		var err error
		fs, err = readConfigFile(flags.ConfigFile, flags.ConfigFileRequired)
		if err != nil {
			return Config{}, err
		}
	}
	fromFile := func(v string) setting { return setting{v, "spec in " + flags.ConfigFile} }

	dsType := pick(setting{fs.DatastoreType, "spec.datastoreType in " + flags.ConfigFile}, getenv, "DATASTORE_TYPE")
	endpoints := pick(setting{fs.EtcdEndpoints, "spec.etcdEndpoints in " + flags.ConfigFile}, getenv, "ETCD_ENDPOINTS")
	explicit, explicitFrom := flags.Kubeconfig, "--kubeconfig"
	if explicit == "" {
		explicit, explicitFrom = fs.Kubeconfig, "spec.kubeconfig in "+flags.ConfigFile
	}
	var kubeconfigSet setting
	inCluster := false
	switch src, err := kubeconfig.Resolve(getenv, explicit, kubeconfig.Options{ExplicitFrom: explicitFrom}); {
	case err != nil:
	case src.Path != "":
		kubeconfigSet = setting{src.Path, src.From}
	default:
		inCluster = true
	}

	cfg := Config{
		EtcdUsername:   pick(fromFile(fs.EtcdUsername), getenv, "ETCD_USERNAME").value,
		EtcdPassword:   pick(fromFile(fs.EtcdPassword), getenv, "ETCD_PASSWORD").value,
		EtcdCACertFile: pick(fromFile(fs.EtcdCACertFile), getenv, "ETCD_CA_CERT_FILE").value,
		EtcdCertFile:   pick(fromFile(fs.EtcdCertFile), getenv, "ETCD_CERT_FILE").value,
		EtcdKeyFile:    pick(fromFile(fs.EtcdKeyFile), getenv, "ETCD_KEY_FILE").value,
	}

	switch {
	case dsType.value != "":
		t, err := parseType(dsType.value)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", dsType.from, err)
		}
		cfg.Type, cfg.Reason = t, dsType.from+"="+dsType.value
		if strings.HasPrefix(dsType.from, "spec.") {
			cfg.Reason = fmt.Sprintf("%s is %s", dsType.from, dsType.value)
		}
	case flags.DefaultType != "":
		cfg.Type, cfg.Reason = flags.DefaultType, "it is the default for this command"
	case endpoints.value != "":
		cfg.Type, cfg.Reason = EtcdV3, endpoints.from+" is set"
	case kubeconfigSet.value != "":
		cfg.Type, cfg.Reason = Kubernetes, kubeconfigSet.from+" is set"
	case inCluster:
		cfg.Type, cfg.Reason = Kubernetes, "it runs in a pod (KUBERNETES_SERVICE_HOST is set)"
	default:
		cfg.Type, cfg.Reason = EtcdV3, "none of DATASTORE_TYPE, ETCD_ENDPOINTS or KUBECONFIG is set"
	}

	switch cfg.Type {
	case EtcdV3:
		if endpoints.value == "" {
			endpoints = setting{DefaultEtcdEndpoint, "the default endpoint"}
		}
		for _, e := range strings.Split(endpoints.value, ",") {
			if e = strings.TrimSpace(e); e != "" {
				cfg.EtcdEndpoints = append(cfg.EtcdEndpoints, e)
			}
		}
		if len(cfg.EtcdEndpoints) == 0 {
			return Config{}, fmt.Errorf("%s: no etcd endpoints in %q", endpoints.from, endpoints.value)
		}
		cfg.Source = endpoints.from
		if (cfg.EtcdCertFile == "") != (cfg.EtcdKeyFile == "") {
			return Config{}, errors.New("ETCD_CERT_FILE and ETCD_KEY_FILE must be set together (client certificate and its key)")
		}
	case Kubernetes:
		switch {
		case kubeconfigSet.value != "":
			cfg.Kubeconfig, cfg.Source = kubeconfigSet.value, kubeconfigSet.from
		case inCluster:
			cfg.InCluster, cfg.Source = true, "KUBERNETES_SERVICE_HOST"
		default:
			home := getenv("HOME")
			if home == "" {
				home = getenv("USERPROFILE")
			}
			if home == "" {
				return Config{}, errors.New("kubernetes datastore: set KUBECONFIG to the path of a kubeconfig file (HOME is not set, so ~/.kube/config cannot be used)")
			}
			cfg.Kubeconfig, cfg.Source = filepath.Join(home, ".kube", "config"), "the default kubeconfig"
		}
	}
	return cfg, nil
}

func parseType(v string) (Type, error) {
	switch strings.ToLower(v) {
	case "kubernetes", "kdd", "k8s":
		return Kubernetes, nil
	case "etcdv3", "etcd":
		return EtcdV3, nil
	}
	return "", fmt.Errorf("unknown datastore type %q: use kubernetes or etcdv3", v)
}

// connectors are replaced in tests of this package; backends.go sets them to the real backends.
var (
	connectEtcd func(ctx context.Context, cfg Config, log *slog.Logger) (datastore.Backend, error)
	connectKube func(ctx context.Context, cfg Config, log *slog.Logger) (datastore.Backend, error)
)

// New builds the backend cfg describes without contacting it (neither backend connects until its first
// request, or at once with cfg.Tuning.Preconnect). Callers that must know the datastore answers use Open.
func New(cfg Config, log *slog.Logger) (datastore.Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Type {
	case EtcdV3:
		return connectEtcd(context.Background(), cfg, log)
	case Kubernetes:
		return connectKube(context.Background(), cfg, log)
	}
	return nil, fmt.Errorf("unknown datastore type %q: use kubernetes or etcdv3", cfg.Type)
}

// Open connects to the datastore cfg describes and pings it, within flags.Timeout. On failure the error
// names the datastore, why it was chosen and the variables that choose another one. flags.Logger, when
// set, is handed to the backend.
func Open(ctx context.Context, cfg Config, flags Overrides) (datastore.Backend, error) {
	timeout := flags.Timeout
	log := flags.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var connect func(context.Context, Config, *slog.Logger) (datastore.Backend, error)
	switch cfg.Type {
	case EtcdV3:
		connect = connectEtcd
	case Kubernetes:
		connect = connectKube
	default:
		return nil, fmt.Errorf("unknown datastore type %q: use kubernetes or etcdv3", cfg.Type)
	}
	be, err := connect(ctx, cfg, log)
	if err != nil {
		return nil, &UnreachableError{Config: cfg, Err: err}
	}
	if err := be.Ping(ctx); err != nil {
		_ = be.Close()
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		return nil, &UnreachableError{Config: cfg, Err: err}
	}
	return be, nil
}

// FromEnv resolves the datastore from getenv and flags, connects and pings it.
func FromEnv(ctx context.Context, getenv func(string) string, flags Overrides) (datastore.Backend, error) {
	cfg, err := Resolve(getenv, flags)
	if err != nil {
		return nil, err
	}
	if flags.Logger != nil {
		flags.Logger.Debug("datastore chosen", "datastore_type", string(cfg.Type), "reason", cfg.Reason,
			"source", cfg.Source, "where", cfg.Where())
	}
	return Open(ctx, cfg, flags)
}

// UnreachableError reports a datastore that could not be connected to or did not answer.
type UnreachableError struct {
	Config Config
	Err    error
}

func (e *UnreachableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot reach the %s (chosen because %s): %v\n", e.Config.Where(), e.Config.Reason, e.Err)
	b.WriteString("To choose the datastore, set DATASTORE_TYPE=kubernetes with KUBECONFIG=/path/to/kubeconfig, " +
		"or DATASTORE_TYPE=etcdv3 with ETCD_ENDPOINTS=https://host:2379 (and ETCD_CA_CERT_FILE, ETCD_CERT_FILE, " +
		"ETCD_KEY_FILE for TLS), or pass -c FILE with a CalicoAPIConfig; TORTIE_ and CALICO_ prefixed names work too")
	return b.String()
}

func (e *UnreachableError) Unwrap() error { return e.Err }
