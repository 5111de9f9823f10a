package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/datastore/open"
	"github.com/tortie-net/tortie/common/startup/node"
	winsvc "github.com/tortie-net/tortie/windows/service"
)

// agentMain is the node agent's entry point (`tortie-node run`), which the service runs after startup.
// It is set by the file that builds the agent into this binary; while it is nil the service runs startup
// and then stops with errAgentMissing.
var agentMain func(ctx context.Context, env *Env, log *slog.Logger) error

var errAgentMissing = errors.New("the agent is not built into this binary: node startup ran, but there is no 'tortie-node run' to start after it")

// serviceHost gives the service commands the OS (tests substitute the fake SCM).
var serviceHost = winsvc.Native

// prereqHost gives `service check` the OS (tests substitute a fake node).
var prereqHost = winsvc.NativePrereq

// envMTUFile overrides where the service's startup writes the pod MTU (the startup command's --mtu-file).
const envMTUFile = "TORTIE_MTU_FILE"

type serviceFlags struct {
	envFile, logDir, startType string
	env                        []string
	purge, json                bool
}

func newServiceCommand(env *Env, rf *rootFlags) *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install and control tortie-node as a Windows service",
		Long: `Install and control tortie-node as a Windows service (run from an elevated prompt). The service runs
node startup and then the agent; it starts automatically at boot after the Host Network Service, is
restarted by the service manager 5s, 15s and then 60s after a failure, logs to
%ProgramData%\tortie\logs\tortie-node.log (rotated at 10 MiB, five old files kept) and reports errors to
the Application Event Log (source tortie-node). Its settings — Calico's environment variables such as
DATASTORE_TYPE, KUBECONFIG, NODENAME, or their TORTIE_ names — are KEY=VALUE lines in
%ProgramData%\tortie\tortie-node.env, and win over the machine's environment.

The MSI runs 'service configure'; the service manager runs 'service run'. docs/install-windows.md has
the whole procedure.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.envFile, "env-file", "", `the service's environment file (default %ProgramData%\tortie\tortie-node.env)`)
	pf.StringVar(&f.logDir, "log-dir", "", `the service's log folder (default %ProgramData%\tortie\logs)`)

	manager := func() (*winsvc.Manager, error) {
		h := serviceHost()
		o := winsvc.DefaultOptions(h.ProgramData)
		if f.envFile != "" {
			o.EnvFile = f.envFile
		}
		if f.logDir != "" {
			o.LogDir = f.logDir
		}
		if f.startType != "" {
			o.StartType = f.startType
		}
		if err := o.Validate(); err != nil {
			return nil, usageError{err}
		}
		return &winsvc.Manager{Host: h, Opts: o, Out: env.Stdout}, nil
	}
	changes := func() ([]winsvc.EnvChange, error) {
		c, err := winsvc.ParseEnvChanges("--env", f.env)
		if err != nil {
			return nil, usageError{err}
		}
		return c, nil
	}
	simple := func(use, short string, run func(m *winsvc.Manager) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return run(m)
		}}
	}

	install := simple("install", "Register the service (automatic start, restart on failure) and write its settings",
		func(m *winsvc.Manager) error {
			c, err := changes()
			if err != nil {
				return err
			}
			return m.Install(c)
		})
	install.Flags().StringArrayVar(&f.env, "env", nil, "a setting for the environment file: KEY=VALUE sets, -KEY removes, KEY= keeps (repeatable)")
	install.Flags().StringVar(&f.startType, "start-type", "", "automatic (default), manual or disabled")

	configure := simple("configure", "Set the recovery actions, Event Log source and settings of the installed service (the MSI runs this)",
		func(m *winsvc.Manager) error {
			c, err := changes()
			if err != nil {
				return err
			}
			return m.Configure(c)
		})
	configure.Flags().StringArrayVar(&f.env, "env", nil, "a setting for the environment file: KEY=VALUE sets, -KEY removes, KEY= keeps (repeatable)")

	uninstall := simple("uninstall", "Stop and remove the service (settings and logs stay unless --purge)",
		func(m *winsvc.Manager) error { return m.Uninstall(f.purge) })
	uninstall.Flags().BoolVar(&f.purge, "purge", false, "also remove the environment file and the logs")

	status := simple("status", "Print the service's state: running, stopped or not-installed",
		func(m *winsvc.Manager) error {
			st, err := m.Status()
			if err != nil {
				return err
			}
			printf(env.Stdout, "%s\n", st)
			return nil
		})

	run := &cobra.Command{
		Use:   "run",
		Short: "Run as the service (what the service manager starts; from a console it runs until Ctrl-C)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return m.Run(func(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
				return serviceBody(ctx, env, getenv, log)
			}, winsvc.RunOptions{
				Getenv: env.Getenv,
				Stderr: env.Stderr,
				Level: func(getenv func(string) string) (slog.Leveler, error) {
					e := *env
					e.Getenv = getenv
					l, err := rf.logger(&e)
					if err != nil {
						return nil, err
					}
					return levelOf(l), nil
				},
			})
		},
	}

	check := &cobra.Command{
		Use:   "check",
		Short: "Check this node's prerequisites: Windows build, HNS, containerd, the VXLAN port, elevation",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			checks := winsvc.CheckPrerequisites(prereqHost())
			if f.json {
				b, err := json.MarshalIndent(checks, "", "  ")
				if err != nil {
					return err
				}
				printf(env.Stdout, "%s\n", b)
			} else {
				printf(env.Stdout, "%s", winsvc.FormatChecks(checks))
			}
			if failed := winsvc.Failed(checks); len(failed) > 0 {
				return fmt.Errorf("prerequisites not met: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	check.Flags().BoolVar(&f.json, "json", false, "print the checks as JSON (check, ok, detail)")

	cmd.AddCommand(install, configure, uninstall, check,
		simple("start", "Start the service", (*winsvc.Manager).Start),
		simple("stop", "Stop the service", (*winsvc.Manager).Stop),
		status, run)
	return cmd
}

// serviceBody is what the service runs: node startup, then the agent, with the service's settings.
func serviceBody(ctx context.Context, env *Env, getenv func(string) string, log *slog.Logger) error {
	e := *env
	e.Getenv = getenv
	f := startupFlags{
		nodeWaitTimeout:  node.DefaultNodeWaitTimeout,
		datastoreTimeout: open.DefaultTimeout,
		mtuFile:          strings.TrimSpace(getenv(envMTUFile)),
	}
	if err := runStartup(ctx, &e, f, log); err != nil {
		return err
	}
	if agentMain == nil {
		return errAgentMissing
	}
	if err := agentMain(ctx, &e, log); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// levelOf is the lowest level l logs (the root command's logger decides it from --log-level and the
// LOG_LEVEL settings).
func levelOf(l *slog.Logger) slog.Level {
	for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if l.Enabled(context.Background(), lv) {
			return lv
		}
	}
	return slog.LevelError
}
