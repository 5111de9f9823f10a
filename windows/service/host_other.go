//go:build !windows

package service

import (
	"fmt"
	"os"
	"runtime"

	kservice "github.com/kardianos/service"
)

// errNotWindows is what the service commands say off Windows (tests use the fake SCM instead).
var errNotWindows = fmt.Errorf("the Windows service commands run on Windows only (this is %s); on Linux tortie-node runs as a DaemonSet", runtime.GOOS)

// Native is the host off Windows: every service operation fails with a clear message.
func Native() Host {
	return Host{
		New: func(kservice.Interface, *kservice.Config) (kservice.Service, error) {
			return nil, errNotWindows
		},
		Configurer:  notWindows{},
		ProgramData: "/ProgramData",
		Interactive: func() bool { return true },
		Exit:        os.Exit,
	}
}

type notWindows struct{}

func (notWindows) Configure(string, Recovery) error { return errNotWindows }
