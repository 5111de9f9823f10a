package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/health"
	"github.com/tortie-net/tortie/common/startup/node"
	"github.com/tortie-net/tortie/platform"
	"github.com/tortie-net/tortie/platform/agent"
	"github.com/tortie-net/tortie/platform/fake"
	windp "github.com/tortie-net/tortie/windows/dataplane"
)

// Dataplane names for --dataplane.
const (
	dataplaneFake    = "fake"
	dataplaneLinux   = "linux"
	dataplaneWindows = "windows"
)

// RunOptions are the `run` command's flags; the Windows service fills them too.
type RunOptions struct {
	// Dataplane is fake, linux or windows (empty: the host's OS).
	Dataplane string
	// Startup are the start-up step's files, datastore config and timeouts.
	Startup startupFlags
	// LogLevel, when set, fixes the log level (otherwise LogSeverityScreen decides, live).
	LogLevel string
	// Logger, when set, receives the agent's logs instead of JSON on stderr (the Windows service's log
	// file and Event Log); its level is the caller's.
	Logger *slog.Logger
}

func newRunCommand(env *Env, rf *rootFlags) *cobra.Command {
	var o RunOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run start-up, then the node agent until stopped",
		Long: `Run the node agent: first the start-up steps (as 'tortie-node startup'), then the loop that
streams the datastore, computes the node's desired dataplane state and programs it through the chosen
dataplane, until SIGINT or SIGTERM. Settings come from FELIX_* / TORTIE_* variables, the config file
(FELIX_CONFIGFILE), and the FelixConfiguration resources node.<name> and default, in that order;
docs/agent.md lists them. /livez, /readyz and /metrics are served on HealthHost:HealthPort
(default localhost:9099); 'tortie-node health --live|--ready' probes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.LogLevel = rf.logLevel
			return runAgent(cmd.Context(), env, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Dataplane, "dataplane", "", "dataplane: fake, linux or windows (default: the host's OS)")
	f := &o.Startup
	fl.StringVar(&f.nodenameFile, "nodename-file", "", "Calico's node name file the CNI plugin reads (default: CALICO_NODENAME_FILE, else /var/lib/calico/nodename)")
	fl.StringVar(&f.tortieNodenameFile, "tortie-nodename-file", "", "tortie's node name file (default: TORTIE_NODENAME_FILE, else /var/lib/tortie/nodename)")
	fl.StringVar(&f.mtuFile, "mtu-file", "", "file receiving the pod MTU for the CNI plugin (default /var/lib/calico/mtu)")
	fl.StringVarP(&f.configFile, "config", "c", "", "calicoctl-style datastore config file (CalicoAPIConfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for the Kubernetes API (default: KUBECONFIG, else the pod's service account)")
	fl.DurationVar(&f.nodeWaitTimeout, "node-wait-timeout", node.DefaultNodeWaitTimeout, "Kubernetes datastore: how long to wait for the kubelet to register the Node")
	fl.DurationVar(&f.datastoreTimeout, "datastore-timeout", open.DefaultTimeout, "how long one attempt to connect to the datastore may take")
	return cmd
}

// newDataplane builds the named dataplane: the fake (no host changes), on Linux nodes iptables, ipset
// and netlink (linux/dataplane with linux/routing; FELIX_IPTABLESBACKEND), and on Windows nodes HNS (windows/dataplane;
// K8S_SERVICE_CIDR and VXLAN_ADAPTER as Calico for Windows reads them). Building one touches nothing
// on the host: that starts with its first Apply (or Cleanup).
func newDataplane(name string, getenv func(string) string, mtuFile string, log *slog.Logger) (platform.Dataplane, error) {
	if name == "" {
		name = runtime.GOOS
	}
	switch name {
	case dataplaneFake:
		return fake.New(fake.WithLogger(log)), nil
	case dataplaneLinux:
		return newLinuxDataplane(getenv, mtuFile, log)
	case dataplaneWindows:
		hns, err := openHNS(getenv) // hns_default.go; hns_fakehns_linux.go in a tortie_fakehns build
		if err != nil {
			return nil, err
		}
		var cidrs []netip.Prefix
		if v, from := config.Lookup(getenv, "K8S_SERVICE_CIDR"); v != "" {
			for _, f := range strings.Split(v, ",") {
				p, err := netip.ParsePrefix(strings.TrimSpace(f))
				if err != nil {
					return nil, fmt.Errorf("%s=%q: want comma-separated CIDRs such as 10.96.0.0/12: %w", from, v, err)
				}
				cidrs = append(cidrs, p.Masked())
			}
		}
		adapter, _ := config.Lookup(getenv, "VXLAN_ADAPTER")
		return windp.New(windp.Options{API: hns, Logger: log, ServiceCIDRs: cidrs, AdapterName: adapter}), nil
	}
	return nil, usageError{fmt.Errorf("--dataplane=%q: use fake, linux or windows", name)}
}

// runAgent runs start-up and then the agent until ctx ends. It is the entry point of `tortie-node run`
// and of the Windows service.
func runAgent(ctx context.Context, env *Env, o RunOptions) error {
	// Settings from the environment and the file first: a bad value refuses to start before anything
	// is touched. The node name is not known yet; it only selects the per-node FelixConfiguration.
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	pre, err := config.LoadAgent(env.Getenv, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("agent settings: %w", err)
	}
	liveLevel := level
	level.Set(pre.Current().LogLevel)
	if o.Logger != nil {
		log, liveLevel = o.Logger, nil
	}
	if o.LogLevel != "" {
		l, err := config.ParseLogLevel(o.LogLevel)
		if err != nil {
			return usageError{fmt.Errorf("--log-level=%q: use debug, info, warning or error", o.LogLevel)}
		}
		level.Set(l)
		liveLevel = nil
	}
	dp, err := newDataplane(o.Dataplane, env.Getenv, o.Startup.mtuFile, log.With("component", "dataplane"))
	if err != nil {
		return err
	}

	f := o.Startup
	be, kc, dsType, err := openDatastore(ctx, env, f.configFile, f.kubeconfig, f.datastoreTimeout, log)
	if err != nil {
		return err
	}
	defer be.Close() //nolint:errcheck // nothing to do about a failed close at exit
	res, err := node.Run(ctx, node.Options{
		Backend: be, DatastoreType: dsType, Env: env.Getenv, Interfaces: env.Interfaces, Kube: kc,
		Files:  node.Files{NodenameFile: f.nodenameFile, TortieNodenameFile: f.tortieNodenameFile, MTUFile: f.mtuFile},
		Logger: log.With("component", "startup"), NodeWaitTimeout: f.nodeWaitTimeout, Hostname: env.Hostname,
		GOOS: startupGOOS(o.Dataplane),
	})
	if err != nil {
		return fmt.Errorf("node startup failed: %w", err)
	}
	log.Info("startup done", "node", res.NodeName, "changes", len(res.Changes), "warnings", len(res.Warnings))

	settings, err := config.LoadAgent(env.Getenv, res.NodeName, log.With("component", "config"))
	if err != nil {
		return fmt.Errorf("agent settings: %w", err)
	}
	// The FelixConfigurations as they are now decide the settings that cannot change live; the syncer
	// delivers later changes.
	global := getFelixConfiguration(ctx, be, "default", log)
	perNode := getFelixConfiguration(ctx, be, "node."+res.NodeName, log)
	if ch := settings.Prime(global, perNode); len(ch.Rejected) > 0 {
		log.Warn("FelixConfiguration values rejected at start; the next source applies", "errors", errors.Join(ch.Rejected...).Error())
	}
	if liveLevel != nil {
		level.Set(settings.Current().LogLevel)
	}
	if err := setLocalNode(ctx, dp, be, res.NodeName, log.With("component", "dataplane")); err != nil {
		return err
	}

	publishWindowsVTEP(ctx, dp, be, res.NodeName, log.With("component", "vtep")) // vtep.go

	a, err := agent.New(agent.Options{
		NodeName: res.NodeName, Dataplane: dp, Settings: settings, Logger: log.With("component", "agent"), LogLevel: liveLevel,
		Syncer: func(cb datastore.Callbacks, kinds []datastore.ListOptions) agent.Syncer {
			return datastore.NewSyncer(be, cb, kinds, datastore.WithLogger(log.With("component", "syncer")))
		},
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// getFelixConfiguration reads one FelixConfiguration at start; absent or unreadable gives nil (the
// syncer delivers it later if it exists).
func getFelixConfiguration(ctx context.Context, be datastore.Backend, name string, log *slog.Logger) *api.FelixConfigurationSpec {
	obj, err := be.Get(ctx, datastore.Key{Kind: "FelixConfiguration", Name: name})
	if err != nil {
		if !errors.Is(err, datastore.ErrNotFound) {
			log.Warn("could not read FelixConfiguration at start", "name", name, "error", err.Error())
		}
		return nil
	}
	fc, ok := obj.(*api.FelixConfiguration)
	if !ok {
		return nil
	}
	return &fc.Spec
}

type healthFlags struct {
	live, ready bool
	timeout     time.Duration
}

func newHealthCommand(env *Env) *cobra.Command {
	var f healthFlags
	cmd := &cobra.Command{
		Use:   "health --live|--ready",
		Short: "Probe the local agent's liveness or readiness (exit 0 when healthy)",
		Long: `Probe the agent running on this node, as a DaemonSet probe or the Windows service does:
GET /livez or /readyz on HealthHost:HealthPort (FELIX_HEALTHHOST, default localhost; FELIX_HEALTHPORT,
default 9099). Exit 0 when healthy, 1 otherwise (the failing checks are printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.live == f.ready {
				return usageError{errors.New("give exactly one of --live and --ready")}
			}
			return probeHealth(cmd.Context(), env, f)
		},
	}
	cmd.Flags().BoolVar(&f.live, "live", false, "probe liveness (/livez)")
	cmd.Flags().BoolVar(&f.ready, "ready", false, "probe readiness (/readyz)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

func probeHealth(ctx context.Context, env *Env, f healthFlags) error {
	settings, err := config.LoadAgent(env.Getenv, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("agent settings: %w", err)
	}
	set := settings.Current()
	host := set.HealthHost
	if host == "localhost" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(set.HealthPort))
	path := "/readyz"
	if f.live {
		path = "/livez"
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rep, err := health.Probe(ctx, addr, path)
	if err != nil {
		return err
	}
	printf(env.Stdout, "%s: ok\n", path)
	for _, c := range rep.Checks {
		printDetail(env.Stdout, c)
	}
	return nil
}

func printDetail(w io.Writer, c health.Check) {
	if c.Detail != "" {
		printf(w, "  %s: %s\n", c.Name, c.Detail)
	}
}

// The Windows service runs start-up and then this agent (service.go). runAgent repeats the start-up
// steps, which change nothing the second time (node.Run is idempotent), and so reads the node name and
// opens the datastore exactly as `tortie-node run` does; the extra round trips happen once per service
// start.
func init() {
	agentMain = func(ctx context.Context, env *Env, log *slog.Logger) error {
		o := RunOptions{Startup: startupFlags{
			nodeWaitTimeout: node.DefaultNodeWaitTimeout, datastoreTimeout: open.DefaultTimeout,
			mtuFile: strings.TrimSpace(env.Getenv(envMTUFile)),
		}}
		o.Logger = log
		return runAgent(ctx, env, o)
	}
}
