package hcn

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFeaturesFor(t *testing.T) {
	tests := []struct {
		v    Version
		want Features
	}{
		{Version{7, 1}, Features{}},
		{Version{7, 2}, Features{ACLPortRanges: true}},
		{Version{9, 2}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true}},
		{Version{9, 3}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true, DSR: true}},
		{Version{10, 1}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true}},
		{Version{10, 2}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true, DSR: true}},
		{Version{10, 3}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true, VxlanPort: true, DSR: true}},
		{Version{12, 9}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true, VxlanPort: true, DSR: true}},
		{Version{13, 0}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true, VxlanPort: true, SetPolicy: true, DSR: true}},
		{Version{15, 1}, Features{ACLPortRanges: true, V2: true, RemoteSubnet: true, HostRoute: true, VxlanPort: true, SetPolicy: true, TierACL: true, DSR: true}},
	}
	for _, tt := range tests {
		t.Run(tt.v.String(), func(t *testing.T) {
			if diff := cmp.Diff(tt.want, FeaturesFor(tt.v)); diff != "" {
				t.Errorf("FeaturesFor(%s) (-want +got):\n%s", tt.v, diff)
			}
		})
	}
}

// The request bodies HNS receives: field names and casing are HNS's, which it matches exactly
// ("Id", not "ID", in an ACL; "PolicyType" in a SetPolicy; "ID" for objects).
func TestJSONShapes(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want string
	}{
		{"acl", NewEndpointPolicy(EndpointPolicyACL, ACLSetting{Id: "tortie-1", Protocols: "6", Action: ActionAllow,
			Direction: DirectionIn, RemoteAddresses: "10.0.0.0/24", LocalPorts: "80,8000-8080", RuleType: RuleTypeSwitch, Priority: 1000}),
			`{"Type":"ACL","Settings":{"Id":"tortie-1","Protocols":"6","Action":"Allow","Direction":"In","RemoteAddresses":"10.0.0.0/24","LocalPorts":"80,8000-8080","RuleType":"Switch","Priority":1000}}`},
		{"setpolicy", NewNetworkPolicy(NetworkPolicySetPolicy, SetPolicySetting{Id: "s1", Name: "n", PolicyType: SetPolicyIPSet, Values: "10.0.0.1,10.0.0.2"}),
			`{"Type":"SetPolicy","Settings":{"Id":"s1","Name":"n","PolicyType":"IPSET","Values":"10.0.0.1,10.0.0.2"}}`},
		{"remote subnet", NewNetworkPolicy(NetworkPolicyRemoteSubnetRoute, RemoteSubnetRouteSetting{DestinationPrefix: "10.1.0.0/26", IsolationId: 4096, ProviderAddress: "192.0.2.2", DistributedRouterMacAddress: "0e-2a-00-00-00-01"}),
			`{"Type":"RemoteSubnetRoute","Settings":{"DestinationPrefix":"10.1.0.0/26","IsolationId":4096,"ProviderAddress":"192.0.2.2","DistributedRouterMacAddress":"0e-2a-00-00-00-01"}}`},
		{"network", Network{ID: "n1", Name: "tortie-vxlan", Type: NetworkOverlay, Ipams: []Ipam{{Type: "Static", Subnets: []Subnet{{
			IpAddressPrefix: "10.0.0.0/26", Policies: []SubnetPolicy{NewSubnetPolicy(SubnetPolicyVSID, VSIDSetting{IsolationId: 4096})}}}}}},
			`{"ID":"n1","Name":"tortie-vxlan","Type":"Overlay","Ipams":[{"Type":"Static","Subnets":[{"IpAddressPrefix":"10.0.0.0/26","Policies":[{"Type":"VSID","Settings":{"IsolationId":4096}}]}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(mustJSON(tt.got)); got != tt.want {
				t.Errorf("JSON:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
