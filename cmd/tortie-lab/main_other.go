//go:build !linux

// Command tortie-lab runs a tortie cluster in network namespaces; it needs Linux.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "tortie-lab: runs on Linux only (nodes and pods are Linux network namespaces)")
	os.Exit(1)
}
