//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/linux/lab"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad flags, arguments or input; the lab is unchanged
)

// Env is what the commands touch outside themselves.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	root := newRoot(&env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "accepts ") ||
		strings.HasPrefix(err.Error(), "requires "):
		printf(env.Stderr, "tortie-lab: %v\nRun 'tortie-lab --help' for usage.\n", err)
		return exitUsage
	}
	printf(env.Stderr, "tortie-lab: %v\n", err)
	return exitError
}

// exitCode passes a code through (tortiectl's, already reported).
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

type app struct {
	env *Env
	dir string
}

func newRoot(env *Env) *cobra.Command {
	a := &app{env: env}
	root := &cobra.Command{
		Use:   "tortie-lab",
		Short: "a tortie cluster in network namespaces on this machine",
		Long: `tortie-lab runs a tortie cluster on one Linux machine (as root): each node is a network namespace
on the bridge tlab0 running a real tortie-node, pods are network namespaces networked by the real
tortie-cni, and the datastore is an embedded etcd. Every command is a separate process; the lab's state
is in --dir. docs/lab.md documents the command line.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := env.Getenv("TORTIE_LAB_DIR")
	if def == "" {
		def = lab.DefaultDir
	}
	root.PersistentFlags().StringVar(&a.dir, "dir", def, "the lab's state directory (default: TORTIE_LAB_DIR, else "+lab.DefaultDir+")")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.up(), a.down(), a.ns(), a.pod(), a.applyCmd("apply"), a.applyCmd("delete"), a.sync(), a.probe(),
		a.trace(), a.status(), a.demo(), a.node(), a.datastore(), a.serveEtcd(), a.servePod(), a.sa())
	return root
}

func (a *app) out() io.Writer { return a.env.Stdout }

// withLab opens the lab for a command.
func (a *app) withLab(f func(*lab.Lab) error) error {
	l, err := lab.Open(a.dir)
	if err != nil {
		return err
	}
	defer l.Close()
	return f(l)
}

func (a *app) self() string {
	p, err := os.Executable()
	if err != nil {
		return "tortie-lab"
	}
	return p
}

// findBin looks for a tortie binary: TORTIE_LAB_BIN_DIR, then beside tortie-lab (bin/linux-amd64 after
// make build), then PATH.
func (a *app) findBin(name string) string {
	var dirs []string
	if d := a.env.Getenv("TORTIE_LAB_BIN_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Dir(a.self()))
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

func (a *app) up() *cobra.Command {
	var (
		o                 lab.UpOptions
		podCIDR, underlay string
	)
	cmd := &cobra.Command{
		Use:   "up [--nodes N] [--pod-cidr CIDR] [--encap vxlan|vxlan-crosssubnet|ipip|none] [--datastore embedded|etcd|kubernetes] [--windows-nodes N]",
		Short: "create the lab and wait until every agent is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.upOptions(&o, podCIDR, underlay); err != nil {
				return err
			}
			return lab.Up(cmd.Context(), a.dir, o, a.out())
		},
	}
	a.upFlags(cmd, &o, &podCIDR, &underlay)
	return cmd
}

func (a *app) upFlags(cmd *cobra.Command, o *lab.UpOptions, podCIDR, underlay *string) {
	fl := cmd.Flags()
	fl.IntVar(&o.Nodes, "nodes", 3, "number of nodes")
	fl.StringVar(podCIDR, "pod-cidr", lab.DefaultPodCIDR.String(), "the default IP pool (CALICO_IPV4POOL_CIDR)")
	fl.StringVar(&o.Encap, "encap", "vxlan", "encapsulation between nodes: vxlan, vxlan-crosssubnet, ipip or none")
	fl.StringVar(&o.Datastore, "datastore", "embedded", "datastore: embedded (etcd in a tortie-lab process), etcd (Debian's etcd), or kubernetes (a kube-apiserver over the embedded etcd: $TORTIE_KUBE_APISERVER or ci/build-kube-apiserver.sh's cached binary)")
	fl.StringVar(&o.Dataplane, "dataplane", "auto", "the agents' dataplane: auto (linux when tortie-node has it, else fake), linux or fake")
	fl.StringVar(underlay, "underlay", lab.DefaultUnderlay.String(), "the nodes' subnet on the bridge tlab0")
	fl.IntVar(&o.WindowsNodes, "windows-nodes", 0, "Windows nodes w1..wN beside the Linux ones: the Windows dataplane and CNI on a fake HNS (needs --encap vxlan)")
}

func (a *app) upOptions(o *lab.UpOptions, podCIDR, underlay string) error {
	var err error
	if o.PodCIDR, err = netip.ParsePrefix(podCIDR); err != nil {
		return usageError{fmt.Errorf("--pod-cidr=%q: want a CIDR such as 10.244.0.0/16", podCIDR)}
	}
	if o.Underlay, err = netip.ParsePrefix(underlay); err != nil {
		return usageError{fmt.Errorf("--underlay=%q: want a CIDR such as 172.31.0.0/24", underlay)}
	}
	o.NodeBin, o.CNIBin, o.LabBin = a.findBin("tortie-node"), a.findBin("tortie-cni"), a.self()
	if o.WindowsNodes > 0 {
		o.WinNodeBin, o.WinCNIBin = a.findBin(lab.WinNodeBinName), a.findBin(lab.WinCNIBinName)
	}
	if o.Datastore == "kubernetes" {
		o.KubeAPIServerBin = lab.FindKubeAPIServer(a.env.Getenv)
	}
	if o.Datastore == "etcd" {
		o.EtcdBin = a.env.Getenv("TORTIE_ETCD")
		if o.EtcdBin == "" {
			o.EtcdBin, _ = exec.LookPath("etcd")
		}
	}
	if err := o.Check(); err != nil {
		return usageError{err}
	}
	return nil
}

func (a *app) down() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "remove the lab, and whatever a crashed lab left (namespaces, links, rules, processes)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := lab.Down(a.dir, a.out()); err != nil {
				return err
			}
			printf(a.out(), "lab down\n")
			return nil
		},
	}
}

func (a *app) ns() *cobra.Command {
	cmd := &cobra.Command{Use: "ns", Short: "add, label or delete namespaces"}
	var labels []string
	add := &cobra.Command{
		Use:   "add NAME [--label k=v]...",
		Short: "add a namespace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := lab.ParseLabels("--label", labels)
			if err != nil {
				return usageError{err}
			}
			return a.withLab(func(l *lab.Lab) error { return l.AddNamespace(cmd.Context(), args[0], ls) })
		},
	}
	add.Flags().StringArrayVar(&labels, "label", nil, "a label k=v (repeatable)")
	label := &cobra.Command{
		Use:   "label NAME k=v...",
		Short: "replace a namespace's labels",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := lab.ParseLabels("label", args[1:])
			if err != nil {
				return usageError{err}
			}
			return a.withLab(func(l *lab.Lab) error { return l.LabelNamespace(cmd.Context(), args[0], ls) })
		},
	}
	del := &cobra.Command{
		Use:   "del NAME",
		Short: "delete an empty namespace (and its NetworkPolicies and NetworkSets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLab(func(l *lab.Lab) error { return l.DeleteNamespace(cmd.Context(), args[0]) })
		},
	}
	cmd.AddCommand(add, label, del)
	return cmd
}

func (a *app) pod() *cobra.Command {
	cmd := &cobra.Command{Use: "pod", Short: "add, label or delete pods"}
	var (
		node          int
		labels, ports []string
		ip, sa        string
	)
	add := &cobra.Command{
		Use:   "add NS/NAME [--node I] [--label k=v]... [--ip ADDR] [--port NAME=PORT/PROTO]... [--sa NAME]",
		Short: "add a pod (CNI ADD on its node) serving TCP and UDP on its ports",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := lab.PodOptions{Node: node, ServiceAccount: sa}
			var err error
			if _, _, err = lab.ParsePodID(args[0]); err != nil {
				return usageError{err}
			}
			if o.Labels, err = lab.ParseLabels("--label", labels); err != nil {
				return usageError{err}
			}
			if ip != "" {
				if o.IP, err = netip.ParseAddr(ip); err != nil || !o.IP.Is4() {
					return usageError{fmt.Errorf("--ip=%q: want an IPv4 address", ip)}
				}
			}
			for _, p := range ports {
				pt, err := lab.ParsePort(p)
				if err != nil {
					return usageError{err}
				}
				o.Ports = append(o.Ports, pt)
			}
			if cmd.Flags().Changed("node") && node < 1 {
				return usageError{fmt.Errorf("--node=%d: nodes are numbered from 1", node)}
			}
			return a.withLab(func(l *lab.Lab) error { return l.AddPod(cmd.Context(), args[0], o) })
		},
	}
	fl := add.Flags()
	fl.IntVar(&node, "node", 0, "the node (1..N; default: the node with the fewest pods)")
	fl.StringArrayVar(&labels, "label", nil, "a label k=v (repeatable)")
	fl.StringVar(&ip, "ip", "", "the pod's address (as Calico's ipAddrs annotation)")
	fl.StringVar(&sa, "sa", "", "the pod's service account in its namespace (`sa add` first)")
	fl.StringArrayVar(&ports, "port", nil, "a port NAME=PORT/PROTO (repeatable; default serve-80-tcp, serve-80-udp, serve-81-tcp, serve-81-udp)")
	label := &cobra.Command{
		Use:   "label NS/NAME k=v...",
		Short: "replace a pod's labels",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := lab.ParseLabels("label", args[1:])
			if err != nil {
				return usageError{err}
			}
			return a.withLab(func(l *lab.Lab) error { return l.LabelPod(cmd.Context(), args[0], ls) })
		},
	}
	del := &cobra.Command{
		Use:   "del NS/NAME",
		Short: "delete a pod (CNI DEL releases its address)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLab(func(l *lab.Lab) error { return l.DeletePod(cmd.Context(), args[0]) })
		},
	}
	cmd.AddCommand(add, label, del, a.podProfiles())
	return cmd
}

func (a *app) applyCmd(verb string) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   verb + " -f FILE|-",
		Short: verb + " Kubernetes NetworkPolicy and projectcalico.org/v3 documents (tortiectl " + verb + ")",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("-f FILE or -f - (standard input) is required")}
			}
			return a.withLab(func(l *lab.Lab) error {
				if code := l.Tortiectl(cmd.Context(), []string{verb, "-f", file}, a.env.Stdin, a.env.Stdout, a.env.Stderr); code != 0 {
					return exitCode(code)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the file, directory or - for standard input")
	return cmd
}

func (a *app) sync() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync [--timeout D]",
		Short: "wait until every agent has programmed the datastore's current state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout=%s: must be positive", timeout)}
			}
			return a.withLab(func(l *lab.Lab) error { return l.Sync(cmd.Context(), timeout) })
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait")
	return cmd
}

func (a *app) probe() *cobra.Command {
	var (
		o      lab.ProbeOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "probe [--port PORT|NAME] [--proto TCP|UDP] [--timeout D] [--json]",
		Short: "connectivity from every pod to every pod ('.' allowed, 'X' blocked, '-' not served)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("proto") {
				if p := strings.ToUpper(o.Proto); p != "TCP" && p != "UDP" {
					return usageError{fmt.Errorf("--proto=%q: use TCP or UDP", o.Proto)}
				}
			}
			if o.Timeout <= 0 {
				return usageError{fmt.Errorf("--timeout=%s: must be positive", o.Timeout)}
			}
			return a.withLab(func(l *lab.Lab) error {
				m, err := l.Probe(cmd.Context(), o)
				if err != nil {
					return err
				}
				if asJSON {
					return m.WriteJSON(a.out())
				}
				_, err = io.WriteString(a.out(), m.Text())
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Port, "port", "", "a port number or name (default: every port each destination declares)")
	fl.StringVar(&o.Proto, "proto", "TCP", "protocol for a numeric --port: TCP or UDP")
	fl.DurationVar(&o.Timeout, "timeout", time.Second, "how long one probe waits")
	fl.Uint16Var(&o.SourcePort, "source-port", 0, "every probe's source port (default: ephemeral ports)")
	fl.BoolVar(&asJSON, "json", false, `print {"pods":[...],"results":{"TCP/80":[rows...]}}`)
	return cmd
}

func (a *app) trace() *cobra.Command {
	var (
		port  int
		proto string
	)
	cmd := &cobra.Command{
		Use:   "trace NS/POD NS/POD --port P --proto TCP",
		Short: "explain the verdict for a packet (tortiectl policy trace on the lab's datastore)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if _, _, err := lab.ParsePodID(id); err != nil {
					return usageError{err}
				}
			}
			targs := []string{"policy", "trace", "--src", args[0], "--dst", args[1], "--proto", proto}
			if port >= 0 {
				targs = append(targs, "--port", strconv.Itoa(port))
			}
			return a.withLab(func(l *lab.Lab) error {
				if code := l.Tortiectl(cmd.Context(), targs, a.env.Stdin, a.env.Stdout, a.env.Stderr); code != 0 {
					return exitCode(code)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&port, "port", -1, "destination port")
	cmd.Flags().StringVar(&proto, "proto", "TCP", "protocol: TCP, UDP, SCTP or ICMP")
	return cmd
}

func (a *app) status() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "nodes, agents' health, pods and addresses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLab(func(l *lab.Lab) error { return l.Status(cmd.Context(), a.out()) })
		},
	}
}

// serveEtcd and servePod are the lab's own detached processes.
func (a *app) serveEtcd() *cobra.Command {
	var dataDir, client, peer string
	cmd := &cobra.Command{
		Use:    "serve-etcd",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(a.env.Stderr, nil))
			return lab.ServeEtcd(cmd.Context(), dataDir, client, peer, readyFile(), log)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "")
	cmd.Flags().StringVar(&client, "client-url", "", "")
	cmd.Flags().StringVar(&peer, "peer-url", "", "")
	return cmd
}

func (a *app) servePod() *cobra.Command {
	var (
		id, logPath string
		ports       []string
	)
	cmd := &cobra.Command{
		Use:    "serve-pod",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []lab.Port
			for _, p := range ports {
				pt, err := lab.ParsePort(p)
				if err != nil {
					return usageError{err}
				}
				ps = append(ps, pt)
			}
			log := slog.New(slog.NewTextHandler(a.env.Stderr, nil))
			return lab.ServePod(cmd.Context(), id, ps, readyFile(), log)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "")
	cmd.Flags().StringVar(&logPath, "log", "", "")
	cmd.Flags().StringArrayVar(&ports, "port", nil, "")
	return cmd
}

// readyFile is fd 3, the pipe the lab waits on, or nil when the process was started without it.
func readyFile() io.WriteCloser {
	f := os.NewFile(3, "ready")
	if f == nil {
		return nil
	}
	if _, err := f.Stat(); err != nil {
		return nil
	}
	return f
}

// printf writes to the terminal; there is nothing useful to do when that fails.
func printf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }

// node and datastore break and mend the lab on purpose (the reliability scenarios).
func (a *app) node() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "kill, start, remove or add nodes (reliability tests)"}
	parse := func(s string) (int, error) {
		i, err := strconv.Atoi(s)
		if err != nil || i < 1 {
			return 0, usageError{fmt.Errorf("node %q: give the node's number, 1..N", s)}
		}
		return i, nil
	}
	kill := &cobra.Command{
		Use:   "kill I",
		Short: "kill node I's tortie-node with SIGKILL (what it programmed stays)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			i, err := parse(args[0])
			if err != nil {
				return err
			}
			return a.withLab(func(l *lab.Lab) error { return l.KillAgent(i) })
		},
	}
	var timeout time.Duration
	start := &cobra.Command{
		Use:   "start I [--timeout D]",
		Short: "start node I's tortie-node again (if it is not running) and wait until it is ready",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := parse(args[0])
			if err != nil {
				return err
			}
			return a.withLab(func(l *lab.Lab) error { return l.StartAgent(cmd.Context(), i, timeout) })
		},
	}
	start.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for readiness")
	del := &cobra.Command{
		Use:   "del I",
		Short: "remove node I: its pods, agent, namespace and Node; IPAM releases what it held",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := parse(args[0])
			if err != nil {
				return err
			}
			return a.withLab(func(l *lab.Lab) error { return l.RemoveNode(cmd.Context(), i, a.out()) })
		},
	}
	add := &cobra.Command{
		Use:   "add [--timeout D]",
		Short: "bring back the first removed node (else add one) and wait until its agent is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLab(func(l *lab.Lab) error {
				i, err := l.AddNode(cmd.Context(), timeout)
				if err == nil {
					printf(a.out(), "node %d ready\n", i)
				}
				return err
			})
		},
	}
	add.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for readiness")
	cmd.AddCommand(kill, start, del, add)
	return cmd
}

func (a *app) datastore() *cobra.Command {
	cmd := &cobra.Command{Use: "datastore", Short: "stop or start the lab's etcd (reliability tests)"}
	stop := &cobra.Command{
		Use:   "stop",
		Short: "kill the datastore's process (its data stays)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withLab(func(l *lab.Lab) error { l.StopDatastore(); return nil })
		},
	}
	start := &cobra.Command{
		Use:   "start",
		Short: "start the datastore again on its data",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withLab(func(l *lab.Lab) error { return l.StartDatastore() })
		},
	}
	cmd.AddCommand(stop, start)
	return cmd
}
