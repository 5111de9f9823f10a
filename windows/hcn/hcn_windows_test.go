//go:build windows

package hcn

import (
	"encoding/json"
	"testing"

	"github.com/Microsoft/hcsshim/hcn"
	"github.com/google/go-cmp/cmp"
)

// The adapter converts through JSON: every field tortie sets must survive the trip to hcsshim's types
// and back, or HNS would silently receive less than the dataplane asked for.
func TestConvertRoundTrip(t *testing.T) {
	n := &Network{ID: "n1", Name: "tortie-vxlan", Type: NetworkOverlay, Flags: EnableNonPersistent,
		Policies: []NetworkPolicy{NewNetworkPolicy(NetworkPolicyHostRoute, struct{}{})},
		Ipams: []Ipam{{Type: "Static", Subnets: []Subnet{{IpAddressPrefix: "10.0.0.0/26",
			Routes:   []Route{{NextHop: "10.0.0.1", DestinationPrefix: "0.0.0.0/0"}},
			Policies: []SubnetPolicy{NewSubnetPolicy(SubnetPolicyVSID, VSIDSetting{IsolationId: 4096})}}}}}}
	hn, err := convert[*hcn.HostComputeNetwork](n)
	if err != nil {
		t.Fatal(err)
	}
	back, err := convert[*Network](hn)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n, back, cmp.Transformer("raw", func(r json.RawMessage) string { return string(r) })); diff != "" {
		t.Errorf("network round trip (-want +got):\n%s", diff)
	}

	ep := &Endpoint{ID: "e1", Name: "tortie-ep", HostComputeNetwork: "n1", Flags: EndpointRemote, MacAddress: "0E-2A-0A-00-00-02",
		IpConfigurations: []IPConfig{{IpAddress: "10.0.0.2", PrefixLength: 26}},
		Policies:         []EndpointPolicy{NewEndpointPolicy(EndpointPolicyACL, ACLSetting{Id: "x", Action: ActionBlock, Direction: DirectionOut, Priority: 7})}}
	he, err := convert[*hcn.HostComputeEndpoint](ep)
	if err != nil {
		t.Fatal(err)
	}
	backEp, err := convert[*Endpoint](he)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ep, backEp, cmp.Transformer("raw", func(r json.RawMessage) string { return string(r) })); diff != "" {
		t.Errorf("endpoint round trip (-want +got):\n%s", diff)
	}
}
