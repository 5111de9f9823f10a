// Command tortie-node is tortie's per-node agent. Its subcommands:
//
//	tortie-node startup             one-shot node startup (node name, addresses, Node registration,
//	                                default pools, cluster defaults, tunnel addresses, MTU and node name
//	                                files), then exit
//	tortie-node monitor-addresses   re-detect the node's addresses every AUTODETECT_POLL_INTERVAL and
//	                                update the Node, until SIGINT / SIGTERM
//	tortie-node run                 startup, then the agent loop (platform/agent) until SIGINT / SIGTERM
//	tortie-node health              probe the local agent's /livez or /readyz (exit 0 when healthy)
//	tortie-node version             print the version
//	tortie-node cleanup             remove everything the dataplane programmed on this host
//	tortie-node install-cni         install the CNI plugin and its config (see installcni.go)
//
// The startup logic lives in common/startup/node
// (docs/node-startup.md), the agent in platform/agent (docs/agent.md). This package is
// platform-neutral: the same files build the Linux and the Windows binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
