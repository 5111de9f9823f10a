//go:build linux

package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	cnicore "github.com/tortie-net/tortie/common/cni"
	"github.com/tortie-net/tortie/linux/netlinkx"
)

// fakeMachine is machine over netlinkx.World: the host is namespace "", a pod namespace exists once
// created with addPod. Sysctls are recorded per namespace. It lets PodNetwork's logic run without root.
type fakeMachine struct {
	w       *netlinkx.World
	pods    map[string]bool
	sysctls map[string]map[string]string
}

func newFakeMachine() *fakeMachine {
	return &fakeMachine{w: netlinkx.NewWorld(), pods: map[string]bool{}, sysctls: map[string]map[string]string{}}
}

func (m *fakeMachine) addPod(path string) { m.pods[path] = true; m.w.Handle(path) }

func (m *fakeMachine) deletePod(path string) { delete(m.pods, path); m.w.DeleteNS(path) }

func (m *fakeMachine) openHost(context.Context) (netlinkx.Handle, error) { return m.w.Handle(""), nil }

func (m *fakeMachine) openPod(_ context.Context, path string) (podNS, error) {
	if !m.pods[path] {
		return nil, fmt.Errorf("opening %s: %w", containerWhere(path), ns.NSPathNotExistErr{})
	}
	return fakePod{m: m, path: path}, nil
}

func (m *fakeMachine) write(nsName string, list []sysctl) error {
	if m.sysctls[nsName] == nil {
		m.sysctls[nsName] = map[string]string{}
	}
	for _, s := range list {
		m.sysctls[nsName][s.path] = s.value
	}
	return nil
}

func (m *fakeMachine) writeHostSysctls(list []sysctl) error { return m.write("", list) }

func (m *fakeMachine) checkHostSysctls(list []sysctl) []error {
	var errs []error
	for _, s := range list {
		if got := m.sysctls[""][s.path]; got != s.value {
			errs = append(errs, fmt.Errorf("%s is %q in %s, want %s", s.path, got, hostWhere, s.value))
		}
	}
	return errs
}

type fakePod struct {
	m    *fakeMachine
	path string
}

func (p fakePod) handle() netlinkx.Handle          { return p.m.w.Handle(p.path) }
func (p fakePod) writeSysctls(list []sysctl) error { return p.m.write(p.path, list) }
func (p fakePod) Close() error                     { return nil }

// dump renders a namespace of the fake as sorted lines, by names.
func dump(t *testing.T, h netlinkx.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	var out []string
	for _, l := range links {
		names[l.Index] = l.Name
		if l.Name != "lo" {
			out = append(out, fmt.Sprintf("link %s %s mtu %d up %t mac %s", l.Name, l.Kind, l.MTU, l.Up, l.HardwareAddr))
		}
	}
	addrs, _ := h.AddrList(0)
	for _, a := range addrs {
		out = append(out, fmt.Sprintf("addr %s dev %s nodad %t", a.Prefix, names[a.LinkIndex], a.NoDAD))
	}
	routes, _ := h.RouteList(netlinkx.TableMain)
	for _, r := range routes {
		out = append(out, "route "+describeRoute(r, names[r.LinkIndex]))
	}
	slices.Sort(out)
	return out
}

// TestPodNetworkOnFake runs Setup, Check and Teardown against the fake kernel: no root needed, and the
// same expectations as the namespace tests.
func TestPodNetworkOnFake(t *testing.T) {
	m := newFakeMachine()
	m.addPod("/run/netns/pod")
	p := &PodNetwork{machine: m}
	hostIf := p.HostIfName("default", "web")
	req := cnicore.InterfaceRequest{NetNS: "/run/netns/pod", ContainerIfName: "eth0", HostIfName: hostIf, MTU: 1450,
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.65.0.7/26"), netip.MustParsePrefix("fd00:65::7/122")}}

	res, err := p.Setup(t.Context(), req)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if res.HostIfName != hostIf || res.GatewayV4.String() != GatewayV4 || len(res.Addresses) != 2 {
		t.Errorf("result = %+v", res)
	}
	wantHost := []string{
		"link " + hostIf + " veth mtu 1450 up true mac ee:ee:ee:ee:ee:ee",
		"route 10.65.0.7/32 dev " + hostIf + " scope link proto 116",
		"route fd00:65::7/128 dev " + hostIf + " proto 116",
	}
	if diff := cmp.Diff(wantHost, dump(t, m.w.Handle(""))); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
	pod := dump(t, m.w.Handle(req.NetNS))
	for _, want := range []string{
		"addr 10.65.0.7/32 dev eth0 nodad false", "addr fd00:65::7/128 dev eth0 nodad true",
		"route 169.254.1.1/32 dev eth0 scope link proto 3", "route default via 169.254.1.1 dev eth0 proto 3",
		"route default via fe80::ecee:eeff:feee:eeee dev eth0 proto 3",
	} {
		if !slices.Contains(pod, want) {
			t.Errorf("pod lacks %q; has:\n%s", want, strings.Join(pod, "\n"))
		}
	}
	if got := m.sysctls[""]["net/ipv4/conf/"+hostIf+"/proxy_arp"]; got != "1" {
		t.Errorf("host proxy_arp = %q, want 1", got)
	}
	if err := p.Check(t.Context(), req); err != nil {
		t.Errorf("Check after Setup: %v", err)
	}

	// Drift is reported: the host route goes missing.
	h := m.w.Handle("")
	if err := h.RouteDel(netlinkx.Route{Dst: netip.MustParsePrefix("10.65.0.7/32")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(t.Context(), req); err == nil || !strings.Contains(err.Error(), "route 10.65.0.7/32 dev "+hostIf+" scope link proto 116 is missing") {
		t.Errorf("Check after deleting the host route = %v", err)
	}

	// Teardown removes both ends; a second Teardown and one after the namespace went succeed.
	for i := range 2 {
		if err := p.Teardown(t.Context(), req.NetNS, "eth0", hostIf); err != nil {
			t.Fatalf("Teardown %d: %v", i, err)
		}
	}
	if got := dump(t, h); len(got) != 0 {
		t.Errorf("host after Teardown: %q", got)
	}
	m.deletePod(req.NetNS)
	if err := p.Teardown(t.Context(), req.NetNS, "eth0", hostIf); err != nil {
		t.Errorf("Teardown with the namespace gone: %v", err)
	}
}

// TestSetupRollbackOnFake fails each step of Setup in turn on the fake kernel: nothing may remain, and a
// retry succeeds.
func TestSetupRollbackOnFake(t *testing.T) {
	for _, st := range (&setup{}).steps() {
		t.Run(st.name, func(t *testing.T) {
			m := newFakeMachine()
			m.addPod("/run/netns/pod")
			injected := errors.New("injected")
			p := &PodNetwork{machine: m, inject: func(s string) error {
				if s == st.name {
					return injected
				}
				return nil
			}}
			req := cnicore.InterfaceRequest{NetNS: "/run/netns/pod", ContainerIfName: "eth0", HostIfName: "calirollback001",
				Addresses: []netip.Prefix{netip.MustParsePrefix("10.65.3.1/32"), netip.MustParsePrefix("fd00:65::3:1/128")}}
			if _, err := p.Setup(t.Context(), req); !errors.Is(err, injected) {
				t.Fatalf("Setup = %v, want the injected failure", err)
			}
			if got := dump(t, m.w.Handle("")); len(got) != 0 {
				t.Errorf("host after rollback: %q", got)
			}
			if got := dump(t, m.w.Handle(req.NetNS)); len(got) != 0 {
				t.Errorf("pod after rollback: %q", got)
			}
			p.inject = nil
			if _, err := p.Setup(t.Context(), req); err != nil {
				t.Fatalf("retried Setup: %v", err)
			}
		})
	}
}
