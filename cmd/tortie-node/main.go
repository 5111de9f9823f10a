// Command tortie-node is tortie's per-node agent. Today it has three subcommands:
//
//	tortie-node startup             one-shot node startup (node name, addresses, Node registration,
//	                                default pools, cluster defaults, tunnel addresses, MTU and node name
//	                                files), then exit
//	tortie-node monitor-addresses   re-detect the node's addresses every AUTODETECT_POLL_INTERVAL and
//	                                update the Node, until SIGINT / SIGTERM
//	tortie-node version             print the version
//
// The agent's other long-running parts (run, health, install-cni, cleanup) come later. The startup logic lives
// in common/startup/node; docs/node-startup.md lists its environment variables. This package is
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
