//go:build windows

package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/tortie-net/tortie/common/cni"
	wcni "github.com/tortie-net/tortie/windows/cni"
	"github.com/tortie-net/tortie/windows/hcn"
)

func platformSupported() error { return nil }

// platformSetup gives the plugin a file-lock IPAM lock and, for the main plugin, HNS endpoints in the
// overlay network (windows/cni) on the real HNS.
func platformSetup(a *skel.CmdArgs, p *cni.Plugin, ipamMode bool) error {
	p.Lock = fileLock{path: p.Conf.IPAMLockFile}
	return wcni.Configure(p, hcn.New(), hcn.NewContainerAPI(), a.ContainerID, ipamMode)
}
