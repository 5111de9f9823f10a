//go:build linux

package main

import (
	"github.com/tortie-net/tortie/common/cni"
	lcni "github.com/tortie-net/tortie/linux/cni"
)

func platformSupported() error { return nil }

func newPodNetwork() cni.PodNetwork { return &lcni.PodNetwork{} }

func newLocker(path string) cni.Locker { return lcni.IPAMLock{Path: path} }
