package service

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakePrereq is a node as the checks see it.
type fakePrereq struct {
	build    uint32
	services map[string]ServiceInfo
	udpInUse bool
	elevated bool
	err      error // returned by every method when set
}

func (f fakePrereq) WindowsBuild() (uint32, error) { return f.build, f.err }
func (f fakePrereq) Service(n string) (ServiceInfo, error) {
	return f.services[n], f.err
}
func (f fakePrereq) UDPPortInUse(int) (bool, error) { return f.udpInUse, f.err }
func (f fakePrereq) Elevated() (bool, error)        { return f.elevated, f.err }

func TestCheckPrerequisites(t *testing.T) {
	ready := fakePrereq{build: 20348, elevated: true, services: map[string]ServiceInfo{
		"hns": {Installed: true, Running: true}, "containerd": {Installed: true, Running: true}}}
	tests := []struct {
		name       string
		host       fakePrereq
		wantFailed []string
		wantDetail string
	}{
		{name: "ready node", host: ready},
		{name: "Windows Server 2016", host: func() fakePrereq { h := ready; h.build = 14393; return h }(), wantFailed: []string{"WindowsBuild"}, wantDetail: "build 14393 (need 17763"},
		{name: "no Containers feature", host: func() fakePrereq {
			h := ready
			h.services = map[string]ServiceInfo{"containerd": {Installed: true}}
			return h
		}(), wantFailed: []string{"HNS"}, wantDetail: "Install-WindowsFeature Containers"},
		{name: "HNS stopped, containerd missing", host: func() fakePrereq {
			h := ready
			h.services = map[string]ServiceInfo{"hns": {Installed: true}}
			return h
		}(), wantFailed: []string{"HNS", "containerd"}, wantDetail: "Start-Service hns"},
		{name: "VXLAN port taken", host: func() fakePrereq { h := ready; h.udpInUse = true; return h }(), wantFailed: []string{"VXLANPort"}, wantDetail: "UDP 4789 is held by another program"},
		{name: "not elevated", host: func() fakePrereq { h := ready; h.elevated = false; return h }(), wantFailed: []string{"Elevated"}, wantDetail: "run as Administrator"},
		{name: "OS errors fail every check", host: fakePrereq{err: errors.New("access denied")}, wantFailed: []string{"WindowsBuild", "HNS", "containerd", "VXLANPort", "Elevated"}, wantDetail: "access denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := CheckPrerequisites(tt.host)
			if len(checks) != 5 {
				t.Fatalf("%d checks, want 5: %v", len(checks), checks)
			}
			if diff := cmp.Diff(tt.wantFailed, Failed(checks)); diff != "" {
				t.Errorf("failed checks (-want +got):\n%s", diff)
			}
			if out := FormatChecks(checks); !strings.Contains(out, tt.wantDetail) || (len(tt.wantFailed) > 0) != strings.Contains(out, "FAIL") {
				t.Errorf("report lacks %q:\n%s", tt.wantDetail, out)
			}
		})
	}
}
