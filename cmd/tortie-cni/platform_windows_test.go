//go:build windows

package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/common/ipam"
	wcni "github.com/tortie-net/tortie/windows/cni"
)

// TestPlatformSetupRealHNS: the Windows build wires windows/cni to the real HNS with Windows's IPAM
// reservations, and a host without tortie's overlay network (or, under wine, without HNS at all) gets
// code 11 from ADD and a reason from STATUS — an error, never a crash.
func TestPlatformSetupRealHNS(t *testing.T) {
	conf, err := cni.ParseNetConf([]byte(`{"cniVersion":"1.1.0","name":"n","type":"tortie","nodename":"n","vxlan_mac_prefix":"0E-2B"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &cni.Plugin{Conf: conf, Log: slog.New(slog.DiscardHandler)}
	if err := platformSetup(&skel.CmdArgs{ContainerID: "c1"}, p, false); err != nil {
		t.Fatal(err)
	}
	pn, ok := p.PodNetwork.(*wcni.PodNetwork)
	if !ok || pn.ContainerID != "c1" || pn.Conf.MACPrefix != [2]byte{0x0e, 0x2b} {
		t.Fatalf("PodNetwork %#v", p.PodNetwork)
	}
	if *p.HostReserved != *ipam.WindowsHostReserved() || p.MaxBlocksPerHost != 1 {
		t.Errorf("IPAM reservation %+v, max blocks %d", p.HostReserved, p.MaxBlocksPerHost)
	}
	if _, ok := p.Lock.(fileLock); !ok {
		t.Errorf("lock %T", p.Lock)
	}
	if err := pn.Status(t.Context()); err == nil {
		t.Error("Status succeeded without tortie's HNS network")
	}
	_, err = pn.Setup(t.Context(), cni.InterfaceRequest{NetNS: "01234567-89ab-4cde-8f01-23456789abcd",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.7/32")}})
	var te *types.Error
	if !errors.As(err, &te) || te.Code != cni.CodeTryAgainLater {
		t.Errorf("Setup: %v, want code 11", err)
	}
	t.Logf("Setup on this host: %v", err)
}
