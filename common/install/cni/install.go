package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	tcni "github.com/tortie-net/tortie/common/cni"
)

// File modes.
const (
	BinaryMode     fs.FileMode = 0o755
	ConfMode       fs.FileMode = 0o644
	KubeconfigMode fs.FileMode = 0o600 // holds a token
)

// Defaults (Calico's, with tortie's names).
const (
	DefaultConfName       = "10-tortie.conflist"
	DefaultKubeconfigName = "tortie-kubeconfig"
	DefaultHostNetDir     = "/etc/cni/net.d"
	DefaultPluginName     = "tortie"
	DefaultIPAMName       = "tortie-ipam"
)

// DefaultNetworkConfig is the configuration list written when none is given (CNI_NETWORK_CONFIG). The
// __NAME__ placeholders are Calico's and are replaced as its installer replaces them.
const DefaultNetworkConfig = `{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "tortie",
      "log_level": "__LOG_LEVEL__",
      "log_file_path": "/var/log/tortie/cni/cni.log",
      "datastore_type": "__DATASTORE_TYPE__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {"type": "tortie-ipam"},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}
  ]
}`

// Config says what to install where. Paths are as this process sees them.
type Config struct {
	// Binary is the plugin binary to install (in the image, e.g. /opt/tortie/bin/tortie-cni).
	Binary string
	// BinDirs receive the plugin (e.g. /host/opt/cni/bin). Empty: no binaries are installed.
	BinDirs []string
	// CalicoNames also links calico and calico-ipam to the plugin, so an existing Calico conflist keeps
	// working after a migration.
	CalicoNames bool
	// UpdateBinaries false keeps binaries that are already there (Calico's UPDATE_CNI_BINARIES).
	UpdateBinaries bool

	// NetDir receives the conflist and the kubeconfig (e.g. /host/etc/cni/net.d).
	NetDir string
	// HostNetDir is NetDir as the host (and so the plugin) sees it; it goes into the conflist.
	HostNetDir string
	// ConfName is the conflist's file name; it should sort first in NetDir.
	ConfName string
	// NetworkConfig is the conflist template (DefaultNetworkConfig when empty); ConfigFrom names where it
	// came from, for messages.
	NetworkConfig, ConfigFrom string
	// Placeholders maps __NAME__ to its value; __KUBECONFIG_FILEPATH__ is set by Install.
	Placeholders map[string]string

	// KubeconfigName is the kubeconfig's file name in NetDir; empty means no kubeconfig (etcd datastore).
	KubeconfigName string
	// APIServer is the URL the plugin reaches the API server at (https://host:port).
	APIServer string
	// CAFile is the API server's CA bundle (the service account's ca.crt); empty means none.
	CAFile string
	// Tokens supplies the kubeconfig's token.
	Tokens TokenSource

	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Result says what an Install changed.
type Result struct {
	// Written are the files (re)written; empty when everything was already in place.
	Written []string
	// TokenRenewAt is when the kubeconfig's token should be renewed (zero: never, or no kubeconfig).
	TokenRenewAt time.Time
}

// Installer installs the plugin; it remembers the current token between runs.
type Installer struct {
	cfg Config

	mu    sync.Mutex
	token Token
}

// New checks cfg and returns an Installer.
func New(cfg Config) (*Installer, error) {
	if cfg.ConfName == "" {
		cfg.ConfName = DefaultConfName
	}
	if cfg.HostNetDir == "" {
		cfg.HostNetDir = DefaultHostNetDir
	}
	if cfg.NetworkConfig == "" {
		cfg.NetworkConfig, cfg.ConfigFrom = DefaultNetworkConfig, "the default network configuration"
	}
	if cfg.ConfigFrom == "" {
		cfg.ConfigFrom = "the network configuration"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.NetDir == "":
		return nil, errors.New("install-cni: no CNI configuration directory (CNI_NET_DIR / --net-dir)")
	case len(cfg.BinDirs) > 0 && cfg.Binary == "":
		return nil, errors.New("install-cni: no plugin binary to install (--binary)")
	case cfg.KubeconfigName != "" && cfg.APIServer == "":
		return nil, errors.New("install-cni: a kubeconfig is wanted but the API server is unknown: set KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set in every pod) or --api-server")
	case cfg.KubeconfigName != "" && cfg.Tokens == nil:
		return nil, errors.New("install-cni: a kubeconfig is wanted but no token source is configured")
	case strings.ContainsAny(cfg.ConfName, `/\`):
		return nil, fmt.Errorf("install-cni: CNI_CONF_NAME=%q: a file name, not a path", cfg.ConfName)
	case !strings.HasSuffix(cfg.ConfName, ".conflist") && !strings.HasSuffix(cfg.ConfName, ".conf"):
		return nil, fmt.Errorf("install-cni: CNI_CONF_NAME=%q: the runtime only reads names ending in .conflist (or .conf)", cfg.ConfName)
	}
	in := &Installer{cfg: cfg}
	// Render once with a placeholder kubeconfig path so that a bad template fails before anything is written.
	if _, err := in.renderConfig(); err != nil {
		return nil, err
	}
	return in, nil
}

// Install puts binaries, kubeconfig and conflist in place, in that order, writing only what differs.
// It is idempotent; after an error it may be called again.
func (in *Installer) Install(ctx context.Context) (Result, error) {
	var res Result
	note := func(changed bool, p string) {
		if changed {
			res.Written = append(res.Written, p)
			in.cfg.Logger.Info("installed", "file", p)
		}
	}
	if len(in.cfg.BinDirs) > 0 {
		if _, err := os.Stat(in.cfg.Binary); err != nil {
			return res, fmt.Errorf("install-cni: the plugin binary: %w", err)
		}
	}
	for _, dir := range in.cfg.BinDirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, fmt.Errorf("install-cni: creating the CNI bin directory: %w", err)
		}
		removeStaleTemps(dir)
		main := filepath.Join(dir, BinaryName(DefaultPluginName))
		if _, err := os.Lstat(main); err == nil && !in.cfg.UpdateBinaries {
			in.cfg.Logger.Info("keeping the installed plugin (UPDATE_CNI_BINARIES=false)", "file", main)
		} else {
			changed, err := copyFile(in.cfg.Binary, main, BinaryMode)
			if err != nil {
				return res, fmt.Errorf("install-cni: %w", err)
			}
			note(changed, main)
		}
		links := []string{DefaultIPAMName}
		if in.cfg.CalicoNames {
			links = append(links, "calico", "calico-ipam")
		}
		for _, l := range links {
			dst := filepath.Join(dir, BinaryName(l))
			changed, err := link(BinaryName(DefaultPluginName), main, dst, BinaryMode)
			if err != nil {
				return res, fmt.Errorf("install-cni: %w", err)
			}
			note(changed, dst)
		}
	}

	if err := os.MkdirAll(in.cfg.NetDir, 0o755); err != nil {
		return res, fmt.Errorf("install-cni: creating the CNI configuration directory: %w", err)
	}
	removeStaleTemps(in.cfg.NetDir)
	if in.cfg.KubeconfigName != "" {
		tok, err := in.currentToken(ctx)
		if err != nil {
			return res, fmt.Errorf("install-cni: %w", err)
		}
		kc, err := in.kubeconfig(tok.Value)
		if err != nil {
			return res, err
		}
		p := filepath.Join(in.cfg.NetDir, in.cfg.KubeconfigName)
		changed, err := writeFile(p, kc, KubeconfigMode)
		if err != nil {
			return res, fmt.Errorf("install-cni: %w", err)
		}
		note(changed, p)
		res.TokenRenewAt = tok.RenewAt()
	}

	conf, err := in.renderConfig()
	if err != nil {
		return res, err
	}
	p := filepath.Join(in.cfg.NetDir, in.cfg.ConfName)
	changed, err := writeFile(p, conf, ConfMode)
	if err != nil {
		return res, fmt.Errorf("install-cni: %w", err)
	}
	note(changed, p)
	return res, nil
}

// currentToken returns the remembered token, or a new one when there is none or it is due for renewal.
func (in *Installer) currentToken(ctx context.Context) (Token, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.token.Value != "" {
		if at := in.token.RenewAt(); at.IsZero() || in.cfg.Now().Before(at) {
			if _, isFile := in.cfg.Tokens.(FileTokenSource); !isFile {
				return in.token, nil
			}
		}
	}
	t, err := in.cfg.Tokens.Token(ctx)
	if err != nil {
		return Token{}, err
	}
	if !t.Expires.IsZero() && !in.cfg.Now().Before(t.Expires) {
		return Token{}, fmt.Errorf("the token from %s expired at %s", in.cfg.Tokens, t.Expires.UTC().Format(time.RFC3339))
	}
	in.token = t
	return t, nil
}

// kubeconfig renders the CNI kubeconfig with token.
func (in *Installer) kubeconfig(token string) ([]byte, error) {
	cluster := &clientcmdapi.Cluster{Server: in.cfg.APIServer}
	if in.cfg.CAFile != "" {
		ca, err := os.ReadFile(in.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("install-cni: reading the API server's CA %s: %w", in.cfg.CAFile, err)
		}
		cluster.CertificateAuthorityData = ca
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = cluster
	kc.AuthInfos["tortie-cni"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["tortie-cni"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "tortie-cni"}
	kc.CurrentContext = "tortie-cni"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("install-cni: encoding the CNI kubeconfig: %w", err)
	}
	return b, nil
}

// renderConfig replaces the placeholders and checks the result: valid JSON, a configuration list, and
// every tortie (or calico) plugin in it accepted by the plugin's own parser.
func (in *Installer) renderConfig() ([]byte, error) {
	ph := map[string]string{}
	for k, v := range in.cfg.Placeholders {
		ph[k] = v
	}
	if in.cfg.KubeconfigName != "" {
		ph["__KUBECONFIG_FILEPATH__"] = path.Join(filepath.ToSlash(in.cfg.HostNetDir), in.cfg.KubeconfigName)
	}
	s := in.cfg.NetworkConfig
	for k, v := range ph {
		s = strings.ReplaceAll(s, k, v)
	}
	if i := strings.Index(s, "__"); i >= 0 {
		if j := strings.Index(s[i+2:], "__"); j >= 0 && j < 40 && !strings.ContainsAny(s[i:i+2+j], " \"\n") {
			return nil, fmt.Errorf("install-cni: %s: placeholder %s has no value (set its variable, or remove it)", in.cfg.ConfigFrom, s[i:i+4+j])
		}
	}
	var list struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("install-cni: %s is not valid JSON after replacing the placeholders: %w", in.cfg.ConfigFrom, err)
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("install-cni: %s: \"plugins\" is missing or empty: write a configuration list ({\"name\", \"cniVersion\", \"plugins\": [...]})", in.cfg.ConfigFrom)
	}
	for i, raw := range list.Plugins {
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("install-cni: %s: plugins[%d] is not an object: %w", in.cfg.ConfigFrom, i, err)
		}
		typ, _ := p["type"].(string)
		if typ != DefaultPluginName && typ != "calico" {
			continue
		}
		p["name"], p["cniVersion"] = list.Name, list.CNIVersion
		b, _ := json.Marshal(p)
		if _, err := tcni.ParseNetConf(b, nil); err != nil {
			return nil, fmt.Errorf("install-cni: %s: plugins[%d] (type %q): %w", in.cfg.ConfigFrom, i, typ, err)
		}
	}
	out := []byte(s)
	if !strings.HasSuffix(s, "\n") {
		out = append(out, '\n')
	}
	return out, nil
}

// Watch runs Install at once and then whenever the token is due for renewal or every interval, until
// ctx ends. Errors are logged and retried at the next round; the first Install's error is returned at
// once (so a broken configuration fails the container).
func (in *Installer) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	res, err := in.Install(ctx)
	if err != nil {
		return err
	}
	for {
		wait := interval
		if !res.TokenRenewAt.IsZero() {
			if d := res.TokenRenewAt.Sub(in.cfg.Now()); d < wait {
				wait = max(d, time.Second)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		r, err := in.Install(ctx)
		if err != nil {
			in.cfg.Logger.Error("install-cni round failed; retrying", "error", err.Error())
			continue
		}
		res = r
	}
}

// APIServerURL builds https://host:port from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT; ""
// when either is empty.
func APIServerURL(host, port string) string {
	if host == "" || port == "" {
		return ""
	}
	return "https://" + net.JoinHostPort(host, port)
}

// BinaryName is the file name of plugin name in a CNI bin directory: on Windows with ".exe", which the
// runtimes' plugin lookup (libcni's FindInPath) appends there.
func BinaryName(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}
