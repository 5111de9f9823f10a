//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tortie-net/tortie/common/cni"
	lcni "github.com/tortie-net/tortie/linux/cni"
)

func platformSupported() error { return nil }

// The pod's gateways as linux/cni builds them, for the CNI result.
var (
	gatewayV4 = netip.MustParseAddr(lcni.GatewayV4)
	gatewayV6 = netip.MustParseAddr(lcni.GatewayV6)
)

// vethDataplane is cni.Dataplane over linux/cni.
type vethDataplane struct{}

func newDataplane() cni.Dataplane { return vethDataplane{} }

func (vethDataplane) HostIfName(namespace, pod string) string {
	return lcni.HostVethName(lcni.DefaultHostVethPrefix, namespace, pod)
}

func (vethDataplane) Setup(ctx context.Context, r cni.InterfaceRequest) (*cni.InterfaceResult, error) {
	res, err := lcni.Setup(ctx, request(r))
	if err != nil {
		return nil, err
	}
	return &cni.InterfaceResult{
		HostIfName: res.HostIfName, HostMAC: res.HostMAC, ContainerMAC: res.ContainerMAC,
		SandboxPath: res.SandboxPath, Addresses: res.Addresses,
		GatewayV4: gatewayV4, GatewayV6: gatewayV6,
	}, nil
}

func (vethDataplane) Teardown(ctx context.Context, netns, containerIfName, hostIfName string) error {
	return lcni.Teardown(ctx, netns, containerIfName, hostIfName)
}

func (vethDataplane) Check(ctx context.Context, r cni.InterfaceRequest) error {
	return lcni.Check(ctx, request(r))
}

func request(r cni.InterfaceRequest) lcni.Request {
	return lcni.Request{NetNS: r.NetNS, ContainerIfName: r.ContainerIfName, HostIfName: r.HostIfName,
		MTU: r.MTU, Addresses: r.Addresses, ContainerMAC: r.ContainerMAC}
}

// flockLocker is Calico's host-wide IPAM lock: flock(2) on a file, so that a crashed holder releases
// it with its process. The file is created (with its directory) on first use.
type flockLocker struct{ path string }

func newLocker(path string) cni.Locker { return flockLocker{path: path} }

func (l flockLocker) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", l.path, err)
	}
	fd := int(f.Fd())
	delay := 500 * time.Microsecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(fd, unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", l.path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("lock %s still held by another process: %w", l.path, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}
