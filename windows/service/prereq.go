package service

import (
	"fmt"
	"strings"
)

// Prerequisites of a Windows node, checked by `tortie-node service check` (and so by the PowerShell
// module's Test-TortiePrerequisites).
const (
	// MinWindowsBuild is Windows Server 2019: the first build whose HNS has the VXLAN overlay with
	// remote subnet routes tortie uses.
	MinWindowsBuild = 17763
	// VXLANPort is the UDP port HNS's VXLAN overlay uses; another program holding it breaks the overlay.
	VXLANPort = 4789
)

// ServiceInfo is what the checks need to know about a Windows service.
type ServiceInfo struct {
	Installed, Running bool
}

// PrereqHost is what the prerequisite checks ask the OS. Each method is a single read.
type PrereqHost interface {
	WindowsBuild() (uint32, error)
	Service(name string) (ServiceInfo, error)
	// UDPPortInUse reports whether another program holds the UDP port.
	UDPPortInUse(port int) (bool, error)
	Elevated() (bool, error)
}

// Check is one prerequisite's outcome.
type Check struct {
	Name   string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// CheckPrerequisites runs every check; an OS error makes that check fail with the error as its detail.
func CheckPrerequisites(h PrereqHost) []Check {
	var out []Check
	add := func(name string, ok bool, detail string) {
		out = append(out, Check{Name: name, OK: ok, Detail: detail})
	}

	if b, err := h.WindowsBuild(); err != nil {
		add("WindowsBuild", false, err.Error())
	} else {
		add("WindowsBuild", b >= MinWindowsBuild, fmt.Sprintf("build %d (need %d, Windows Server 2019, or later)", b, MinWindowsBuild))
	}

	switch s, err := h.Service("hns"); {
	case err != nil:
		add("HNS", false, err.Error())
	case !s.Installed:
		add("HNS", false, "the Host Network Service is not installed: Install-WindowsFeature Containers, then restart")
	case !s.Running:
		add("HNS", false, "the Host Network Service is installed but not running: Start-Service hns")
	default:
		add("HNS", true, "running")
	}

	switch s, err := h.Service("containerd"); {
	case err != nil:
		add("containerd", false, err.Error())
	case !s.Installed:
		add("containerd", false, "the containerd service is not installed (the kubelet's runtime; see docs/install-windows.md)")
	default:
		state := "stopped"
		if s.Running {
			state = "running"
		}
		add("containerd", true, "installed, "+state)
	}

	if inUse, err := h.UDPPortInUse(VXLANPort); err != nil {
		add("VXLANPort", false, err.Error())
	} else if inUse {
		add("VXLANPort", false, fmt.Sprintf("UDP %d is held by another program (another overlay such as flannel?)", VXLANPort))
	} else {
		add("VXLANPort", true, fmt.Sprintf("UDP %d free", VXLANPort))
	}

	if el, err := h.Elevated(); err != nil {
		add("Elevated", false, err.Error())
	} else if !el {
		add("Elevated", false, "not elevated: run as Administrator")
	} else {
		add("Elevated", true, "yes")
	}
	return out
}

// Failed returns the names of the failed checks.
func Failed(checks []Check) []string {
	var names []string
	for _, c := range checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return names
}

// FormatChecks renders checks as aligned lines for a terminal.
func FormatChecks(checks []Check) string {
	var b strings.Builder
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %-13s %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}
