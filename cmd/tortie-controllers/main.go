// Command tortie-controllers runs tortie's cluster-wide controllers (common/controllers): node
// clean-up and IPAM garbage collection, leader-elected with a Lease.
//
//	tortie-controllers run               run until SIGTERM
//	tortie-controllers health --live     probe the localhost health server (exit 1 when failing)
//	tortie-controllers health --ready
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/config/kubeconfig"
	"github.com/tortie-net/tortie/common/controllers"
	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/health"
)

// defaultHealthAddress serves /livez, /readyz and /metrics on localhost only.
const defaultHealthAddress = "127.0.0.1:9094"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "tortie-controllers",
		Short:         "tortie's cluster-wide controllers (node clean-up, IPAM garbage collection)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCommand(getenv, stderr), healthCommand(getenv, stdout))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintf(stderr, "tortie-controllers: %v\n", err)
		return 1
	}
	return 0
}

func healthAddress(getenv func(string) string) string {
	if v, _ := config.Lookup(getenv, "TORTIE_HEALTH_ADDRESS"); v != "" {
		return v
	}
	return defaultHealthAddress
}

func healthCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var live, ready bool
	cmd := &cobra.Command{
		Use:   "health --live|--ready",
		Short: "Probe the running controllers' health server (TORTIE_HEALTH_ADDRESS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if live == ready {
				return errors.New("give exactly one of --live and --ready")
			}
			path := "/readyz"
			if live {
				path = "/livez"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			_, err := health.Probe(ctx, healthAddress(getenv), path)
			if err == nil {
				_, _ = fmt.Fprintln(stdout, "ok")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "liveness")
	cmd.Flags().BoolVar(&ready, "ready", false, "readiness")
	return cmd
}

func runCommand(getenv func(string) string, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the controllers until SIGTERM",
		Long: `Run the controllers. Settings (TORTIE_ names win over Calico's):
  DATASTORE_TYPE, KUBECONFIG, ETCD_ENDPOINTS, ...   the datastore, as every tortie binary chooses it
  ENABLED_CONTROLLERS            node,ipam (default); etcd only: namespace,serviceaccount,workloadendpoint,policy
  TORTIE_IPAM_GC_GRACE_PERIOD    how long an allocation stays ownerless before release (default 15m)
  TORTIE_IPAM_GC_INTERVAL        how often IPAM is checked (default 5m)
  TORTIE_HEALTH_ADDRESS          /livez, /readyz and /metrics (default 127.0.0.1:9094)
  POD_NAME, POD_NAMESPACE        the leader-election identity and the Lease's namespace
  LOG_LEVEL                      debug, info, warning or error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runControllers(cmd.Context(), getenv, stderr)
		},
	}
}

func runControllers(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	level := slog.LevelInfo
	if v, from := config.Lookup(getenv, "LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(strings.Replace(strings.ToLower(v), "warning", "warn", 1))); err != nil {
			return fmt.Errorf("%s=%q: use debug, info, warning or error", from, v)
		}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	grace, err := config.LookupDuration(getenv, "TORTIE_IPAM_GC_GRACE_PERIOD", controllers.DefaultGracePeriod)
	if err != nil {
		return err
	}
	interval, err := config.LookupDuration(getenv, "TORTIE_IPAM_GC_INTERVAL", 5*time.Minute)
	if err != nil {
		return err
	}
	var enabled []string
	if v, _ := config.Lookup(getenv, "ENABLED_CONTROLLERS"); v != "" {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				enabled = append(enabled, c)
			}
		}
	}
	ns, _ := config.Lookup(getenv, "POD_NAMESPACE")
	if ns == "" {
		ns = "kube-system"
	}
	id, _ := config.Lookup(getenv, "POD_NAME")
	if id == "" {
		h, _ := os.Hostname()
		id = h
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	id += "_" + hex.EncodeToString(suffix[:])

	cfg, err := open.Resolve(getenv, open.Overrides{Logger: log})
	if err != nil {
		return fmt.Errorf("choosing the datastore: %w", err)
	}
	be, err := open.Open(ctx, cfg, open.Overrides{Logger: log})
	if err != nil {
		return err
	}
	defer be.Close() //nolint:errcheck // exiting
	rc, src, err := kubeconfig.Load(getenv, cfg.Kubeconfig, kubeconfig.Options{UserAgent: "tortie-controllers"})
	if err != nil {
		return fmt.Errorf("the controllers need the Kubernetes API: %w", err)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client for %s: %w", src, err)
	}
	agg := health.New(nil)
	metrics := controllers.NewMetrics()
	addr, served, err := health.Serve(ctx, healthAddress(getenv), agg.Handler(),
		map[string]http.Handler{"/metrics": promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})})
	if err != nil {
		return err
	}
	log.Info("tortie-controllers starting", "datastore_type", string(cfg.Type), "health_address", addr, "identity", id, "grace_period", grace.String())
	m, err := controllers.New(controllers.Options{Kube: kc, Backend: be, NodeIsDatastoreNode: cfg.Type == open.Kubernetes,
		Enabled: enabled, Namespace: ns, Identity: id, GCGrace: grace, GCInterval: interval, Health: agg, Metrics: metrics, Log: log})
	if err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	if err := <-served; err != nil {
		return fmt.Errorf("health server: %w", err)
	}
	return nil
}
