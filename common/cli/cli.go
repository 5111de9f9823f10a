package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/open"
)

// Exit codes.
const (
	ExitOK = 0
	// ExitError: the command failed, or failed for some resources (partial success).
	ExitError = 1
	// ExitUsage: bad flags or arguments; nothing was attempted.
	ExitUsage = 2
)

// Env is everything a command touches outside itself.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment; nil means an empty environment.
	Getenv func(string) string
	// Open connects to the datastore; nil means open.FromEnv. Tests pass their own backend here.
	Open func(ctx context.Context, getenv func(string) string, o open.Overrides) (datastore.Backend, error)
}

// PluginPrefix is the argv[0] prefix kubectl gives plugins it runs.
const PluginPrefix = "kubectl-"

// Dispatch reads how the binary was called: as a kubectl plugin (kubectl-tortie), the command name is
// "kubectl tortie" and the datastore defaults to kubernetes; otherwise it is "tortiectl".
func Dispatch(argv0 string) (name string, plugin bool) {
	base := argv0
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	if len(base) > 4 && strings.EqualFold(base[len(base)-4:], ".exe") {
		base = base[:len(base)-4]
	}
	if rest, ok := strings.CutPrefix(base, PluginPrefix); ok && rest != "" {
		// kubectl turns dashes in plugin names into subcommand words; underscores stand for dashes.
		return "kubectl " + strings.ReplaceAll(rest, "_", "-"), true
	}
	return "tortiectl", false
}

// Main runs the command line args (args[0] is the program name, as os.Args) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		args = []string{"tortiectl"}
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Open == nil {
		env.Open = open.FromEnv
	}
	name, plugin := Dispatch(args[0])
	s := &state{env: env, name: name, plugin: plugin, log: slog.New(slog.DiscardHandler)}
	defer s.close()

	root := newRootCommand(s)
	root.SetArgs(args[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	// Flag and argument errors are usageErrors (SetFlagErrorFunc, argsRange); cobra reports an unknown
	// subcommand itself, with this wording.
	var ue *usageError
	isUsage := errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ")
	// A reportedError's details are already on stderr; its message is the summary.
	printf(env.Stderr, "Error: %v\n", err)
	if isUsage {
		cmd, _, findErr := root.Find(args[1:])
		if findErr != nil || cmd == nil {
			cmd = root
		}
		printf(env.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	return ExitError
}

// usageError is a mistake on the command line; Main prints a hint and exits with ExitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// reportedError means the command already printed the details to stderr; Main prints the summary.
type reportedError struct{ summary string }

func (e *reportedError) Error() string { return e.summary }

// state is shared by the commands of one Main call.
type state struct {
	env    Env
	name   string
	plugin bool

	configFile    string
	kubeconfig    string
	logLevel      string
	allowMismatch bool
	timeout       time.Duration

	log *slog.Logger
	be  datastore.Backend
}

// backend opens the datastore on first use.
func (s *state) backend(cmd *cobra.Command) (datastore.Backend, error) {
	if s.be != nil {
		return s.be, nil
	}
	o := open.Overrides{
		ConfigFile:         s.configFile,
		ConfigFileRequired: cmd.Flags().Changed("config"),
		Kubeconfig:         s.kubeconfig,
		Timeout:            s.timeout,
		Logger:             s.log,
	}
	if s.plugin {
		o.DefaultType = open.Kubernetes
	}
	be, err := s.env.Open(cmd.Context(), s.env.Getenv, o)
	if err != nil {
		return nil, err
	}
	s.be = be
	return be, nil
}

func (s *state) close() {
	if s.be != nil {
		if err := s.be.Close(); err != nil {
			s.log.Debug("closing datastore", "error", err)
		}
		s.be = nil
	}
}

func (s *state) stdout() io.Writer { return s.env.Stdout }
func (s *state) stderr() io.Writer { return s.env.Stderr }

// logLevels maps calicoctl's --log-level names (logrus) to slog; panic and fatal, calicoctl's default,
// silence logging.
var logLevels = map[string]slog.Level{
	"trace": slog.LevelDebug - 4, "debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
}

func (s *state) setupLogging() error {
	lvl := strings.ToLower(s.logLevel)
	if lvl == "panic" || lvl == "fatal" || lvl == "none" {
		s.log = slog.New(slog.DiscardHandler)
		return nil
	}
	level, ok := logLevels[lvl]
	if !ok {
		return usagef("--log-level: unknown level %q (use trace, debug, info, warning, error, fatal or panic)", s.logLevel)
	}
	s.log = slog.New(slog.NewTextHandler(s.env.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

func newRootCommand(s *state) *cobra.Command {
	short := "Manage tortie (Calico-compatible) networking resources"
	if s.plugin {
		short += " (kubectl plugin; the datastore defaults to kubernetes)"
	}
	root := &cobra.Command{
		Use:           s.name,
		Short:         short,
		Long:          short + ".\n\n" + envHelp(s.plugin),
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without subcommand arguments, print help instead of failing.
		Args: cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return s.setupLogging()
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	if s.plugin {
		// "kubectl tortie" is two words; cobra takes the first word of Use as the command name.
		root.Use = strings.ReplaceAll(s.name, " ", "-")
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: s.name}
	}
	root.SetIn(s.env.Stdin)
	root.SetOut(s.env.Stdout)
	root.SetErr(s.env.Stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{err.Error()} })

	pf := root.PersistentFlags()
	pf.StringVarP(&s.configFile, "config", "c", open.DefaultConfigFile,
		"path to a calicoctl-style CalicoAPIConfig file (read if it exists; environment variables fill what it leaves out)")
	pf.StringVar(&s.kubeconfig, "kubeconfig", "", "kubeconfig file; selects the kubernetes datastore unless DATASTORE_TYPE says otherwise")
	pf.BoolVar(&s.allowMismatch, "allow-version-mismatch", false, "accepted for calicoctl compatibility; tortiectl does not check versions")
	pf.StringVar(&s.logLevel, "log-level", "panic", "log level: trace, debug, info, warning, error, fatal or panic (panic logs nothing)")
	pf.DurationVar(&s.timeout, "timeout", open.DefaultTimeout, "how long to wait for the datastore to answer")

	root.AddCommand(
		newCRUDCommand(s, opApply),
		newCRUDCommand(s, opCreate),
		newCRUDCommand(s, opReplace),
		newCRUDCommand(s, opDelete),
		newGetCommand(s),
		newIPAMCommand(s),
		newPolicyCommand(s),
		newVersionCommand(s),
		newInstallCommand(s),
	)
	return root
}

// exactArgs etc. return usage errors so that Main exits with ExitUsage.
func argsRange(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min {
			return usagef("%s: expected at least %d argument(s), got %d", cmd.CommandPath(), min, len(args))
		}
		if max >= 0 && len(args) > max {
			return usagef("%s: expected at most %d argument(s), got %d: %s", cmd.CommandPath(), max, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

func envHelp(plugin bool) string {
	h := `The datastore is chosen as calicoctl does:
  DATASTORE_TYPE     kubernetes or etcdv3
  KUBECONFIG         kubeconfig for the kubernetes datastore (or --kubeconfig)
  ETCD_ENDPOINTS     comma-separated etcd URLs for the etcdv3 datastore
  ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE, ETCD_USERNAME, ETCD_PASSWORD
Each may also be given with a TORTIE_ or CALICO_ prefix, or in a CalicoAPIConfig file (-c).
`
	if plugin {
		return h + `Without DATASTORE_TYPE: kubernetes, with KUBECONFIG or ~/.kube/config (kubectl plugin mode).`
	}
	return h + `Without DATASTORE_TYPE: etcdv3 if ETCD_ENDPOINTS is set, kubernetes if a kubeconfig is set or when running
in a pod, else etcdv3 at http://127.0.0.1:2379.`
}

// printf writes command output. A failed write to a terminal or pipe is not something the command can
// act on (a closed pipe ends the process anyway), so the error is dropped here, in one place.
func printf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
