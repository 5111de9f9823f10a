// Command tortie-cni is tortie's CNI plugin (spec 1.1.0: ADD, DEL, CHECK, GC, STATUS, VERSION) and its
// IPAM plugin in one binary. What it is depends on the name it is run as:
//
//   - "tortie-ipam" or "calico-ipam" (any name ending in "-ipam"): the IPAM plugin, which other plugins
//     (bridge, ptp, macvlan, ...) can name as their "ipam" type;
//   - anything else — "tortie", "calico", "tortie-cni": the main plugin.
//
// The installer puts one copy in the CNI bin directory and links "tortie" and "tortie-ipam" to it; it
// also links "calico" and "calico-ipam" when replacing Calico, so that an existing Calico conflist
// ("type": "calico", "ipam": {"type": "calico-ipam"}) keeps working unchanged. docs/cni.md has the
// configuration keys and behaviour; the logic lives in common/cni and the OS plumbing in linux/cni
// (veth pairs) and windows/cni (HNS endpoints; installed as tortie.exe and tortie-ipam.exe).
//
// Built with the tag tortie_fakehns (Linux, tests only), the plugin runs the Windows plumbing against
// the file-backed fake HNS named by $TORTIE_FAKE_HNS (windows/hcnfake.Open), so that tests drive the
// Windows plugin through libcni as containerd does. Release builds never have that tag, and so never
// contain the fake.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/tortie-net/tortie/common/cni"
	tversion "github.com/tortie-net/tortie/common/version"
)

// isIPAM reports whether the binary was run as the IPAM plugin.
func isIPAM(argv0 string) bool {
	name := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	return strings.HasSuffix(name, "-ipam")
}

// started is when main began, for the timing log.
var started time.Time

func main() {
	started = time.Now()
	// A plugin invocation lives for milliseconds and allocates a few MB: collecting garbage only
	// costs time (measurably, per ADD). The memory limit keeps a runaway invocation bounded.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(256 << 20)
	ipamMode := isIPAM(os.Args[0])
	about := fmt.Sprintf("tortie CNI plugin %s (%s)", tversion.Version, "main plugin")
	if ipamMode {
		about = fmt.Sprintf("tortie CNI plugin %s (%s)", tversion.Version, "IPAM plugin")
	}
	skel.PluginMainFuncs(funcs(ipamMode), version.All, about)
}

// funcs returns the command functions of the main or the IPAM plugin.
func funcs(ipamMode bool) skel.CNIFuncs {
	if ipamMode {
		return skel.CNIFuncs{
			Add: func(a *skel.CmdArgs) error {
				return run(a, true, func(ctx context.Context, p *cni.Plugin) error {
					res, err := p.IPAMAdd(ctx, cmdArgs(a))
					if err != nil {
						return err
					}
					return types.PrintResult(res, p.Conf.CNIVersion)
				})
			},
			Del:    cmd(true, (*cni.Plugin).IPAMDel),
			Check:  cmd(true, (*cni.Plugin).IPAMCheck),
			GC:     cmd(true, (*cni.Plugin).IPAMGC),
			Status: cmd(true, (*cni.Plugin).IPAMStatus),
		}
	}
	return skel.CNIFuncs{
		Add: func(a *skel.CmdArgs) error {
			return run(a, false, func(ctx context.Context, p *cni.Plugin) error {
				res, err := p.Add(ctx, cmdArgs(a))
				if err != nil {
					return err
				}
				return types.PrintResult(res, p.Conf.CNIVersion)
			})
		},
		Del:    cmd(false, (*cni.Plugin).Del),
		Check:  cmd(false, (*cni.Plugin).Check),
		GC:     cmd(false, (*cni.Plugin).GC),
		Status: cmd(false, (*cni.Plugin).Status),
	}
}

func cmd(ipamMode bool, f func(*cni.Plugin, context.Context, *cni.CmdArgs) error) func(*skel.CmdArgs) error {
	return func(a *skel.CmdArgs) error {
		return run(a, ipamMode, func(ctx context.Context, p *cni.Plugin) error { return f(p, ctx, cmdArgs(a)) })
	}
}

func cmdArgs(a *skel.CmdArgs) *cni.CmdArgs {
	return &cni.CmdArgs{ContainerID: a.ContainerID, Netns: a.Netns, IfName: a.IfName, Args: a.Args, Path: a.Path, StdinData: a.StdinData}
}

// run parses the configuration, builds the plugin and runs one command. Every error leaves as a
// *types.Error (skel prints it as the CNI error result); a panic becomes code 999.
func run(a *skel.CmdArgs, ipamMode bool, f func(context.Context, *cni.Plugin) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = cni.Errorf(cni.CodeInternal, "internal error (a bug in tortie; please report it): %v", r)
		}
		if err != nil {
			err = cni.AsError(err, cni.CodeInternal)
		}
	}()
	if err := platformSupported(); err != nil {
		return err
	}
	conf, err := cni.ParseNetConf(a.StdinData, os.Getenv)
	if err != nil {
		return err
	}
	log, closeLog := cni.NewLogger(conf, os.Stderr)
	defer closeLog()
	for _, k := range conf.Ignored {
		log.Debug("network configuration key accepted but not acted on", "key", k)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	parsed := time.Now()
	be, ipamClient, pods, err := cni.Connect(conf, log)
	if err != nil {
		return err
	}
	// The backend is not closed: the process exits right after the command, which closes its
	// connections, and closing an etcd client waits for its goroutines (measurably, per ADD).
	p := &cni.Plugin{
		Conf:     conf,
		Host:     cni.OSHost(),
		Backend:  be,
		IPAM:     ipamClient,
		Delegate: cni.ExecDelegate{},
		Pods:     pods,
		Hints:    cni.FileBlockHints{Path: filepath.Join(filepath.Dir(conf.IPAMLockFile), cni.HintsFileName)},
		Log:      log,
	}
	// The OS fills in the IPAM lock and, for the main plugin, the pod network.
	if err := platformSetup(a, p, ipamMode); err != nil {
		return err
	}
	connected := time.Now()
	err = f(ctx, p)
	log.Debug("invocation timing", "command", os.Getenv("CNI_COMMAND"), "parse", parsed.Sub(started).String(),
		"connect", connected.Sub(parsed).String(), "run", time.Since(connected).String())
	return err
}
