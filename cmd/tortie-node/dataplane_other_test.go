//go:build !linux

package main

// linuxDataplaneBadBackend is what `run --dataplane linux` says off Linux.
const linuxDataplaneBadBackend = "runs only on Linux nodes"
