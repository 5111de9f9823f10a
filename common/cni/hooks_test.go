package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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

// joinPodNetwork lets containers join another container's interface (CNI_NETNS "container:<id>"), as
// Windows's Docker flow does.
type joinPodNetwork struct {
	*fakePodNetwork
	attached map[string]string // joining netns → the host interface it is attached to
}

func (d *joinPodNetwork) Joins(netns string) (string, string) {
	id, ok := strings.CutPrefix(netns, "container:")
	if !ok {
		return "", ""
	}
	return id, "calinsweb"
}

func (d *joinPodNetwork) Setup(ctx context.Context, r InterfaceRequest) (*InterfaceResult, error) {
	if owner, _ := d.Joins(r.NetNS); owner == "" {
		return d.fakePodNetwork.Setup(ctx, r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	have, ok := d.ifs[r.HostIfName]
	if !ok {
		return nil, Errorf(CodeUnknownContainer, "no interface %s", r.HostIfName)
	}
	if !slices.Equal(have.Addresses, r.Addresses) {
		return nil, fmt.Errorf("interface %s has %v, asked for %v", r.HostIfName, have.Addresses, r.Addresses)
	}
	d.attached[r.NetNS] = r.HostIfName
	return &InterfaceResult{HostIfName: r.HostIfName, SandboxPath: r.NetNS, Addresses: have.Addresses}, nil
}

func (d *joinPodNetwork) Teardown(ctx context.Context, netns, cont, host string) error {
	if owner, _ := d.Joins(netns); owner == "" {
		return d.fakePodNetwork.Teardown(ctx, netns, cont, host)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.attached[netns] == host {
		delete(d.attached, netns)
	}
	return nil
}

// TestJoin: a container that joins another's network gets that container's addresses (read from its
// IPAM handle), allocates nothing and writes no WorkloadEndpoint; CHECK looks at the owner's handle;
// its DEL only detaches; joining a container without addresses is code 3 and attaches nothing.
func TestJoin(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	jp := &joinPodNetwork{fakePodNetwork: e.dp, attached: map[string]string{}}
	plugin := func(conf string) *Plugin {
		p := e.plugin(conf)
		p.PodNetwork = jp
		return p
	}
	infra, err := plugin("").Add(ctx, cmdArgs("c1", "web", ""))
	if err != nil {
		t.Fatal(err)
	}
	wepBefore := e.wep("node--1-k8s-web-eth0")
	app := cmdArgs("c2", "web", "")
	app.Netns = "container:c1"
	res, err := plugin("").Add(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if res.IPs[0].Address.String() != infra.IPs[0].Address.String() || res.Interfaces[0].Name != "calinsweb" || res.Interfaces[1].Sandbox != "container:c1" {
		t.Errorf("joined result %s, want the infra container's address and interface", mustJSON(t, res))
	}
	if jp.attached["container:c1"] != "calinsweb" || e.handleIPs("net1.c2") != nil || len(e.handleIPs("net1.c1")) != 1 {
		t.Errorf("after the join: attached %v, handles c1 %v c2 %v", jp.attached, e.handleIPs("net1.c1"), e.handleIPs("net1.c2"))
	}
	if w := e.wep("node--1-k8s-web-eth0"); w == nil || w.ResourceVersion != wepBefore.ResourceVersion {
		t.Errorf("the join wrote the WorkloadEndpoint: %+v", w)
	}
	check := func() error {
		conf := strings.TrimSuffix(e.conf, "}") + `,"prevResult":` + mustJSON(t, res) + "}"
		return plugin(conf).Check(ctx, app)
	}
	if err := check(); err != nil {
		t.Errorf("CHECK of the joined container: %v", err)
	}
	if err := plugin("").Del(ctx, app); err != nil {
		t.Fatal(err)
	}
	if len(jp.attached) != 0 || e.dp.ifs["calinsweb"].NetNS != "/var/run/netns/c1" || len(e.handleIPs("net1.c1")) != 1 || e.wep("node--1-k8s-web-eth0") == nil {
		t.Errorf("after the joined container's DEL: attached %v, interfaces %v, handle %v", jp.attached, e.dp.ifs, e.handleIPs("net1.c1"))
	}
	if err := plugin("").Del(ctx, cmdArgs("c1", "web", "")); err != nil {
		t.Fatal(err)
	}
	if err := check(); code(err) != CodeCheckFailed || !strings.Contains(err.Error(), `"net1.c1"`) {
		t.Errorf("CHECK of the joined container after the pod's DEL: %v, want the owner's handle named", err)
	}
	if _, err := plugin("").Add(ctx, app); code(err) != CodeUnknownContainer || !strings.Contains(err.Error(), "nothing was attached") {
		t.Errorf("joining a container without addresses: %v, want code 3", err)
	}
	if len(jp.attached) != 0 || e.handleIPs("net1.c2") != nil {
		t.Errorf("after the refused join: attached %v, handle %v", jp.attached, e.handleIPs("net1.c2"))
	}
}
