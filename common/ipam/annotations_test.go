package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tortie-net/tortie/common/api"
)

func TestParsePoolAnnotations(t *testing.T) {
	v4, v6, addrs := api.AnnotationIPv4Pools, api.AnnotationIPv6Pools, api.AnnotationIPAddrs
	for _, tc := range []struct {
		name      string
		pod, ns   map[string]string
		want      PoolSelection
		errSubstr string // names the annotation and the problem
	}{
		{name: "nothing", want: PoolSelection{}},
		{name: "namespace pools", ns: map[string]string{v4: `["pool-a","10.0.0.0/16"]`, v6: `["fd00::/64"]`},
			want: PoolSelection{IPv4Pools: []string{"pool-a", "10.0.0.0/16"}, IPv6Pools: []string{"fd00::/64"},
				Sources: map[string]string{v4: "namespace", v6: "namespace"}}},
		{name: "pod wins per key", pod: map[string]string{v4: `["pod-pool"]`}, ns: map[string]string{v4: `["ns-pool"]`, v6: `["ns6"]`},
			want: PoolSelection{IPv4Pools: []string{"pod-pool"}, IPv6Pools: []string{"ns6"},
				Sources: map[string]string{v4: "pod", v6: "namespace"}}},
		{name: "ipAddrs", pod: map[string]string{addrs: `["10.0.0.5", "fd00::5"]`}, ns: map[string]string{v4: `["ns-pool"]`},
			want: PoolSelection{IPAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")},
				Sources: map[string]string{addrs: "pod"}}},
		{name: "namespace ipAddrs ignored", ns: map[string]string{addrs: `["10.0.0.5"]`}, want: PoolSelection{}},
		{name: "not JSON", pod: map[string]string{v4: `pool-a`}, errSubstr: "pod annotation " + v4},
		{name: "not a list of strings", ns: map[string]string{v6: `[1,2]`}, errSubstr: "namespace annotation " + v6},
		{name: "wrong family", pod: map[string]string{v4: `["fd00::/64"]`}, errSubstr: "not an IPv4 CIDR"},
		{name: "bad CIDR", pod: map[string]string{v6: `["fd00::/200"]`}, errSubstr: "not a valid CIDR"},
		{name: "empty entry", pod: map[string]string{v4: `[""]`}, errSubstr: "empty"},
		{name: "address as pool", pod: map[string]string{v4: `["10.0.0.1"]`}, errSubstr: "is an address"},
		{name: "both ipAddrs and pools", pod: map[string]string{addrs: `["10.0.0.5"]`, v4: `["p"]`}, errSubstr: "cannot be combined"},
		{name: "two IPv4 addresses", pod: map[string]string{addrs: `["10.0.0.5","10.0.0.6"]`}, errSubstr: "at most one IPv4"},
		{name: "address with prefix", pod: map[string]string{addrs: `["10.0.0.5/32"]`}, errSubstr: "not an IP address"},
		{name: "empty address list", pod: map[string]string{addrs: `[]`}, errSubstr: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePoolAnnotations(tc.pod, tc.ns)
			if tc.errSubstr != "" {
				var ae *AnnotationError
				if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidAnnotation) || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("error %v, want an AnnotationError containing %q", err, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), cmpAddrs); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParsePoolAnnotations(f *testing.F) {
	f.Add(`["a","10.0.0.0/8"]`, `["fd00::/64"]`, `["10.0.0.1"]`, true)
	f.Add(`[`, `[""]`, `["::1","1.2.3.4"]`, false)
	f.Fuzz(func(t *testing.T, p4, p6, addrs string, onPod bool) {
		ann := map[string]string{api.AnnotationIPv4Pools: p4, api.AnnotationIPv6Pools: p6}
		pod, ns := map[string]string{api.AnnotationIPAddrs: addrs}, ann
		if onPod {
			pod, ns = ann, map[string]string{api.AnnotationIPAddrs: addrs}
		}
		sel, err := ParsePoolAnnotations(pod, ns)
		if err != nil {
			var ae *AnnotationError
			if !errors.As(err, &ae) || ae.Annotation == "" {
				t.Fatalf("error %v does not name its annotation", err)
			}
			return
		}
		for _, e := range append(append([]string{}, sel.IPv4Pools...), sel.IPv6Pools...) {
			if strings.TrimSpace(e) == "" {
				t.Fatalf("empty pool entry accepted")
			}
		}
		for _, e := range sel.IPv4Pools {
			if p, err := netip.ParsePrefix(e); err == nil && !p.Addr().Is4() {
				t.Fatalf("IPv6 CIDR %s accepted as an IPv4 pool", e)
			}
		}
		if len(sel.IPAddrs) > 2 {
			t.Fatalf("%d addresses accepted", len(sel.IPAddrs))
		}
	})
}
