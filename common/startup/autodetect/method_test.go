package autodetect

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpNetip = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func TestParseMethod(t *testing.T) {
	linux := DefaultExclusions("linux")
	tests := []struct {
		in   string
		want Method
		str  string
	}{
		{"", Method{Kind: FirstFound, Exclusions: linux}, "first-found"},
		{"first-found", Method{Kind: FirstFound, Exclusions: linux}, "first-found"},
		{"  first-found\n", Method{Kind: FirstFound, Exclusions: linux}, "first-found"},
		{"interface=eth0", Method{Kind: InterfaceMatch, Regexes: []string{"eth0"}}, "interface=eth0"},
		{"interface=eth.* , ens5,bond[0-9]", Method{Kind: InterfaceMatch, Regexes: []string{"eth.*", "ens5", "bond[0-9]"}}, "interface=eth.*,ens5,bond[0-9]"},
		{"skip-interface=eth1", Method{Kind: SkipInterface, Regexes: []string{"eth1"}, Exclusions: linux}, "skip-interface=eth1"},
		{"cidr=10.0.0.0/8, fd00::/8", Method{Kind: CIDR, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}, "cidr=10.0.0.0/8,fd00::/8"},
		{"cidr=10.1.2.3/16", Method{Kind: CIDR, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, "cidr=10.1.0.0/16"},
		{"can-reach=8.8.8.8", Method{Kind: CanReach, Dest: "8.8.8.8"}, "can-reach=8.8.8.8"},
		{"can-reach=www.example.com", Method{Kind: CanReach, Dest: "www.example.com"}, "can-reach=www.example.com"},
		{"can-reach=2001:db8::1", Method{Kind: CanReach, Dest: "2001:db8::1"}, "can-reach=2001:db8::1"},
		{"can-reach=[2001:db8::1]", Method{Kind: CanReach, Dest: "2001:db8::1"}, "can-reach=2001:db8::1"},
		{"kubernetes-internal-ip", Method{Kind: KubernetesInternalIP}, "kubernetes-internal-ip"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMethod("", tt.in, "linux")
			if err != nil {
				t.Fatalf("parseMethod(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("parseMethod(%q) (-want +got):\n%s", tt.in, diff)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			again, err := parseMethod("", got.String(), "linux")
			if err != nil {
				t.Fatalf("re-parsing %q: %v", got.String(), err)
			}
			if diff := cmp.Diff(got, again, cmpNetip); diff != "" {
				t.Errorf("String() does not round-trip (-first +second):\n%s", diff)
			}
		})
	}
}

func TestParseMethodInvalid(t *testing.T) {
	tests := []struct {
		in     string
		reason string
	}{
		{"bogus", `unknown method "bogus"`},
		{"First-Found", `unknown method "First-Found"`},
		{"Interface=eth0", `unknown method "Interface"`},
		{"interface", "needs an argument"},
		{"interface=", "empty argument"},
		{"interface=  ", "empty argument"},
		{"interface=eth0,,eth1", "empty regex"},
		{"interface=eth(", "does not compile"},
		{"skip-interface=[", "does not compile"},
		{"cidr=10.0.0.0/33", "is not a CIDR"},
		{"cidr=10.0.0.1", "is not a CIDR"},
		{"cidr=10.0.0.0/8,bogus", `"bogus" is not a CIDR`},
		{"can-reach=", "empty argument"},
		{"can-reach=a b", "one IP address or host name"},
		{"can-reach=10.0.0.1,10.0.0.2", "one IP address or host name"},
		{"can-reach=10.0.0.0/8", "one IP address or host name"},
		{"first-found=eth0", "takes no argument"},
		{"kubernetes-internal-ip=x", "takes no argument"},
		{"kubernetes-internal-ipv4", "unknown method"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseMethodVar("IP6_AUTODETECTION_METHOD", tt.in)
			if err == nil {
				t.Fatalf("ParseMethodVar(%q) succeeded, want an error", tt.in)
			}
			var me *MethodError
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *MethodError: %v", err, err)
			}
			msg := err.Error()
			for _, want := range []string{"IP6_AUTODETECTION_METHOD", tt.reason, "valid forms are", "can-reach=", "kubernetes-internal-ip"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
	// Without a variable name the message names both.
	_, err := ParseMethod("nope")
	if err == nil || !strings.Contains(err.Error(), "IP_AUTODETECTION_METHOD/IP6_AUTODETECTION_METHOD") {
		t.Errorf("ParseMethod(nope) error = %v, want it to name both variables", err)
	}
}

func TestDefaultExclusions(t *testing.T) {
	tests := []struct {
		goos             string
		excluded, passes []string
	}{
		{
			goos: "linux",
			excluded: []string{"docker0", "cbr0", "dummy0", "podman1", "virbr0", "lxcbr0", "veth1234", "lo", "br-abc",
				"cali1234", "tunl0", "flannel.1", "kube-ipvs0", "cni0", "vxlan.calico", "vxlan-v6.calico",
				"wireguard.cali", "wg-v6.cali", "nodelocaldns", "vxlan.tortie", "vxlan-v6.tortie"},
			passes: []string{"eth0", "ens5", "enp0s3", "bond0", "wlan0", "br0", "vxlan0", "eth0.100", "tortie0"},
		},
		{
			goos:     "windows",
			excluded: []string{"vEthernet (nat)", "Loopback Pseudo-Interface 1", "vEthernet (Calico_ep)", "docker0", "Tailscale"},
			passes:   []string{"Ethernet", "vEthernet (Ethernet)", "Ethernet 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.goos, func(t *testing.T) {
			re, err := orRegexp(DefaultExclusions(tt.goos))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.excluded {
				if !re.MatchString(n) {
					t.Errorf("%q is not excluded", n)
				}
			}
			for _, n := range tt.passes {
				if re.MatchString(n) {
					t.Errorf("%q is excluded", n)
				}
			}
		})
	}
	a := DefaultExclusions("linux")
	a[0] = "changed"
	if DefaultExclusions("linux")[0] == "changed" {
		t.Error("DefaultExclusions returns a shared slice")
	}
}

func FuzzParseMethod(f *testing.F) {
	for _, s := range []string{"", "first-found", "interface=eth0,ens.*", "skip-interface=a", "cidr=10.0.0.0/8,fd00::/8",
		"can-reach=8.8.8.8", "can-reach=[::1]", "kubernetes-internal-ip", "interface=(", "x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMethod("IP_AUTODETECTION_METHOD", s, "linux")
		if err != nil {
			if !strings.Contains(err.Error(), "IP_AUTODETECTION_METHOD") {
				t.Fatalf("error does not name the variable: %v", err)
			}
			return
		}
		again, err := parseMethod("", m.String(), "linux")
		if err != nil {
			t.Fatalf("String() %q of parsed %q does not re-parse: %v", m.String(), s, err)
		}
		if diff := cmp.Diff(m, again, cmpNetip, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", s, diff)
		}
	})
}
