package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/config/kubeconfig"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/startup/autodetect"
	"github.com/tortie-net/tortie/common/startup/node"
	"github.com/tortie-net/tortie/common/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad flags or arguments; nothing was attempted
)

// Env is everything the commands touch outside themselves, so tests can run them in-process.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment; nil means an empty environment.
	Getenv func(string) string
	// Interfaces overrides the host's interfaces (tests); nil means the real host.
	Interfaces autodetect.InterfaceSource
	// Hostname overrides the OS hostname (tests); nil means os.Hostname.
	Hostname func() (string, error)
}

// usageError marks errors in flags or arguments.
type usageError struct{ error }

// Main runs the command line args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	root := newRootCommand(&env)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		printf(env.Stderr, "tortie-node: %v\nRun 'tortie-node --help' for usage.\n", err)
		return exitUsage
	}
	printf(env.Stderr, "tortie-node: %v\n", err)
	return exitError
}

// printf writes to the terminal; there is nothing useful to do when that fails.
func printf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }

// logLevels maps --log-level / LOG_LEVEL names to slog levels; trace, fatal and panic are accepted for
// Calico's CALICO_STARTUP_LOGLEVEL (logrus names).
var logLevels = map[string]slog.Level{
	"trace": slog.LevelDebug, "debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn,
	"error": slog.LevelError, "fatal": slog.LevelError, "panic": slog.LevelError,
}

type rootFlags struct {
	logLevel string
}

func newRootCommand(env *Env) *cobra.Command {
	var rf rootFlags
	root := &cobra.Command{
		Use:   "tortie-node",
		Short: "tortie's node agent",
		Long: `tortie-node is tortie's per-node agent for Linux and Windows nodes. It reads Calico's environment
variables (and TORTIE_ aliases, which win), so calico-node manifests keep working.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&rf.logLevel, "log-level", "",
		"log level: debug, info, warning or error (default: LOG_LEVEL, else info)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newStartupCommand(env, &rf), newMonitorAddressesCommand(env, &rf), newVersionCommand(env), newRunCommand(env, &rf),
		newHealthCommand(env), newServiceCommand(env, &rf), newInstallCNICommand(env, &rf), newCleanupCommand(env, &rf))
	return root
}

// logger builds the text logger on stderr at the level from --log-level, else the LOG_LEVEL setting
// (TORTIE_LOG_LEVEL, LOG_LEVEL, CALICO_LOG_LEVEL), else Calico's CALICO_STARTUP_LOGLEVEL (or
// TORTIE_STARTUP_LOGLEVEL), else info. Settings are read under common/config's one alias rule.
func (rf *rootFlags) logger(env *Env) (*slog.Logger, error) {
	name, from := rf.logLevel, "--log-level"
	if name == "" {
		name, from = config.Lookup(env.Getenv, "LOG_LEVEL")
	}
	if name == "" {
		name, from = config.Lookup(env.Getenv, "CALICO_STARTUP_LOGLEVEL")
	}
	level := slog.LevelInfo
	if name != "" {
		l, ok := logLevels[strings.ToLower(name)]
		if !ok {
			return nil, usageError{fmt.Errorf("%s=%q: unknown log level; use debug, info, warning or error", from, name)}
		}
		level = l
	}
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level})), nil
}

func newVersionCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := version.Get()
			printf(env.Stdout, "tortie-node %s\n", v.Version)
			if v.GitCommit != "" {
				printf(env.Stdout, "Git commit: %s\n", v.GitCommit)
			}
			printf(env.Stdout, "Go version: %s\nPlatform:   %s\n", v.GoVersion, v.Platform)
			return nil
		},
	}
}

type startupFlags struct {
	nodenameFile, tortieNodenameFile, mtuFile string
	configFile, kubeconfig                    string
	nodeWaitTimeout, datastoreTimeout         time.Duration
}

func newStartupCommand(env *Env, rf *rootFlags) *cobra.Command {
	var f startupFlags
	cmd := &cobra.Command{
		Use:   "startup",
		Short: "Run node startup once and exit",
		Long: `Run node startup once and exit (calico-node's startup plus one run of allocate-tunnel-addrs):
decide the node name and addresses, register the Node, create the default IP pools and the
cluster-wide defaults when absent, reconcile the tunnel addresses, and write the MTU and node name
files the CNI plugin reads. Running it again changes nothing. docs/node-startup.md lists the
environment variables.

The datastore is chosen as tortiectl chooses it: DATASTORE_TYPE (kubernetes or etcdv3), KUBECONFIG,
ETCD_ENDPOINTS and friends, or the pod's service account. WAIT_FOR_DATASTORE=true retries until the
datastore answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger(env)
			if err != nil {
				return err
			}
			return runStartup(cmd.Context(), env, f, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodenameFile, "nodename-file", "", "Calico's node name file the CNI plugin reads (default: CALICO_NODENAME_FILE, else /var/lib/calico/nodename)")
	fl.StringVar(&f.tortieNodenameFile, "tortie-nodename-file", "", "tortie's node name file (default: TORTIE_NODENAME_FILE, else /var/lib/tortie/nodename)")
	fl.StringVar(&f.mtuFile, "mtu-file", "", "file receiving the pod MTU for the CNI plugin (default /var/lib/calico/mtu)")
	fl.StringVarP(&f.configFile, "config", "c", "", "calicoctl-style datastore config file (CalicoAPIConfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for the Kubernetes API (default: KUBECONFIG, else the pod's service account)")
	fl.DurationVar(&f.nodeWaitTimeout, "node-wait-timeout", node.DefaultNodeWaitTimeout, "Kubernetes datastore: how long to wait for the kubelet to register the Node")
	fl.DurationVar(&f.datastoreTimeout, "datastore-timeout", open.DefaultTimeout, "how long one attempt to connect to the datastore may take")
	return cmd
}

// openDatastore connects to the datastore (and the Kubernetes API when there is one) as startup and
// monitor-addresses do, and returns the backend, the Kubernetes client (nil without one) and the
// node.Options datastore type. The caller closes the backend.
func openDatastore(ctx context.Context, env *Env, configFile, kubeconfig string, timeout time.Duration, log *slog.Logger) (
	datastore.Backend, kubernetes.Interface, string, error,
) {
	over := open.Overrides{ConfigFile: configFile, ConfigFileRequired: configFile != "", Kubeconfig: kubeconfig,
		Timeout: timeout, Logger: log}
	cfg, err := open.Resolve(env.Getenv, over)
	if err != nil {
		return nil, nil, "", fmt.Errorf("choosing the datastore: %w", err)
	}
	be, err := connect(ctx, env, cfg, over, log)
	if err != nil {
		return nil, nil, "", err
	}
	kc, err := kubeClient(env, cfg, kubeconfig)
	if err != nil {
		be.Close() //nolint:errcheck,gosec // already failing
		return nil, nil, "", err
	}
	dsType := node.DatastoreEtcd
	if cfg.Type == open.Kubernetes {
		dsType = node.DatastoreKubernetes
	}
	return be, kc, dsType, nil
}

// runStartup connects to the datastore (and the Kubernetes API when there is one) and runs startup.
func runStartup(ctx context.Context, env *Env, f startupFlags, log *slog.Logger) error {
	be, kc, dsType, err := openDatastore(ctx, env, f.configFile, f.kubeconfig, f.datastoreTimeout, log)
	if err != nil {
		return err
	}
	defer be.Close() //nolint:errcheck // nothing to do about a failed close at exit

	res, err := node.Run(ctx, node.Options{
		Backend:         be,
		DatastoreType:   dsType,
		Env:             env.Getenv,
		Interfaces:      env.Interfaces,
		Kube:            kc,
		Files:           node.Files{NodenameFile: f.nodenameFile, TortieNodenameFile: f.tortieNodenameFile, MTUFile: f.mtuFile},
		Logger:          log,
		NodeWaitTimeout: f.nodeWaitTimeout,
		Hostname:        env.Hostname,
	})
	if err != nil {
		return fmt.Errorf("node startup failed: %w", err)
	}
	addr := func(ip autodetect.NodeIP) string {
		if !ip.Prefix.IsValid() {
			return ""
		}
		return ip.Prefix.String()
	}
	attrs := []any{"node", res.NodeName, "ipv4", addr(res.IPv4), "ipv6", addr(res.IPv6),
		"datastore_type", res.DatastoreType, "mtu", res.MTU.Pod, "changes", len(res.Changes), "warnings", len(res.Warnings)}
	var pools, tunnels []string
	for _, p := range res.Pools {
		pools = append(pools, p.Name+"="+string(p.Action))
	}
	for _, t := range res.Tunnels {
		if t.Address != "" {
			tunnels = append(tunnels, t.Type+"="+t.Address)
		}
	}
	attrs = append(attrs, "pools", strings.Join(pools, ","), "tunnel_addresses", strings.Join(tunnels, ","))
	log.Info("startup summary", attrs...)
	return nil
}

type monitorFlags struct {
	nodenameFile, tortieNodenameFile string
	configFile, kubeconfig           string
	pollInterval, datastoreTimeout   time.Duration
}

func newMonitorAddressesCommand(env *Env, rf *rootFlags) *cobra.Command {
	var f monitorFlags
	cmd := &cobra.Command{
		Use:   "monitor-addresses",
		Short: "Keep the Node's addresses current until stopped",
		Long: `Keep the Node's addresses current, as calico-node's monitor-addresses does: re-run the node
address part of startup (IP, IP6, IP_AUTODETECTION_METHOD, IP6_AUTODETECTION_METHOD,
DISABLE_NODE_IP_CHECK) at once and then every AUTODETECT_POLL_INTERVAL (default 60s), and update the
Node when an autodetected address changed. It runs until SIGINT or SIGTERM; when no address is
autodetected (IP is an address or none and IP6 is not autodetect) it exits at once. Run it after
startup: it never creates the Node. The datastore is chosen as startup chooses it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger(env)
			if err != nil {
				return err
			}
			if f.pollInterval < 0 {
				return usageError{fmt.Errorf("--poll-interval=%s: must not be negative", f.pollInterval)}
			}
			return runMonitorAddresses(cmd.Context(), env, f, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodenameFile, "nodename-file", "", "Calico's node name file startup wrote (default: CALICO_NODENAME_FILE, else /var/lib/calico/nodename)")
	fl.StringVar(&f.tortieNodenameFile, "tortie-nodename-file", "", "tortie's node name file (default: TORTIE_NODENAME_FILE, else /var/lib/tortie/nodename)")
	fl.DurationVar(&f.pollInterval, "poll-interval", 0, "how often to re-detect the addresses (default: AUTODETECT_POLL_INTERVAL, else 60s)")
	fl.StringVarP(&f.configFile, "config", "c", "", "calicoctl-style datastore config file (CalicoAPIConfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for the Kubernetes API (default: KUBECONFIG, else the pod's service account)")
	fl.DurationVar(&f.datastoreTimeout, "datastore-timeout", open.DefaultTimeout, "how long one attempt to connect to the datastore may take")
	return cmd
}

// runMonitorAddresses connects as startup does and runs node.Monitor until ctx ends.
func runMonitorAddresses(ctx context.Context, env *Env, f monitorFlags, log *slog.Logger) error {
	be, kc, dsType, err := openDatastore(ctx, env, f.configFile, f.kubeconfig, f.datastoreTimeout, log)
	if err != nil {
		return err
	}
	defer be.Close() //nolint:errcheck // nothing to do about a failed close at exit
	err = node.Monitor(ctx, node.Options{
		Backend:       be,
		DatastoreType: dsType,
		Env:           env.Getenv,
		Interfaces:    env.Interfaces,
		Kube:          kc,
		Files:         node.Files{NodenameFile: f.nodenameFile, TortieNodenameFile: f.tortieNodenameFile},
		Logger:        log,
		Hostname:      env.Hostname,
	}, f.pollInterval)
	if err != nil {
		return fmt.Errorf("monitoring node addresses: %w", err)
	}
	return nil
}

// connect opens the datastore; with WAIT_FOR_DATASTORE=true it retries until the datastore answers or
// ctx ends.
func connect(ctx context.Context, env *Env, cfg open.Config, over open.Overrides, log *slog.Logger) (datastore.Backend, error) {
	wait, err := config.LookupBool(env.Getenv, "WAIT_FOR_DATASTORE", false)
	if err != nil {
		return nil, usageError{err}
	}
	for attempt := 1; ; attempt++ {
		be, err := open.Open(ctx, cfg, over)
		if err == nil {
			log.Info("datastore connected", "datastore_type", string(cfg.Type), "where", cfg.Where(), "reason", cfg.Reason)
			return be, nil
		}
		var ue *open.UnreachableError
		if !wait || !errors.As(err, &ue) {
			return nil, err
		}
		log.Warn("datastore not reachable yet; retrying (WAIT_FOR_DATASTORE=true)", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the datastore: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// kubeClient returns a client for the Kubernetes API, or nil when there is none: the datastore's
// kubeconfig, else --kubeconfig / KUBECONFIG, else the pod's service account (common/config/kubeconfig's
// rule). Like calico-node it is used with the etcd datastore too (kubeadm's pod subnet, the Node's
// InternalIP).
func kubeClient(env *Env, cfg open.Config, flagKubeconfig string) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	if cfg.Type == open.Kubernetes {
		cfg.Tuning.UserAgent = "tortie-node"
		rc, err = cfg.LoadREST()
	} else {
		var src kubeconfig.Source
		src, err = kubeconfig.Resolve(env.Getenv, flagKubeconfig, kubeconfig.Options{ExplicitFrom: "--kubeconfig"})
		if errors.Is(err, kubeconfig.ErrNone) {
			return nil, nil
		}
		if err == nil {
			rc, err = kubeconfig.LoadSource(src, kubeconfig.Options{UserAgent: "tortie-node"})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API: %w", err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", rc.Host, err)
	}
	return cs, nil
}
