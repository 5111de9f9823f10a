//go:build linux && !tortie_fakehns

package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/tortie-net/tortie/common/cni"
	lcni "github.com/tortie-net/tortie/linux/cni"
)

func platformSupported() error { return nil }

// platformSetup gives the plugin Calico's flock IPAM lock and, for the main plugin, veth pairs.
func platformSetup(_ *skel.CmdArgs, p *cni.Plugin, ipamMode bool) error {
	p.Lock = lcni.IPAMLock{Path: p.Conf.IPAMLockFile}
	if !ipamMode {
		p.PodNetwork = &lcni.PodNetwork{}
	}
	return nil
}
