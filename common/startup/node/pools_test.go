package node

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/memory"
)

func TestParsePoolEnv(t *testing.T) {
	workloadTunnel := []api.IPPoolAllowedUse{api.IPPoolAllowedUseWorkload, api.IPPoolAllowedUseTunnel}
	auto := new(api.AssignmentModeAutomatic)
	v4 := func(cidr string, mutate func(*api.IPPoolSpec)) *api.IPPoolSpec {
		s := &api.IPPoolSpec{CIDR: cidr, BlockSize: 26, IPIPMode: api.EncapNever, VXLANMode: api.EncapNever, NATOutgoing: true,
			NodeSelector: "all()", AllowedUses: workloadTunnel, AssignmentMode: auto}
		if mutate != nil {
			mutate(s)
		}
		return s
	}
	v6 := func(cidr string, mutate func(*api.IPPoolSpec)) *api.IPPoolSpec {
		s := &api.IPPoolSpec{CIDR: cidr, BlockSize: 122, IPIPMode: api.EncapNever, VXLANMode: api.EncapNever,
			NodeSelector: "all()", AllowedUses: workloadTunnel, AssignmentMode: auto}
		if mutate != nil {
			mutate(s)
		}
		return s
	}
	kubeadm := &kubeadmConfig{PodSubnetV4: "10.244.0.0/16", PodSubnetV6: "fd00:10:244::/56"}
	const kubeadmSrc = "networking.podSubnet in ConfigMap kube-system/kubeadm-config"

	for _, tt := range []struct {
		name      string
		family    int
		env       map[string]string
		kubeadm   *kubeadmConfig
		hostAddrs []string
		want      *api.IPPoolSpec // nil: disabled or error
		source    string
		wantErr   []string // substrings; empty means success
	}{
		{name: "v4 defaults", family: 4, want: v4("192.168.0.0/16", nil), source: "default"},
		{name: "v4 default avoids a host address", family: 4, hostAddrs: []string{"192.168.1.10", "172.16.0.1"},
			want: v4("172.17.0.0/16", nil), source: "default"},
		{name: "v4 from env, host bits dropped", family: 4, env: map[string]string{"CALICO_IPV4POOL_CIDR": "10.1.2.3/16"},
			want: v4("10.1.0.0/16", nil), source: "CALICO_IPV4POOL_CIDR"},
		{name: "v4 tortie alias wins", family: 4, env: map[string]string{"CALICO_IPV4POOL_CIDR": "10.1.0.0/16", "TORTIE_IPV4POOL_CIDR": "10.2.0.0/16"},
			want: v4("10.2.0.0/16", nil), source: "TORTIE_IPV4POOL_CIDR"},
		{name: "v4 from kubeadm", family: 4, kubeadm: kubeadm, want: v4("10.244.0.0/16", nil), source: kubeadmSrc},
		{name: "v4 env beats kubeadm", family: 4, kubeadm: kubeadm, env: map[string]string{"CALICO_IPV4POOL_CIDR": "10.9.0.0/16"},
			want: v4("10.9.0.0/16", nil), source: "CALICO_IPV4POOL_CIDR"},
		{name: "v4 none", family: 4, env: map[string]string{"CALICO_IPV4POOL_CIDR": "None"}, source: "CALICO_IPV4POOL_CIDR=none"},
		{name: "v4 every setting", family: 4, env: map[string]string{
			"CALICO_IPV4POOL_CIDR": "10.8.0.0/16", "CALICO_IPV4POOL_BLOCK_SIZE": "28", "CALICO_IPV4POOL_IPIP": "cross-subnet",
			"CALICO_IPV4POOL_NAT_OUTGOING": "false", "CALICO_IPV4POOL_NODE_SELECTOR": "kubernetes.io/os == 'linux'",
			"CALICO_IPV4POOL_DISABLE_BGP_EXPORT": "yes",
		}, want: v4("10.8.0.0/16", func(s *api.IPPoolSpec) {
			s.BlockSize, s.IPIPMode, s.NATOutgoing, s.NodeSelector, s.DisableBGPExport = 28, api.EncapCrossSubnet, false, "kubernetes.io/os == 'linux'", true
		}), source: "CALICO_IPV4POOL_CIDR"},
		{name: "v4 VXLAN always, any case", family: 4, env: map[string]string{"CALICO_IPV4POOL_VXLAN": "ALWAYS", "CALICO_IPV4POOL_IPIP": "Off"},
			want: v4("192.168.0.0/16", func(s *api.IPPoolSpec) { s.VXLANMode = api.EncapAlways }), source: "default"},
		{name: "v6 defaults from env", family: 6, env: map[string]string{"CALICO_IPV6POOL_CIDR": "fd00:1::/48"},
			want: v6("fd00:1::/48", nil), source: "CALICO_IPV6POOL_CIDR"},
		{name: "v6 from kubeadm", family: 6, kubeadm: kubeadm, want: v6("fd00:10:244::/56", nil), source: kubeadmSrc},
		{name: "v6 settings", family: 6, env: map[string]string{"CALICO_IPV6POOL_CIDR": "fd00:2::/64", "CALICO_IPV6POOL_BLOCK_SIZE": "120",
			"CALICO_IPV6POOL_VXLAN": "CrossSubnet", "CALICO_IPV6POOL_NAT_OUTGOING": "true", "CALICO_IPV6POOL_NODE_SELECTOR": "has(v6)",
			"CALICO_IPV6POOL_DISABLE_BGP_EXPORT": "true"},
			want: v6("fd00:2::/64", func(s *api.IPPoolSpec) {
				s.BlockSize, s.VXLANMode, s.NATOutgoing, s.NodeSelector, s.DisableBGPExport = 120, api.EncapCrossSubnet, true, "has(v6)", true
			}), source: "CALICO_IPV6POOL_CIDR"},
		{name: "v6 none", family: 6, env: map[string]string{"CALICO_IPV6POOL_CIDR": "none"}, source: "CALICO_IPV6POOL_CIDR=none"},

		// Bad values: each error names the variable and its value and says what to write.
		{name: "bad v4 CIDR", family: 4, env: map[string]string{"CALICO_IPV4POOL_CIDR": "10.0.0.0"},
			wantErr: []string{`CALICO_IPV4POOL_CIDR="10.0.0.0"`, "not a CIDR", "10.244.0.0/16", "none"}},
		{name: "v6 CIDR in the v4 variable", family: 4, env: map[string]string{"CALICO_IPV4POOL_CIDR": "fd00::/48"},
			wantErr: []string{`CALICO_IPV4POOL_CIDR="fd00::/48"`, "not an IPv4 CIDR"}},
		{name: "v4 CIDR in the v6 variable", family: 6, env: map[string]string{"CALICO_IPV6POOL_CIDR": "10.0.0.0/8"},
			wantErr: []string{`CALICO_IPV6POOL_CIDR="10.0.0.0/8"`, "not an IPv6 CIDR"}},
		{name: "block size not a number", family: 4, env: map[string]string{"CALICO_IPV4POOL_BLOCK_SIZE": "big"},
			wantErr: []string{`CALICO_IPV4POOL_BLOCK_SIZE="big"`, "between 20 and 32 (default 26)"}},
		{name: "block size out of range", family: 4, env: map[string]string{"CALICO_IPV4POOL_BLOCK_SIZE": "33"},
			wantErr: []string{`CALICO_IPV4POOL_BLOCK_SIZE="33"`, "spec.blockSize", "between 20 and 32"}},
		{name: "v6 block size out of range", family: 6, env: map[string]string{"CALICO_IPV6POOL_CIDR": "fd00::/48", "CALICO_IPV6POOL_BLOCK_SIZE": "64"},
			wantErr: []string{`CALICO_IPV6POOL_BLOCK_SIZE="64"`, "between 116 and 128 (default 122)"}},
		{name: "CIDR smaller than a block", family: 4, env: map[string]string{"CALICO_IPV4POOL_CIDR": "10.0.0.0/28"},
			wantErr: []string{`CALICO_IPV4POOL_CIDR="10.0.0.0/28"`, "spec.cidr", "CALICO_IPV4POOL_BLOCK_SIZE"}},
		{name: "kubeadm CIDR smaller than a block", family: 4, kubeadm: &kubeadmConfig{PodSubnetV4: "10.0.0.0/30"},
			wantErr: []string{kubeadmSrc, "spec.cidr"}},
		{name: "bad IPIP mode", family: 4, env: map[string]string{"CALICO_IPV4POOL_IPIP": "sometimes"},
			wantErr: []string{`CALICO_IPV4POOL_IPIP="sometimes"`, "Always, CrossSubnet or Never"}},
		{name: "bad v6 VXLAN mode", family: 6, env: map[string]string{"CALICO_IPV6POOL_VXLAN": "yes"},
			wantErr: []string{`CALICO_IPV6POOL_VXLAN="yes"`}},
		{name: "IPIP and VXLAN together", family: 4, env: map[string]string{"CALICO_IPV4POOL_IPIP": "Always", "CALICO_IPV4POOL_VXLAN": "Always"},
			wantErr: []string{`CALICO_IPV4POOL_IPIP="Always" with CALICO_IPV4POOL_VXLAN="Always"`, "set one of them to Never"}},
		{name: "bad NAT outgoing", family: 4, env: map[string]string{"CALICO_IPV4POOL_NAT_OUTGOING": "sure"},
			wantErr: []string{`CALICO_IPV4POOL_NAT_OUTGOING="sure"`, "true or false"}},
		{name: "bad BGP export", family: 6, env: map[string]string{"CALICO_IPV6POOL_DISABLE_BGP_EXPORT": "nah"},
			wantErr: []string{`CALICO_IPV6POOL_DISABLE_BGP_EXPORT="nah"`}},
		{name: "bad node selector", family: 4, env: map[string]string{"CALICO_IPV4POOL_NODE_SELECTOR": "role =="},
			wantErr: []string{`CALICO_IPV4POOL_NODE_SELECTOR="role =="`, "spec.nodeSelector", "all()"}},
		{name: "link-local CIDR", family: 4, env: map[string]string{"TORTIE_IPV4POOL_CIDR": "169.254.0.0/16"},
			wantErr: []string{`TORTIE_IPV4POOL_CIDR="169.254.0.0/16"`, "link-local"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := poolInputs{kubeadm: tt.kubeadm, kubeadmSource: kubeadmSrc, rand: seeded(7)}
			for _, a := range tt.hostAddrs {
				in.hostAddrs = append(in.hostAddrs, netip.MustParseAddr(a))
			}
			ps, err := parsePoolEnv(envOf(tt.env), tt.family, in)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("parsePoolEnv succeeded: %+v", ps.pool)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePoolEnv: %v", err)
			}
			var got *api.IPPoolSpec
			if ps.pool != nil {
				got = &ps.pool.Spec
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pool spec (-want +got):\n%s", diff)
			}
			if ps.cidrSource != tt.source {
				t.Errorf("CIDR source %q, want %q", ps.cidrSource, tt.source)
			}
			if ps.disabled != (tt.want == nil) {
				t.Errorf("disabled = %t", ps.disabled)
			}
		})
	}
}

func TestRandomULA(t *testing.T) {
	ps, err := parsePoolEnv(envOf(nil), 6, poolInputs{rand: seeded(3)})
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix(ps.pool.Spec.CIDR)
	if p.Bits() != 48 || p.Addr().As16()[0] != 0xfd || ps.cidrSource != "random ULA" {
		t.Errorf("generated %s from %q, want an fdxx:xxxx:xxxx::/48", p, ps.cidrSource)
	}
	other, _ := parsePoolEnv(envOf(nil), 6, poolInputs{rand: seeded(4)})
	if other.pool.Spec.CIDR == ps.pool.Spec.CIDR {
		t.Error("two seeds gave the same ULA")
	}
}

func TestEnsurePools(t *testing.T) {
	for _, tt := range []struct {
		name     string
		env      map[string]string
		ipv6     bool
		existing []string          // CIDRs of pools created first
		want     map[string]string // pool name → CIDR after startup
		actions  []PoolAction      // v4, v6
	}{
		{name: "v4 only when IPv6 is unsupported", ipv6: false,
			want: map[string]string{"default-ipv4-ippool": "192.168.0.0/16"}, actions: []PoolAction{PoolCreated, PoolIPv6Unsupported}},
		{name: "dual stack", ipv6: true, env: map[string]string{"CALICO_IPV6POOL_CIDR": "fd00:5::/48"},
			want:    map[string]string{"default-ipv4-ippool": "192.168.0.0/16", "default-ipv6-ippool": "fd00:5::/48"},
			actions: []PoolAction{PoolCreated, PoolCreated}},
		{name: "FELIX_IPV6SUPPORT=false", ipv6: true, env: map[string]string{"FELIX_IPV6SUPPORT": "false", "CALICO_IPV6POOL_CIDR": "fd00:5::/48"},
			want: map[string]string{"default-ipv4-ippool": "192.168.0.0/16"}, actions: []PoolAction{PoolCreated, PoolIPv6Unsupported}},
		{name: "NO_DEFAULT_POOLS", ipv6: true, env: map[string]string{"NO_DEFAULT_POOLS": "true"},
			want: map[string]string{}, actions: []PoolAction{PoolNoDefaultPools, PoolNoDefaultPools}},
		{name: "existing pool of each family", ipv6: true, existing: []string{"10.7.0.0/16", "fd00:7::/48"},
			want:    map[string]string{"p0": "10.7.0.0/16", "p1": "fd00:7::/48"},
			actions: []PoolAction{PoolExists, PoolExists}},
		{name: "existing v4 only", ipv6: true, existing: []string{"10.7.0.0/16"}, env: map[string]string{"CALICO_IPV6POOL_CIDR": "fd00:8::/48"},
			want:    map[string]string{"p0": "10.7.0.0/16", "default-ipv6-ippool": "fd00:8::/48"},
			actions: []PoolAction{PoolExists, PoolCreated}},
		{name: "v4 none, v6 on", ipv6: true, env: map[string]string{"CALICO_IPV4POOL_CIDR": "none", "CALICO_IPV6POOL_CIDR": "fd00:9::/48", "IP6": "fd00:9::5/64", "IP": "none"},
			want: map[string]string{"default-ipv6-ippool": "fd00:9::/48"}, actions: []PoolAction{PoolDisabledByEnv, PoolCreated}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := memory.New()
			for i, c := range tt.existing {
				createPool(t, be, "p"+string(rune('0'+i)), c, nil)
			}
			o := testOptions(t, be, tt.env)
			o.IPv6Supported = func() bool { return tt.ipv6 }
			o.Interfaces = hostIfaces("10.0.0.5/24", "fd00:9::5/64")
			res := run(t, o)
			got := map[string]string{}
			for _, p := range listPools(t, be) {
				got[p.Name] = p.Spec.CIDR
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pools (-want +got):\n%s", diff)
			}
			var actions []PoolAction
			for _, p := range res.Pools {
				actions = append(actions, p.Action)
			}
			if diff := cmp.Diff(tt.actions, actions); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}
