package cni

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// hookedPodNetwork adds the optional seams Windows implements: a repeated ADD reuses the interface,
// GC and STATUS are forwarded.
type hookedPodNetwork struct {
	*fakePodNetwork
	gcValid   []types.GCAttachment
	gcCalls   int
	statusErr error
}

func (d *hookedPodNetwork) Existing(_ context.Context, r InterfaceRequest) (*InterfaceResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	have, ok := d.ifs[r.HostIfName]
	if !ok {
		return nil, nil
	}
	return &InterfaceResult{HostIfName: r.HostIfName, SandboxPath: have.NetNS, Addresses: have.Addresses}, nil
}

func (d *hookedPodNetwork) GC(_ context.Context, valid []types.GCAttachment) error {
	d.gcCalls++
	d.gcValid = valid
	return nil
}

func (d *hookedPodNetwork) Status(context.Context) error { return d.statusErr }

// TestWindowsIPAMReservation: with HostReserved, the block the node claims keeps its first three and last
// addresses, and the pod gets the next one.
func TestWindowsIPAMReservation(t *testing.T) {
	e := newEnv(t)
	p := e.plugin("")
	p.HostReserved, p.MaxBlocksPerHost = ipam.WindowsHostReserved(), 1
	res, err := p.Add(t.Context(), cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	got := netip.MustParseAddr(res.IPs[0].Address.IP.String())
	// The reserved addresses have no IPAMHandle object: read them from the block.
	objs, _, err := e.be.List(t.Context(), datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil || len(objs) != 1 {
		t.Fatalf("blocks: %v %v", objs, err)
	}
	b := objs[0].(*api.IPAMBlock)
	var reserved []netip.Addr
	a := netip.MustParsePrefix(b.Spec.CIDR).Addr()
	for _, idx := range b.Spec.Allocations {
		if idx != nil && b.Spec.Attributes[*idx].HandleID != nil && *b.Spec.Attributes[*idx].HandleID == ipam.WindowsReservedHandle {
			reserved = append(reserved, a)
		}
		a = a.Next()
	}
	if len(reserved) != 4 {
		t.Fatalf("reserved addresses %v, want 4", reserved)
	}
	slices.SortFunc(reserved, netip.Addr.Compare)
	if got != reserved[2].Next() {
		t.Errorf("pod address %s, want %s (after the reserved %v)", got, reserved[2].Next(), reserved)
	}
}

// TestRepeatedAdd: a PodNetwork that knows the sandbox answers a repeated ADD with the same addresses and
// nothing allocated again — unless IPAM no longer holds them for the container.
func TestRepeatedAdd(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	hp := &hookedPodNetwork{fakePodNetwork: e.dp}
	p := e.plugin("")
	p.PodNetwork = hp
	first, err := p.Add(ctx, cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Add(ctx, cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	if first.IPs[0].Address.String() != again.IPs[0].Address.String() || len(e.handleIPs("net1.c1")) != 1 {
		t.Errorf("repeated ADD: %v then %v, handle holds %v", first.IPs[0].Address, again.IPs[0].Address, e.handleIPs("net1.c1"))
	}
	if err := e.ipam.ReleaseByHandle(ctx, "net1.c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Add(ctx, cmdArgs("c1", "web", "")); err != nil {
		t.Fatal(err)
	}
	if len(e.handleIPs("net1.c1")) != 1 {
		t.Errorf("an ADD after the addresses were released did not allocate again: %v", e.handleIPs("net1.c1"))
	}
}

func TestGCAndStatusHooks(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	hp := &hookedPodNetwork{fakePodNetwork: e.dp}
	p := e.plugin(`{"cniVersion":"1.1.0","name":"net1","type":"tortie","nodename":"node-1","nodename_file_optional":true,
		"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}`)
	p.PodNetwork = hp
	if err := p.GC(ctx, &CmdArgs{}); err != nil {
		t.Fatal(err)
	}
	if hp.gcCalls != 1 || len(hp.gcValid) != 1 || hp.gcValid[0].ContainerID != "c1" {
		t.Errorf("PodNetwork GC: %d calls with %v", hp.gcCalls, hp.gcValid)
	}
	if err := p.Status(ctx, &CmdArgs{}); err != nil {
		t.Errorf("Status: %v", err)
	}
	hp.statusErr = errors.New("the HNS network tortie-vxlan does not exist yet")
	if err := p.Status(ctx, &CmdArgs{}); code(err) != CodePluginNotAvailable {
		t.Errorf("Status with the PodNetwork not ready: %v, want code 50", err)
	}
}
