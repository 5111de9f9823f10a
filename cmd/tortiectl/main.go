// Command tortiectl manages tortie's Calico-compatible resources. Installed or linked as kubectl-tortie it
// is a kubectl plugin ("kubectl tortie get ippools"). Everything lives in common/cli.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/tortie-net/tortie/common/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Main(ctx, os.Args, cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
