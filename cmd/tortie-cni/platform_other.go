//go:build !linux

package main

import (
	"context"
	"runtime"

	"github.com/tortie-net/tortie/common/cni"
)

// platformSupported fails every command: the Windows dataplane (HNS endpoints) is not written yet.
func platformSupported() error {
	return cni.Errorf(cni.CodePluginNotAvailable, "the tortie CNI plugin is not supported on %s yet (Linux only for now)", runtime.GOOS)
}

func newPodNetwork() cni.PodNetwork { return nil }

func newLocker(string) cni.Locker { return unsupportedLocker{} }

type unsupportedLocker struct{}

func (unsupportedLocker) Lock(context.Context) (func(), error) { return nil, platformSupported() }
