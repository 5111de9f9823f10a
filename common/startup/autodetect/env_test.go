package autodetect

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// resolved is NodeIP minus the free-text warning and the parsed method, for comparison.
type resolved struct {
	Prefix    string
	Source    Source
	Var       string
	MethodVar string
	Interface string
	Warn      bool
}

func TestResolveNodeIP(t *testing.T) {
	// ResolveNodeIP parses the method with the running OS's default exclusions. Without the last
	// interface (vxlan.tortie, excluded on Linux only) the test host gives the same first-found answer
	// under the Linux and the Windows lists, so these cases hold on both.
	host := testHost()
	src := StaticInterfaces{Interfaces: host[:len(host)-1]}
	tests := []struct {
		name     string
		family   int
		env      map[string]string
		existing string
		want     resolved
		wantErr  []string // substrings
	}{
		// IPv4.
		{name: "v4 unset, no stored address: autodetect", family: 4,
			want: resolved{Prefix: "10.1.0.7/16", Source: SourceAutodetected, Interface: "ens5"}},
		{name: "v4 unset, stored address: keep", family: 4, existing: "10.0.0.5/24",
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceExisting, Interface: "eth0"}},
		{name: "v4 unset, stored address not on host: keep with warning", family: 4, existing: "10.50.0.1/24",
			want: resolved{Prefix: "10.50.0.1/24", Source: SourceExisting, Warn: true}},
		{name: "v4 autodetect re-detects every start", family: 4, existing: "10.0.0.5/24",
			env:  map[string]string{"IP": "autodetect"},
			want: resolved{Prefix: "10.1.0.7/16", Source: SourceAutodetected, Var: "IP", Interface: "ens5"}},
		{name: "v4 autodetect is case-insensitive", family: 4,
			env:  map[string]string{"IP": "AutoDetect"},
			want: resolved{Prefix: "10.1.0.7/16", Source: SourceAutodetected, Var: "IP", Interface: "ens5"}},
		{name: "v4 autodetect with method", family: 4,
			env:  map[string]string{"IP": "autodetect", "IP_AUTODETECTION_METHOD": "interface=eth0"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceAutodetected, Var: "IP", MethodVar: "IP_AUTODETECTION_METHOD", Interface: "eth0"}},
		{name: "v4 unset uses the method too", family: 4,
			env:  map[string]string{"IP_AUTODETECTION_METHOD": "cidr=192.168.0.0/16"},
			want: resolved{Prefix: "192.168.1.10/24", Source: SourceAutodetected, MethodVar: "IP_AUTODETECTION_METHOD", Interface: "eth1"}},
		{name: "v4 autodetect fails, stored address kept with warning", family: 4, existing: "10.0.0.5/24",
			env:  map[string]string{"IP": "autodetect", "IP_AUTODETECTION_METHOD": "interface=wlan.*"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceExisting, Var: "IP", MethodVar: "IP_AUTODETECTION_METHOD", Interface: "eth0", Warn: true}},
		{name: "v4 autodetect fails, nothing stored: error", family: 4,
			env:     map[string]string{"IP_AUTODETECTION_METHOD": "interface=wlan.*"},
			wantErr: []string{"no IPv4 address", "interface=wlan.*", "IP_AUTODETECTION_METHOD", "IP=10.0.0.5/24"}},
		{name: "v4 invalid method", family: 4,
			env:     map[string]string{"IP": "autodetect", "IP_AUTODETECTION_METHOD": "interfaces=eth0"},
			wantErr: []string{"IP_AUTODETECTION_METHOD", `"interfaces=eth0"`, "valid forms"}},
		{name: "v4 invalid method is ignored when not autodetecting", family: 4,
			env:  map[string]string{"IP": "10.0.0.5", "IP_AUTODETECTION_METHOD": "interfaces=eth0"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceEnv, Var: "IP", Interface: "eth0"}},
		{name: "v4 none, nothing stored", family: 4,
			env:  map[string]string{"IP": "none"},
			want: resolved{Source: SourceNone, Var: "IP"}},
		{name: "v4 none keeps the stored address", family: 4, existing: "10.0.0.5/24",
			env:  map[string]string{"IP": "none"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceExisting, Var: "IP", Interface: "eth0"}},
		{name: "v4 explicit IP gets the interface prefix", family: 4, existing: "10.1.0.7/16",
			env:  map[string]string{"IP": "10.0.0.5"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceEnv, Var: "IP", Interface: "eth0"}},
		{name: "v4 explicit CIDR used as given", family: 4,
			env:  map[string]string{"IP": "10.0.0.5/16"},
			want: resolved{Prefix: "10.0.0.5/16", Source: SourceEnv, Var: "IP", Interface: "eth0"}},
		{name: "v4 explicit IP not on host: /32 with warning", family: 4,
			env:  map[string]string{"IP": "203.0.113.5"},
			want: resolved{Prefix: "203.0.113.5/32", Source: SourceEnv, Var: "IP", Warn: true}},
		{name: "v4 explicit CIDR not on host: warning", family: 4,
			env:  map[string]string{"IP": "203.0.113.5/24"},
			want: resolved{Prefix: "203.0.113.5/24", Source: SourceEnv, Var: "IP", Warn: true}},
		{name: "v4 given an IPv6 address", family: 4,
			env:     map[string]string{"IP": "2001:db8::5"},
			wantErr: []string{`IP="2001:db8::5"`, "not an IPv4 address", "IP=10.0.0.5/24"}},
		{name: "v4 garbage", family: 4,
			env:     map[string]string{"IP": "10.0.0.300"},
			wantErr: []string{`IP="10.0.0.300"`, "autodetect", "none"}},
		{name: "v4 bad prefix length", family: 4,
			env:     map[string]string{"IP": "10.0.0.5/40"},
			wantErr: []string{`IP="10.0.0.5/40"`}},
		{name: "TORTIE_IP wins over IP", family: 4,
			env:  map[string]string{"IP": "192.168.1.10", "TORTIE_IP": "10.0.0.5"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceEnv, Var: "TORTIE_IP", Interface: "eth0"}},
		{name: "CALICO_IP is accepted but loses to IP (common/config's rule)", family: 4,
			env:  map[string]string{"CALICO_IP": "10.0.0.5", "IP": "192.168.1.10"},
			want: resolved{Prefix: "192.168.1.10/24", Source: SourceEnv, Var: "IP", Interface: "eth1"}},
		{name: "CALICO_IP alone", family: 4,
			env:  map[string]string{"CALICO_IP": "10.0.0.5"},
			want: resolved{Prefix: "10.0.0.5/24", Source: SourceEnv, Var: "CALICO_IP", Interface: "eth0"}},
		{name: "empty TORTIE_IP does not hide IP", family: 4,
			env:  map[string]string{"IP": "192.168.1.10", "TORTIE_IP": " "},
			want: resolved{Prefix: "192.168.1.10/24", Source: SourceEnv, Var: "IP", Interface: "eth1"}},
		{name: "TORTIE method wins", family: 4,
			env: map[string]string{"IP": "autodetect", "IP_AUTODETECTION_METHOD": "interface=eth0",
				"TORTIE_IP_AUTODETECTION_METHOD": "interface=eth1"},
			want: resolved{Prefix: "192.168.1.10/24", Source: SourceAutodetected, Var: "IP", MethodVar: "TORTIE_IP_AUTODETECTION_METHOD", Interface: "eth1"}},
		{name: "invalid TORTIE method names the TORTIE variable", family: 4,
			env:     map[string]string{"IP": "autodetect", "TORTIE_IP_AUTODETECTION_METHOD": "nope"},
			wantErr: []string{"TORTIE_IP_AUTODETECTION_METHOD"}},
		{name: "stored address of the wrong family", family: 4, existing: "2001:db8::5/64",
			wantErr: []string{"not IPv4"}},

		// IPv6.
		{name: "v6 unset, nothing stored: no IPv6 (no autodetection)", family: 6,
			want: resolved{Source: SourceNone}},
		{name: "v6 unset, stored address kept", family: 6, existing: "2001:db8::5/64",
			want: resolved{Prefix: "2001:db8::5/64", Source: SourceExisting, Interface: "eth0"}},
		{name: "v6 autodetect", family: 6,
			env:  map[string]string{"IP6": "autodetect"},
			want: resolved{Prefix: "2001:db8:5::7/64", Source: SourceAutodetected, Var: "IP6", Interface: "ens5"}},
		{name: "v6 autodetect with its own method", family: 6,
			env:  map[string]string{"IP6": "autodetect", "IP6_AUTODETECTION_METHOD": "cidr=2001:db8:1::/48", "IP_AUTODETECTION_METHOD": "interface=eth0"},
			want: resolved{Prefix: "2001:db8:1::10/64", Source: SourceAutodetected, Var: "IP6", MethodVar: "IP6_AUTODETECTION_METHOD", Interface: "eth1"}},
		{name: "v6 IPv4 method variable is not used", family: 6,
			env:  map[string]string{"IP6": "autodetect", "IP_AUTODETECTION_METHOD": "interface=eth0"},
			want: resolved{Prefix: "2001:db8:5::7/64", Source: SourceAutodetected, Var: "IP6", Interface: "ens5"}},
		{name: "v6 autodetect fails, nothing stored", family: 6,
			env:     map[string]string{"IP6": "autodetect", "IP6_AUTODETECTION_METHOD": "interface=^lo$"},
			wantErr: []string{"no IPv6 address", "IP6_AUTODETECTION_METHOD", "IP6=2001:db8::5/64"}},
		{name: "v6 autodetect fails, stored kept", family: 6, existing: "2001:db8::5/64",
			env:  map[string]string{"IP6": "autodetect", "IP6_AUTODETECTION_METHOD": "interface=lo"},
			want: resolved{Prefix: "2001:db8::5/64", Source: SourceExisting, Var: "IP6", MethodVar: "IP6_AUTODETECTION_METHOD", Interface: "eth0", Warn: true}},
		{name: "v6 none", family: 6,
			env:  map[string]string{"IP6": "none"},
			want: resolved{Source: SourceNone, Var: "IP6"}},
		{name: "v6 explicit address gets the interface prefix", family: 6,
			env:  map[string]string{"IP6": "2001:db8:1::10"},
			want: resolved{Prefix: "2001:db8:1::10/64", Source: SourceEnv, Var: "IP6", Interface: "eth1"}},
		{name: "v6 explicit address not on host: /128 with warning", family: 6,
			env:  map[string]string{"IP6": "2001:db8:ffff::1"},
			want: resolved{Prefix: "2001:db8:ffff::1/128", Source: SourceEnv, Var: "IP6", Warn: true}},
		{name: "v6 explicit CIDR", family: 6,
			env:  map[string]string{"TORTIE_IP6": "2001:db8::5/56"},
			want: resolved{Prefix: "2001:db8::5/56", Source: SourceEnv, Var: "TORTIE_IP6", Interface: "eth0"}},
		{name: "v6 given IPv4", family: 6,
			env:     map[string]string{"IP6": "10.0.0.5"},
			wantErr: []string{`IP6="10.0.0.5"`, "not an IPv6 address"}},
		{name: "v6 zoned address", family: 6,
			env:     map[string]string{"IP6": "fe80::1%eth0"},
			wantErr: []string{"zoned"}},
		{name: "family 7", family: 7, wantErr: []string{"family 7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var existing netip.Prefix
			if tt.existing != "" {
				existing = netip.MustParsePrefix(tt.existing)
			}
			got, err := ResolveNodeIP(t.Context(), envOf(tt.env), existing, tt.family, src, nil)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ResolveNodeIP = %+v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveNodeIP: %v", err)
			}
			r := resolved{Source: got.Source, Var: got.Var, MethodVar: got.MethodVar, Interface: got.Interface, Warn: got.Warning != ""}
			if got.Prefix.IsValid() {
				r.Prefix = got.Prefix.String()
			}
			if diff := cmp.Diff(tt.want, r); diff != "" {
				t.Errorf("ResolveNodeIP (-want +got):\n%s\nwarning: %q", diff, got.Warning)
			}
			if got.Source == SourceAutodetected && got.Method.Kind == "" {
				t.Errorf("autodetected without recording the method: %+v", got)
			}
		})
	}
}
