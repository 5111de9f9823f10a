//go:build !linux && !windows

package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/tortie-net/tortie/common/cni"
)

// platformSupported fails every command: tortie plumbs pods on Linux and Windows only.
func platformSupported() error {
	return cni.Errorf(cni.CodePluginNotAvailable, "the tortie CNI plugin is not supported on %s (Linux and Windows only)", runtime.GOOS)
}

func platformSetup(*skel.CmdArgs, *cni.Plugin, bool) error { return platformSupported() }
