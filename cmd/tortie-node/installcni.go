package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/config/kubeconfig"
	installcni "github.com/tortie-net/tortie/common/install/cni"
)

// serviceAccountDir is where Kubernetes mounts a pod's service-account token, CA and namespace.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type installCNIFlags struct {
	binary         string
	binDirs        []string
	netDir         string
	watch          bool
	interval       time.Duration
	tokenLifetime  time.Duration
	serviceAccount string
}

func newInstallCNICommand(env *Env, rf *rootFlags) *cobra.Command {
	var f installCNIFlags
	cmd := &cobra.Command{
		Use:   "install-cni",
		Short: "Install the CNI plugin, its kubeconfig and the network configuration on this node",
		Long: `Install tortie's CNI plugin on the node (the DaemonSet's install-cni init container): copy the
plugin into each --bin-dir as tortie and tortie-ipam, write the CNI kubeconfig with a service-account
token (mode 0600), and write the network configuration list last. Files are replaced atomically and
only when they differ. With --watch it keeps running, renews the token before it expires and repairs
removed or changed files.

Calico's install-cni variables are read (TORTIE_ names win): CNI_CONF_NAME (default
10-tortie.conflist), CNI_NETWORK_CONFIG or CNI_NETWORK_CONFIG_FILE (a conflist template with
__KUBECONFIG_FILEPATH__, __CNI_MTU__, __KUBERNETES_NODE_NAME__, __DATASTORE_TYPE__, __LOG_LEVEL__,
__ETCD_ENDPOINTS__ placeholders), CNI_NET_DIR (the configuration directory as the host sees it,
default /etc/cni/net.d), CNI_MTU (default 0: the agent's MTU file), UPDATE_CNI_BINARIES (default
true), KUBERNETES_NODE_NAME or NODENAME, DATASTORE_TYPE (default kubernetes), CNI_LOG_LEVEL,
CALICO_CNI_SERVICE_ACCOUNT (the account whose token the plugin uses, requested with TokenRequest;
unset: the pod's own projected token). TORTIE_CNI_CALICO_NAMES=true also links calico and
calico-ipam, so a Calico conflist keeps working.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger(env)
			if err != nil {
				return err
			}
			cfg, err := installCNIConfig(env, f)
			if err != nil {
				return err
			}
			cfg.Logger = log
			in, err := installcni.New(cfg)
			if err != nil {
				return err
			}
			if f.watch {
				return in.Watch(cmd.Context(), f.interval)
			}
			res, err := in.Install(cmd.Context())
			if err != nil {
				return err
			}
			log.Info("CNI installed", "files_written", len(res.Written), "conflist", filepath.Join(cfg.NetDir, cfg.ConfName))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.binary, "binary", "/opt/tortie/bin/tortie-cni", "the plugin binary to install")
	fl.StringSliceVar(&f.binDirs, "bin-dir", []string{"/host/opt/cni/bin"}, "CNI bin directories to install into (repeat or comma-separate; empty: no binaries)")
	fl.StringVar(&f.netDir, "net-dir", "/host/etc/cni/net.d", "the CNI configuration directory as mounted here")
	fl.BoolVar(&f.watch, "watch", false, "keep running: renew the token before expiry and repair the files")
	fl.DurationVar(&f.interval, "interval", time.Minute, "with --watch: how often to check the files")
	fl.DurationVar(&f.tokenLifetime, "token-lifetime", 24*time.Hour, "lifetime asked for with TokenRequest")
	fl.StringVar(&f.serviceAccount, "service-account", "", "service account for the plugin's token (default: CALICO_CNI_SERVICE_ACCOUNT, else the pod's own token)")
	return cmd
}

// installCNIConfig builds the installer configuration from flags and environment.
func installCNIConfig(env *Env, f installCNIFlags) (installcni.Config, error) {
	get := func(name, def string) string {
		if v, _ := config.Lookup(env.Getenv, name); v != "" {
			return v
		}
		return def
	}
	update, err := config.LookupBool(env.Getenv, "UPDATE_CNI_BINARIES", true)
	if err != nil {
		return installcni.Config{}, usageError{err}
	}
	calicoNames, err := config.LookupBool(env.Getenv, "TORTIE_CNI_CALICO_NAMES", false)
	if err != nil {
		return installcni.Config{}, usageError{err}
	}
	var binDirs []string // --bin-dir= (empty) installs no binaries
	for _, d := range f.binDirs {
		if d = strings.TrimSpace(d); d != "" {
			binDirs = append(binDirs, d)
		}
	}
	cfg := installcni.Config{
		Binary:         f.binary,
		BinDirs:        binDirs,
		UpdateBinaries: update,
		CalicoNames:    calicoNames,
		NetDir:         f.netDir,
		HostNetDir:     get("CNI_NET_DIR", installcni.DefaultHostNetDir),
		ConfName:       get("CNI_CONF_NAME", installcni.DefaultConfName),
	}
	if v, from := config.Lookup(env.Getenv, "CNI_NETWORK_CONFIG"); v != "" {
		cfg.NetworkConfig, cfg.ConfigFrom = v, from
	} else if p, from := config.Lookup(env.Getenv, "CNI_NETWORK_CONFIG_FILE"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", from, err)
		}
		cfg.NetworkConfig, cfg.ConfigFrom = string(b), fmt.Sprintf("%s (%s=%s)", p, from, p)
	}
	node := get("KUBERNETES_NODE_NAME", get("NODENAME", ""))
	if node == "" && env.Hostname != nil {
		if h, err := env.Hostname(); err == nil {
			node = strings.ToLower(h)
		}
	}
	cfg.Placeholders = map[string]string{
		"__KUBERNETES_NODE_NAME__":    node,
		"__CNI_MTU__":                 get("CNI_MTU", "0"),
		"__DATASTORE_TYPE__":          get("DATASTORE_TYPE", "kubernetes"),
		"__LOG_LEVEL__":               get("CNI_LOG_LEVEL", "info"),
		"__ETCD_ENDPOINTS__":          get("ETCD_ENDPOINTS", ""),
		"__KUBERNETES_SERVICE_HOST__": env.Getenv("KUBERNETES_SERVICE_HOST"),
		"__KUBERNETES_SERVICE_PORT__": env.Getenv("KUBERNETES_SERVICE_PORT"),
	}

	// The kubeconfig: only in a pod (the API server's service address is known).
	cfg.APIServer = installcni.APIServerURL(env.Getenv("KUBERNETES_SERVICE_HOST"), env.Getenv("KUBERNETES_SERVICE_PORT"))
	if cfg.APIServer == "" {
		return cfg, nil
	}
	cfg.KubeconfigName = installcni.DefaultKubeconfigName
	cfg.CAFile = filepath.Join(serviceAccountDir, "ca.crt")
	sa := f.serviceAccount
	if sa == "" {
		sa = get("CALICO_CNI_SERVICE_ACCOUNT", "")
	}
	if sa == "" {
		cfg.Tokens = installcni.FileTokenSource{Path: filepath.Join(serviceAccountDir, "token")}
		return cfg, nil
	}
	rc, src, err := kubeconfig.Load(env.Getenv, "", kubeconfig.Options{UserAgent: "tortie-node install-cni", Timeout: 30 * time.Second})
	if err != nil {
		return cfg, fmt.Errorf("install-cni: connecting to the API server to request a token for %s: %w", sa, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return cfg, fmt.Errorf("install-cni: client for %s: %w", src, err)
	}
	ns := get("POD_NAMESPACE", "")
	if ns == "" {
		b, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace"))
		if err != nil {
			return cfg, fmt.Errorf("install-cni: the namespace of service account %s: set POD_NAMESPACE: %w", sa, err)
		}
		ns = strings.TrimSpace(string(b))
	}
	cfg.Tokens = installcni.RequestTokenSource{Client: cs, Namespace: ns, Account: sa, Lifetime: f.tokenLifetime}
	return cfg, nil
}
