package api

import (
	"encoding/json"
	"sort"
)

// FelixImplementedFields are the FelixConfiguration fields (JSON names) whose settings tortie's agent
// honours: its iptables, VXLAN, IPIP and routing dataplane, health, metrics and logging. Every other
// field is stored and kept (so nothing Calico wrote is lost) but has no effect; FelixIgnoredFields names
// those that are set so that the agent can report them.
var FelixImplementedFields = map[string]bool{
	"ipv6Support": true, "ipForwarding": true,
	"routeRefreshInterval": true, "interfaceRefreshInterval": true, "iptablesRefreshInterval": true,
	"iptablesPostWriteCheckInterval": true, "iptablesLockTimeout": true, "iptablesLockProbeInterval": true,
	"ipsetsRefreshInterval": true, "maxIpsetSize": true, "iptablesBackend": true, "netlinkTimeout": true,
	"iptablesMarkMask": true, "interfacePrefix": true, "interfaceExclude": true, "chainInsertMode": true,
	"defaultEndpointToHostAction": true, "iptablesFilterAllowAction": true, "iptablesMangleAllowAction": true,
	"logPrefix": true, "logFilePath": true, "logSeverityFile": true, "logSeverityScreen": true, "logSeveritySys": true,
	"vxlanEnabled": true, "vxlanPort": true, "vxlanVNI": true, "vxlanMTU": true, "vxlanMTUV6": true,
	"ipipEnabled": true, "ipipMTU": true, "mtuIfacePattern": true,
	"allowVXLANPacketsFromWorkloads": true, "allowIPIPPacketsFromWorkloads": true,
	"reportingInterval": true, "reportingTTL": true,
	"natPortRange": true, "natOutgoingAddress": true, "natOutgoingExclusions": true,
	"deviceRouteSourceAddress": true, "deviceRouteSourceAddressIPv6": true, "deviceRouteProtocol": true,
	"removeExternalRoutes": true, "programClusterRoutes": true, "routeSource": true, "routeTableRanges": true,
	"routeTableRange": true, "routeSyncDisabled": true, "externalNodesCIDRList": true,
	"failsafeInboundHostPorts": true, "failsafeOutboundHostPorts": true, "kubeNodePortRanges": true,
	"serviceLoopPrevention": true, "workloadSourceSpoofing": true, "floatingIPs": true,
	"healthEnabled": true, "healthHost": true, "healthPort": true,
	"prometheusMetricsEnabled": true, "prometheusMetricsHost": true, "prometheusMetricsPort": true,
	"dataplaneWatchdogTimeout": true, "windowsManageFirewallRules": true,
	// Stamped by calicoctl's defaulting on every object; at those values they ask for nothing.
	"bpfConnectTimeLoadBalancing": true, "bpfHostNetworkedNATWithoutCTLB": true,
	// Selects which nodes an object applies to; the agent's configuration layering reads it.
	"nodeSelector": true,
	// Never sent by tortie; accepted so that Calico's default objects raise no report.
	"usageReportingEnabled": true,
}

// FelixIgnoredFields returns the JSON names of the fields set in s that tortie does not act on, sorted.
// bpfEnabled, wireguardEnabled and the like are reported only when they ask for something (true):
// false is what tortie does anyway.
func FelixIgnoredFields(s *FelixConfigurationSpec) []string {
	data, err := json.Marshal(s)
	if err != nil {
		return nil // a spec of plain values always marshals
	}
	var set map[string]any
	if err := json.Unmarshal(data, &set); err != nil {
		return nil
	}
	var out []string
	for name, v := range set {
		if FelixImplementedFields[name] {
			continue
		}
		if b, ok := v.(bool); ok && !b {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
