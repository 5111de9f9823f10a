//go:build linux && tortie_fakehns

package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/tortie-net/tortie/common/cni"
	lcni "github.com/tortie-net/tortie/linux/cni"
	wcni "github.com/tortie-net/tortie/windows/cni"
	"github.com/tortie-net/tortie/windows/hcnfake"
)

// FakeHNSEnv names the state file of the fake HNS a tortie_fakehns build runs against.
const FakeHNSEnv = "TORTIE_FAKE_HNS"

func platformSupported() error { return nil }

// platformSetup (tests only) runs the Windows plumbing against the file-backed fake HNS in
// $TORTIE_FAKE_HNS, which the test, the agent and every plugin invocation share.
func platformSetup(a *skel.CmdArgs, p *cni.Plugin, ipamMode bool) error {
	p.Lock = lcni.IPAMLock{Path: p.Conf.IPAMLockFile}
	path := os.Getenv(FakeHNSEnv)
	if path == "" {
		return cni.Errorf(cni.CodeInvalidEnvironment, "this is a test build of the plugin (tag tortie_fakehns): set %s to the fake HNS state file", FakeHNSEnv)
	}
	h, err := hcnfake.Open(path, hcnfake.Options{})
	if err != nil {
		return cni.Errorf(cni.CodeIOFailure, "opening the fake HNS: %v", err)
	}
	return wcni.Configure(p, h, h, a.ContainerID, ipamMode)
}
