// Package kubeconfig is tortie's one way to find and load Kubernetes client configuration. Every binary
// (agent, CNI plugin, CLI, controllers) resolves it the same way:
//
//  1. an explicit path (a flag, the CNI config's kubernetes.kubeconfig, a datastore config file);
//  2. the KUBECONFIG setting under tortie's alias rule (TORTIE_KUBECONFIG, KUBECONFIG,
//     CALICO_KUBECONFIG; see common/config.Lookup);
//  3. the pod's service account, when KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are set;
//  4. none.
//
// A path may list several files separated by the OS path-list separator (":" on Linux, ";" on Windows);
// they are merged as kubectl merges $KUBECONFIG.
package kubeconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tortie-net/tortie/common/config"
)

// EnvKubeconfig is the setting naming the kubeconfig file(s).
const EnvKubeconfig = "KUBECONFIG"

// ErrNone means no Kubernetes API is configured: no path, no KUBECONFIG and not in a pod.
var ErrNone = errors.New("no Kubernetes API configured: set KUBECONFIG (or TORTIE_KUBECONFIG), or run in a pod with a service account")

// Source says where a configuration came from, for messages.
type Source struct {
	// Path is the kubeconfig path(s); empty for the in-cluster configuration.
	Path string
	// From names the flag or variable the path came from, or "in-cluster".
	From string
}

func (s Source) String() string {
	if s.Path == "" {
		return "the pod's service account"
	}
	if s.From == "" {
		return "kubeconfig " + s.Path
	}
	return fmt.Sprintf("kubeconfig %s (from %s)", s.Path, s.From)
}

// Options tune the loaded configuration. Zero values keep client-go's defaults.
type Options struct {
	UserAgent      string
	Timeout        time.Duration
	QPS            float32
	Burst          int
	ExplicitFrom   string // names where an explicit path came from, for messages (e.g. "--kubeconfig")
	DisableCluster bool   // do not fall back to the in-cluster configuration
}

// Resolve decides where the configuration comes from without reading any file. explicit may be empty.
// It returns ErrNone when nothing is configured.
func Resolve(getenv func(string) string, explicit string, o Options) (Source, error) {
	if p := strings.TrimSpace(explicit); p != "" {
		return Source{Path: p, From: o.ExplicitFrom}, nil
	}
	if p, from := config.Lookup(getenv, EnvKubeconfig); p != "" {
		return Source{Path: p, From: from}, nil
	}
	if !o.DisableCluster && getenv != nil && getenv("KUBERNETES_SERVICE_HOST") != "" && getenv("KUBERNETES_SERVICE_PORT") != "" {
		return Source{From: "in-cluster"}, nil
	}
	return Source{}, ErrNone
}

// Load resolves and loads the configuration. The returned config is a copy the caller may modify.
func Load(getenv func(string) string, explicit string, o Options) (*rest.Config, Source, error) {
	src, err := Resolve(getenv, explicit, o)
	if err != nil {
		return nil, src, err
	}
	rc, err := LoadSource(src, o)
	return rc, src, err
}

// LoadSource loads the configuration src names.
func LoadSource(src Source, o Options) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if src.Path == "" {
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("using %s for the Kubernetes API: %w", src, err)
		}
	} else {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(src.Path)}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", src, err)
		}
	}
	rc = rest.CopyConfig(rc)
	if o.UserAgent != "" {
		rc.UserAgent = o.UserAgent
	}
	if o.Timeout > 0 {
		rc.Timeout = o.Timeout
	}
	if o.QPS > 0 {
		rc.QPS = o.QPS
	}
	if o.Burst > 0 {
		rc.Burst = o.Burst
	}
	return rc, nil
}
