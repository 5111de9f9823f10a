package mtu

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/startup/autodetect"
)

func TestDefaultIfacePattern(t *testing.T) {
	re := regexp.MustCompile(DefaultIfacePattern)
	for _, n := range []string{"eth0", "eth1.100", "ens5", "enp0s3", "eno1", "enx00e04c680001", "enP1p0s0", "enc600", "ensv0",
		"wlp2s0", "wlan0", "wwan0", "wwp0s20", "slp0", "ibp0s8", "ibs1"} {
		if !re.MatchString(n) {
			t.Errorf("%q should match", n)
		}
	}
	for _, n := range []string{"lo", "docker0", "cali123", "vxlan.calico", "vxlan.tortie", "tunl0", "bond0", "br0", "ib0", "en0", "veth1", "virbr0"} {
		if re.MatchString(n) {
			t.Errorf("%q should not match", n)
		}
	}
}

func TestHostMTU(t *testing.T) {
	up := func(name string, mtu int) autodetect.Interface {
		return autodetect.Interface{Name: name, Up: true, MTU: mtu}
	}
	down := func(name string, mtu int) autodetect.Interface { return autodetect.Interface{Name: name, MTU: mtu} }
	tests := []struct {
		name    string
		ifaces  []autodetect.Interface
		pattern string
		want    int
		found   bool
	}{
		{"smallest matching", []autodetect.Interface{up("lo", 65536), up("eth0", 9001), up("ens5", 1450), up("eth1", 1500)}, "", 1450, true},
		{"non-matching ignored", []autodetect.Interface{up("eth0", 1500), up("docker0", 1400), up("cali1", 1200), up("tunl0", 1480)}, "", 1500, true},
		{"down ignored", []autodetect.Interface{up("eth0", 1500), down("eth9", 1200)}, "", 1500, true},
		{"zero MTU ignored", []autodetect.Interface{up("eth0", 1500), up("eth1", 0)}, "", 1500, true},
		{"nothing matches: fallback", []autodetect.Interface{up("bond0", 9000), up("lo", 65536)}, "", FallbackHostMTU, false},
		{"all down: fallback", []autodetect.Interface{down("eth0", 1500)}, "", FallbackHostMTU, false},
		{"empty: fallback", nil, "", FallbackHostMTU, false},
		{"custom pattern", []autodetect.Interface{up("bond0", 9000), up("eth0", 1500)}, "^bond", 9000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var re *regexp.Regexp
			if tt.pattern != "" {
				re = regexp.MustCompile(tt.pattern)
			}
			got, found := HostMTU(tt.ifaces, re)
			if got != tt.want || found != tt.found {
				t.Errorf("HostMTU = %d, %v; want %d, %v", got, found, tt.want, tt.found)
			}
		})
	}
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name  string
		host  int
		encap Encap
		want  Result
		warn  bool
	}{
		{"no encapsulation: host MTU", 1500, Encap{},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1500}, false},
		{"IPIP", 1500, Encap{IPIP: true},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1480}, false},
		{"VXLAN", 1500, Encap{VXLAN: true},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1450}, false},
		{"VXLAN v6", 1500, Encap{VXLANV6: true},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1430}, false},
		{"WireGuard", 1500, Encap{WireGuard: true},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1440}, false},
		{"WireGuard v6", 1500, Encap{WireGuardV6: true},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1420}, false},
		{"largest overhead wins: VXLAN + WireGuard", 9001, Encap{VXLAN: true, WireGuard: true},
			Result{Host: 9001, HostDetected: true, IPIP: 8981, VXLAN: 8951, VXLANV6: 8931, WireGuard: 8941, WireGuardV6: 8921, Pod: 8941}, false},
		{"dual-stack VXLAN", 1450, Encap{VXLAN: true, VXLANV6: true},
			Result{Host: 1450, HostDetected: true, IPIP: 1430, VXLAN: 1400, VXLANV6: 1380, WireGuard: 1390, WireGuardV6: 1370, Pod: 1380}, false},
		{"configured VXLAN MTU wins", 1500, Encap{VXLAN: true, VXLANMTU: 1300},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1300, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1300}, false},
		{"configured MTU of a disabled encap is reported but unused", 1500, Encap{IPIP: true, WireGuardMTU: 1000},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1000, WireGuardV6: 1420, Pod: 1480}, false},
		{"configured larger than the others' derived", 1500, Encap{IPIP: true, IPIPMTU: 1490, VXLAN: true},
			Result{Host: 1500, HostDetected: true, IPIP: 1490, VXLAN: 1450, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 1450}, false},
		{"configured above host MTU warns", 1500, Encap{VXLAN: true, VXLANMTU: 8950},
			Result{Host: 1500, HostDetected: true, IPIP: 1480, VXLAN: 8950, VXLANV6: 1430, WireGuard: 1440, WireGuardV6: 1420, Pod: 8950}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.host, tt.encap)
			if (got.Warning != "") != tt.warn {
				t.Errorf("warning = %q, want warning: %v", got.Warning, tt.warn)
			}
			got.Warning = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compute(%d, %+v) (-want +got):\n%s", tt.host, tt.encap, diff)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	host := []autodetect.Interface{
		{Name: "lo", Up: true, MTU: 65536},
		{Name: "eth0", Up: true, MTU: 1500},
		{Name: "ens5", Up: true, MTU: 9001},
		{Name: "docker0", Up: true, MTU: 1400},
		{Name: "eth1", Up: false, MTU: 1280},
	}
	for _, tt := range []struct {
		name  string
		encap Encap
		want  int
	}{
		{"plain", Encap{}, 1500},
		{"ipip", Encap{IPIP: true}, 1480},
		{"vxlan", Encap{VXLAN: true}, 1450},
		{"vxlan+ipip", Encap{VXLAN: true, IPIP: true}, 1450},
		{"wireguard v4+v6", Encap{WireGuard: true, WireGuardV6: true}, 1420},
		{"configured wins", Encap{VXLAN: true, VXLANMTU: 1410}, 1410},
	} {
		if got := Detect(host, nil, tt.encap); got != tt.want {
			t.Errorf("%s: Detect = %d, want %d", tt.name, got, tt.want)
		}
	}
	r := Calculate([]autodetect.Interface{{Name: "bond0", Up: true, MTU: 9000}}, nil, Encap{VXLAN: true})
	if r.Pod != FallbackHostMTU-OverheadVXLAN || r.HostDetected || !strings.Contains(r.Warning, "mtuIfacePattern") {
		t.Errorf("fallback: %+v", r)
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	got, pat, err := FromEnv(env(map[string]string{
		"FELIX_IPINIPMTU": "1400", "FELIX_VXLANMTU": " 1350 ", "TORTIE_VXLANMTU": "1300",
		"FELIX_VXLANMTUV6": "0", "FELIX_WIREGUARDMTU": "1200", "FELIX_WIREGUARDMTUV6": "1100",
		"FELIX_MTUIFACEPATTERN": "^bond",
	}), Encap{VXLAN: true, VXLANMTUV6: 1234})
	if err != nil {
		t.Fatal(err)
	}
	want := Encap{VXLAN: true, IPIPMTU: 1400, VXLANMTU: 1300, VXLANMTUV6: 0, WireGuardMTU: 1200, WireGuardMTUV6: 1100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromEnv (-want +got):\n%s", diff)
	}
	if pat == nil || pat.String() != "^bond" {
		t.Errorf("pattern = %v", pat)
	}

	got, pat, err = FromEnv(env(nil), Encap{IPIPMTU: 7})
	if err != nil || pat != nil || got != (Encap{IPIPMTU: 7}) {
		t.Errorf("empty env: %+v %v %v", got, pat, err)
	}

	for _, tt := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"FELIX_VXLANMTU": "big"}, []string{`FELIX_VXLANMTU="big"`, "0 (derive from the host)"}},
		{map[string]string{"TORTIE_WIREGUARDMTU": "-1"}, []string{"TORTIE_WIREGUARDMTU"}},
		{map[string]string{"FELIX_IPINIPMTU": "70000"}, []string{"FELIX_IPINIPMTU"}},
		{map[string]string{"FELIX_MTUIFACEPATTERN": "(eth"}, []string{"FELIX_MTUIFACEPATTERN", "regular expression"}},
	} {
		_, _, err := FromEnv(env(tt.env), Encap{})
		if err == nil {
			t.Errorf("FromEnv(%v) succeeded", tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
}
