//go:build linux

// Command tortie-lab runs a multi-node tortie cluster on one Linux machine: nodes and pods are network
// namespaces, each node runs a real tortie-node, pods are networked by the real tortie-cni, and the
// datastore is an embedded etcd. It is the README's demo and the end-to-end test harness; docs/lab.md
// documents the command line, which is a contract (tests and tools script it).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
