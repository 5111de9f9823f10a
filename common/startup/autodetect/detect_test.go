package autodetect

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// testHost is a host as the OS would list it (ascending index). Reverse walk order is therefore:
// vxlan.tortie, ens5, cali123, docker0, eth1, eth0, lo.
func testHost() []Interface {
	return []Interface{
		{Name: "lo", Index: 1, Up: true, MTU: 65536, Addrs: pfx("127.0.0.1/8", "::1/128")},
		{Name: "eth0", Index: 2, Up: true, MTU: 1500, Addrs: pfx("fe80::1/64", "10.0.0.5/24", "2001:db8::5/64")},
		{Name: "eth1", Index: 3, Up: false, MTU: 9000, Addrs: pfx("192.168.1.10/24", "2001:db8:1::10/64")},
		{Name: "docker0", Index: 4, Up: true, MTU: 1500, Addrs: pfx("172.17.0.1/16", "fd00:dead::1/64")},
		{Name: "cali123", Index: 5, Up: true, MTU: 1440, Addrs: pfx("169.254.1.1/32", "10.244.0.1/32", "fe80::ecee:eeff:feee:eeee/64")},
		{Name: "ens5", Index: 6, Up: true, MTU: 1450, Addrs: pfx("fe80::5/64", "10.1.0.7/16", "2001:db8:5::7/64")},
		{Name: "vxlan.tortie", Index: 7, Up: true, MTU: 1400, Addrs: pfx("10.244.1.0/32", "fd00:beef::1/128")},
	}
}

func mustMethod(t *testing.T, s string) Method {
	t.Helper()
	m, err := parseMethod("", s, "linux")
	if err != nil {
		t.Fatalf("parseMethod(%q): %v", s, err)
	}
	return m
}

type fakeK8s struct {
	addrs []string
	err   error
}

func (f fakeK8s) InternalIPs(context.Context) ([]string, error) { return f.addrs, f.err }

func TestDetect(t *testing.T) {
	src := StaticInterfaces{
		Interfaces: testHost(),
		Routes: map[string]netip.Addr{
			"192.0.2.1":       netip.MustParseAddr("10.0.0.5"),
			"192.168.1.99":    netip.MustParseAddr("192.168.1.10"),
			"gw.example":      netip.MustParseAddr("10.1.0.7"),
			"2001:db8:99::1":  netip.MustParseAddr("2001:db8:1::10"),
			"203.0.113.9":     netip.MustParseAddr("203.0.113.1"), // not on any interface
			"v6.gw.example":   netip.MustParseAddr("2001:db8::5"),
			"198.51.100.1":    netip.MustParseAddr("10.244.0.1"), // via a cali device: still answered
			"2001:db8:aaaa::": netip.MustParseAddr("2001:db8:5::7"),
		},
	}
	k8s := fakeK8s{addrs: []string{"garbage", "2001:db8:1::10", "10.0.0.5", "192.168.1.10"}}

	tests := []struct {
		name    string
		method  string
		family  int
		k8s     NodeAddressSource
		want    string // prefix
		iface   string
		wantErr string // substring; "" = success
	}{
		// first-found: reverse walk skips vxlan.tortie (excluded), lands on ens5 and skips its link-local.
		{name: "first-found v4", method: "first-found", family: 4, want: "10.1.0.7/16", iface: "ens5"},
		{name: "first-found v6", method: "", family: 6, want: "2001:db8:5::7/64", iface: "ens5"},
		// interface=: OR-ed, unanchored, no default exclusions, still reverse order.
		{name: "interface exact", method: "interface=eth0", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "interface regex walks in reverse", method: "interface=eth.*", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "interface list is OR-ed, order of list irrelevant", method: "interface=eth0,ens5", family: 4, want: "10.1.0.7/16", iface: "ens5"},
		{name: "interface unanchored", method: "interface=th1", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "interface ignores down state", method: "interface=eth1", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "interface has no default exclusions", method: "interface=cali.*", family: 4, want: "10.244.0.1/32", iface: "cali123"},
		{name: "interface skips link-local, then next interface", method: "interface=cali.*,eth0", family: 6, want: "2001:db8::5/64", iface: "eth0"},
		{name: "interface no match", method: "interface=wlan0", family: 4, wantErr: "no host interface qualifies"},
		{name: "interface without v6 global", method: "interface=lo", family: 6, wantErr: "has a global-unicast IPv6 address"},
		// skip-interface: default exclusions plus the user's.
		{name: "skip-interface", method: "skip-interface=ens.*", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "skip-interface list", method: "skip-interface=ens5,eth1", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "skip-interface keeps defaults", method: "skip-interface=ens5,eth", family: 4, wantErr: "no host interface qualifies"},
		// cidr: any interface (no exclusions), first in reverse order whose address is inside.
		{name: "cidr", method: "cidr=10.0.0.0/24", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "cidr has no default exclusions", method: "cidr=10.0.0.0/8", family: 4, want: "10.244.1.0/32", iface: "vxlan.tortie"},
		{name: "cidr list", method: "cidr=192.168.0.0/16,10.1.0.0/16", family: 4, want: "10.1.0.7/16", iface: "ens5"},
		{name: "cidr v6", method: "cidr=2001:db8:1::/48", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "cidr mixed families", method: "cidr=10.0.0.0/24,2001:db8::/64", family: 6, want: "2001:db8::5/64", iface: "eth0"},
		{name: "cidr other family only", method: "cidr=10.0.0.0/8", family: 6, wantErr: "no matching address"},
		{name: "cidr link-local never", method: "cidr=169.254.0.0/16", family: 4, wantErr: "global-unicast"},
		// can-reach: the OS's source address, prefix from the interface.
		{name: "can-reach v4", method: "can-reach=192.0.2.1", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{name: "can-reach v4 on-link", method: "can-reach=192.168.1.99", family: 4, want: "192.168.1.10/24", iface: "eth1"},
		{name: "can-reach hostname", method: "can-reach=gw.example", family: 4, want: "10.1.0.7/16", iface: "ens5"},
		{name: "can-reach v6", method: "can-reach=2001:db8:99::1", family: 6, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "can-reach v6 hostname", method: "can-reach=v6.gw.example", family: 6, want: "2001:db8::5/64", iface: "eth0"},
		{name: "can-reach ignores exclusions", method: "can-reach=198.51.100.1", family: 4, want: "10.244.0.1/32", iface: "cali123"},
		{name: "can-reach source not local", method: "can-reach=203.0.113.9", family: 4, wantErr: "not on any host interface"},
		{name: "can-reach no route", method: "can-reach=198.18.0.1", family: 4, wantErr: "no route"},
		{name: "can-reach wrong family", method: "can-reach=2001:db8:99::1", family: 4, wantErr: "is not an IPv4 address"},
		{name: "can-reach hostname wrong family", method: "can-reach=gw.example", family: 6, wantErr: "no route"},
		// kubernetes-internal-ip.
		{name: "k8s v4", method: "kubernetes-internal-ip", family: 4, k8s: k8s, want: "10.0.0.5/24", iface: "eth0"},
		{name: "k8s v6", method: "kubernetes-internal-ip", family: 6, k8s: k8s, want: "2001:db8:1::10/64", iface: "eth1"},
		{name: "k8s func adapter", method: "kubernetes-internal-ip", family: 4, want: "192.168.1.10/24", iface: "eth1",
			k8s: NodeAddressFunc(func(context.Context) ([]string, error) { return []string{" 192.168.1.10 "}, nil })},
		{name: "k8s no v6", method: "kubernetes-internal-ip", family: 6, k8s: fakeK8s{addrs: []string{"10.0.0.5"}}, wantErr: "no IPv6 InternalIP"},
		{name: "k8s not local", method: "kubernetes-internal-ip", family: 4, k8s: fakeK8s{addrs: []string{"10.9.9.9"}}, wantErr: "10.9.9.9 is not on any host interface"},
		{name: "k8s error", method: "kubernetes-internal-ip", family: 4, k8s: fakeK8s{err: errors.New("apiserver down")}, wantErr: "apiserver down"},
		{name: "k8s missing", method: "kubernetes-internal-ip", family: 4, wantErr: "needs the Kubernetes Node"},
		// bad family.
		{name: "family 5", method: "first-found", family: 5, wantErr: "family 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMethod(t, tt.method)
			got, err := DetectInterface(t.Context(), m, tt.family, src, tt.k8s)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DetectInterface(%s, %d) = %v, %v; want error containing %q", tt.method, tt.family, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DetectInterface(%s, %d): %v", tt.method, tt.family, err)
			}
			want := Detection{Prefix: netip.MustParsePrefix(tt.want), Interface: tt.iface}
			if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
				t.Errorf("DetectInterface(%s, %d) (-want +got):\n%s", tt.method, tt.family, diff)
			}
			p, err := Detect(t.Context(), m, tt.family, src, tt.k8s)
			if err != nil || p != want.Prefix {
				t.Errorf("Detect = %v, %v; want %v", p, err, want.Prefix)
			}
		})
	}
}

// TestDetectOrder proves the reverse walk: the same host listed in the opposite order answers differently.
func TestDetectOrder(t *testing.T) {
	host := []Interface{
		{Name: "eth0", Addrs: pfx("10.0.0.5/24")},
		{Name: "eth1", Addrs: pfx("10.0.1.5/24")},
		{Name: "eth2", Addrs: pfx("10.0.2.5/24")},
	}
	reversed := slices.Clone(host)
	slices.Reverse(reversed)
	for _, tt := range []struct {
		name   string
		ifaces []Interface
		method string
		want   string
	}{
		{"listed order picks last", host, "first-found", "10.0.2.5/24"},
		{"reversed order picks first", reversed, "first-found", "10.0.0.5/24"},
		{"interface= listed", host, "interface=eth[01]", "10.0.1.5/24"},
		{"interface= reversed", reversed, "interface=eth[01]", "10.0.0.5/24"},
		{"cidr listed", host, "cidr=10.0.0.0/16", "10.0.2.5/24"},
		{"cidr reversed", reversed, "cidr=10.0.0.0/16", "10.0.0.5/24"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(t.Context(), mustMethod(t, tt.method), 4, StaticInterfaces{Interfaces: tt.ifaces}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	// Within one interface the first address of the family wins.
	multi := []Interface{{Name: "eth0", Addrs: pfx("10.0.0.6/24", "10.0.0.5/24")}}
	got, err := Detect(t.Context(), mustMethod(t, ""), 4, StaticInterfaces{Interfaces: multi}, nil)
	if err != nil || got.String() != "10.0.0.6/24" {
		t.Errorf("first address on interface: got %v, %v; want 10.0.0.6/24", got, err)
	}
}

func TestDetectZeroMethodIsFirstFound(t *testing.T) {
	got, err := Detect(t.Context(), Method{}, 4, StaticInterfaces{Interfaces: []Interface{
		{Name: "eth0", Addrs: pfx("10.0.0.5/24")},
		{Name: "docker0", Addrs: pfx("172.17.0.1/16")}, // excluded on Linux and on Windows
	}}, nil)
	if err != nil || got.String() != "10.0.0.5/24" {
		t.Errorf("Detect(Method{}) = %v, %v; want 10.0.0.5/24", got, err)
	}
}

type failingSource struct{}

func (failingSource) List() ([]Interface, error) { return nil, errors.New("netlink says no") }

func TestDetectListError(t *testing.T) {
	for _, m := range []string{"first-found", "cidr=10.0.0.0/8", "kubernetes-internal-ip"} {
		_, err := Detect(t.Context(), mustMethod(t, m), 4, failingSource{}, fakeK8s{addrs: []string{"10.0.0.1"}})
		if err == nil || !strings.Contains(err.Error(), "netlink says no") || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want the listing error (not ErrNotFound)", m, err)
		}
	}
}

func TestNotFoundIsWrapped(t *testing.T) {
	_, err := Detect(t.Context(), mustMethod(t, "interface=nothing"), 4, StaticInterfaces{Interfaces: testHost()}, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func TestLookupPrefix(t *testing.T) {
	host := testHost()
	for _, tt := range []struct {
		addr, want, iface string
	}{
		{"10.0.0.5", "10.0.0.5/24", "eth0"},
		{"::ffff:10.0.0.5", "10.0.0.5/24", "eth0"},
		{"2001:db8:1::10", "2001:db8:1::10/64", "eth1"},
		{"10.0.0.6", "", ""},
	} {
		p, name, ok := LookupPrefix(host, netip.MustParseAddr(tt.addr))
		if ok != (tt.want != "") || (ok && (p.String() != tt.want || name != tt.iface)) {
			t.Errorf("LookupPrefix(%s) = %v, %q, %v; want %q on %q", tt.addr, p, name, ok, tt.want, tt.iface)
		}
	}
}

func TestStaticInterfacesListIsACopy(t *testing.T) {
	s := StaticInterfaces{Interfaces: testHost()}
	got, _ := s.List()
	got[1].Addrs[0] = netip.MustParsePrefix("1.2.3.4/32")
	got[0].Name = "changed"
	again, _ := s.List()
	if diff := cmp.Diff(testHost(), again, cmpNetip); diff != "" {
		t.Errorf("List() shares memory with the source (-want +got):\n%s", diff)
	}
}
