package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tortie-net/tortie/common/dpmodel"
)

// Agent settings, layered as Felix layers them. For each setting the first source that sets it wins:
//
//  1. the environment (FELIX_<NAME>, with TORTIE_<NAME> winning over it; see Lookup);
//  2. the agent's config file (FELIX_CONFIGFILE, default /etc/calico/felix.cfg: Felix's INI format,
//     "Name = value" lines, optionally under a [global] section);
//  3. the FelixConfiguration named node.<node name>;
//  4. the FelixConfiguration named default;
//  5. the built-in default.
//
// A setting is live when a change to it (which can only come from a FelixConfiguration: the environment
// and the file are read once) takes effect without a restart; a change to a setting that is not live is
// reported as needing a restart and the running value is kept. docs/agent.md lists every setting.

// Source says where a setting's value came from.
type Source int

const (
	SourceDefault Source = iota
	SourceGlobal         // FelixConfiguration "default"
	SourceNode           // FelixConfiguration "node.<name>"
	SourceFile
	SourceEnv
)

func (s Source) String() string {
	switch s {
	case SourceDefault:
		return "default"
	case SourceGlobal:
		return "FelixConfiguration default"
	case SourceNode:
		return "FelixConfiguration node"
	case SourceFile:
		return "config file"
	case SourceEnv:
		return "environment"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Agent is the node agent's settings, after layering.
type Agent struct {
	LogLevel slog.Level

	HealthEnabled bool
	HealthHost    string
	HealthPort    int
	// WatchdogTimeout is how long the loop may go without a heartbeat before liveness fails.
	WatchdogTimeout time.Duration

	MetricsEnabled bool
	MetricsHost    string
	MetricsPort    int

	// ApplyMinInterval is the least time between two Applies (the rate limit; updates in between coalesce).
	ApplyMinInterval time.Duration
	// RouteRefresh, IptablesRefresh and IPSetsRefresh are Felix's per-manager resync intervals; the agent
	// resyncs the whole dataplane every ResyncInterval(), the shortest of them that is enabled.
	RouteRefresh, IptablesRefresh, IPSetsRefresh time.Duration

	// The dataplane configuration handed to the dataplane as a dpmodel.ConfigUpdate.
	InterfacePrefixes           []string
	DefaultEndpointToHostAction string
	FailsafeInbound             []dpmodel.ProtoPort
	FailsafeOutbound            []dpmodel.ProtoPort
	IPv6Support                 bool
	// VXLANEnabled and IPIPEnabled are nil for "decide from the IP pools".
	VXLANEnabled, IPIPEnabled     *bool
	VXLANPort, VXLANVNI           int
	VXLANMTU, VXLANMTUV6, IPIPMTU int
	NATOutgoingAddress            netip.Addr
	LogPrefix                     string
	DenyAction                    string
}

// ResyncInterval is how often the agent asks the dataplane to re-read the host: the shortest enabled
// refresh interval (0: never).
func (a *Agent) ResyncInterval() time.Duration {
	var out time.Duration
	for _, d := range []time.Duration{a.RouteRefresh, a.IptablesRefresh, a.IPSetsRefresh} {
		if d > 0 && (out == 0 || d < out) {
			out = d
		}
	}
	return out
}

// Dataplane returns the dataplane configuration; vxlanAuto and ipipAuto say whether some IP pool uses
// that encapsulation (used when the setting is not forced on or off).
func (a *Agent) Dataplane(nodeName string, vxlanAuto, ipipAuto bool) dpmodel.Config {
	pick := func(p *bool, auto bool) bool {
		if p != nil {
			return *p
		}
		return auto
	}
	return dpmodel.Config{
		NodeName: nodeName, InterfacePrefixes: slices.Clone(a.InterfacePrefixes),
		DefaultEndpointToHostAction: a.DefaultEndpointToHostAction,
		FailsafeInbound:             slices.Clone(a.FailsafeInbound), FailsafeOutbound: slices.Clone(a.FailsafeOutbound),
		IPv6Enabled: a.IPv6Support, IPIPEnabled: pick(a.IPIPEnabled, ipipAuto), VXLANEnabled: pick(a.VXLANEnabled, vxlanAuto),
		VXLANEnabledV6: pick(a.VXLANEnabled, vxlanAuto) && a.IPv6Support,
		VXLANPort:      a.VXLANPort, VXLANVNI: a.VXLANVNI, IPIPMTU: a.IPIPMTU, VXLANMTU: a.VXLANMTU, VXLANMTUV6: a.VXLANMTUV6,
		NATOutgoingAddress: a.NATOutgoingAddress, LogPrefix: a.LogPrefix, DenyAction: a.DenyAction,
	}
}

// Setting is one row of the settings table.
type Setting struct {
	// Name is Felix's parameter name, also the config file key (matched without regard to case).
	Name string
	// Env is the variable Calico reads (FELIX_<NAME>), or TORTIE_<NAME> for a setting Calico lacks; read
	// through Lookup, so TORTIE_<NAME> also works for the Calico ones.
	Env string
	// Field is the FelixConfiguration spec field (JSON name), "" when there is none.
	Field string
	// Default is the built-in default, in the setting's text form.
	Default string
	// Want describes the accepted form, for error messages.
	Want string
	// Live: a change applies without a restart.
	Live bool
	// Doc is one line for docs/agent.md.
	Doc string
	// set parses a value into the Agent.
	set func(a *Agent, v string) error
	// fromField turns a FelixConfiguration field's JSON into the text form ("" for the plain cases).
	fromField func(raw json.RawMessage) (string, error)
}

// Settings is the table of every agent setting, in documentation order.
var Settings = []Setting{
	{Name: "LogSeverityScreen", Env: "FELIX_LOGSEVERITYSCREEN", Field: "logSeverityScreen", Default: "Info", Live: true,
		Want: "one of Debug, Info, Warning, Error, Fatal", Doc: "level of the JSON log on stderr",
		set: func(a *Agent, v string) (err error) { a.LogLevel, err = ParseLogLevel(v); return err }},
	{Name: "HealthEnabled", Env: "FELIX_HEALTHENABLED", Field: "healthEnabled", Default: "true", Want: "true or false",
		Doc: "serve /livez, /readyz and /metrics (Felix's default is false; calico-node manifests set it true)",
		set: func(a *Agent, v string) (err error) { a.HealthEnabled, err = ParseBool(v); return err }},
	{Name: "HealthHost", Env: "FELIX_HEALTHHOST", Field: "healthHost", Default: "localhost", Want: "a host name or address",
		Doc: "address of the health server",
		set: func(a *Agent, v string) error { a.HealthHost = v; return nonEmpty(v) }},
	{Name: "HealthPort", Env: "FELIX_HEALTHPORT", Field: "healthPort", Default: "9099", Want: "a port number 1-65535",
		Doc: "port of the health server (`tortie-node health` probes it)",
		set: func(a *Agent, v string) (err error) { a.HealthPort, err = parsePort(v); return err }},
	{Name: "DataplaneWatchdogTimeout", Env: "FELIX_DATAPLANEWATCHDOGTIMEOUT", Field: "dataplaneWatchdogTimeout", Default: "90s",
		Want: "a positive duration such as 90s", Doc: "liveness fails when the loop has not run for this long",
		set: func(a *Agent, v string) (err error) { a.WatchdogTimeout, err = parsePositiveDuration(v); return err }},
	{Name: "PrometheusMetricsEnabled", Env: "FELIX_PROMETHEUSMETRICSENABLED", Field: "prometheusMetricsEnabled", Default: "false",
		Want: "true or false", Doc: "also serve /metrics on PrometheusMetricsHost:PrometheusMetricsPort (it is always on the health server)",
		set: func(a *Agent, v string) (err error) { a.MetricsEnabled, err = ParseBool(v); return err }},
	{Name: "PrometheusMetricsHost", Env: "FELIX_PROMETHEUSMETRICSHOST", Field: "prometheusMetricsHost", Default: "",
		Want: "a host name or address (empty: all addresses)", Doc: "address of the metrics server",
		set: func(a *Agent, v string) error { a.MetricsHost = v; return nil }},
	{Name: "PrometheusMetricsPort", Env: "FELIX_PROMETHEUSMETRICSPORT", Field: "prometheusMetricsPort", Default: "9091",
		Want: "a port number 1-65535", Doc: "port of the metrics server",
		set: func(a *Agent, v string) (err error) { a.MetricsPort, err = parsePort(v); return err }},
	{Name: "DataplaneApplyMinInterval", Env: "TORTIE_DATAPLANEAPPLYMININTERVAL", Default: "100ms", Live: true,
		Want: "a duration such as 100ms (0: no limit)",
		Doc:  "least time between two dataplane Applies; updates arriving in between are coalesced (Felix hard-codes a 100 ms leaky bucket)",
		set: func(a *Agent, v string) (err error) {
			a.ApplyMinInterval, err = parseNonNegativeDuration(v)
			return err
		}},
	{Name: "RouteRefreshInterval", Env: "FELIX_ROUTEREFRESHINTERVAL", Field: "routeRefreshInterval", Default: "90s", Live: true,
		Want: "a duration such as 90s (0: off)", Doc: "resync period for routes; the agent resyncs the whole dataplane at the shortest enabled refresh interval",
		set: func(a *Agent, v string) (err error) { a.RouteRefresh, err = parseNonNegativeDuration(v); return err }},
	{Name: "IptablesRefreshInterval", Env: "FELIX_IPTABLESREFRESHINTERVAL", Field: "iptablesRefreshInterval", Default: "180s", Live: true,
		Want: "a duration such as 180s (0: off)", Doc: "resync period for rules (see RouteRefreshInterval)",
		set: func(a *Agent, v string) (err error) { a.IptablesRefresh, err = parseNonNegativeDuration(v); return err }},
	{Name: "IpsetsRefreshInterval", Env: "FELIX_IPSETSREFRESHINTERVAL", Field: "ipsetsRefreshInterval", Default: "90s", Live: true,
		Want: "a duration such as 90s (0: off)", Doc: "resync period for IP sets (see RouteRefreshInterval)",
		set: func(a *Agent, v string) (err error) { a.IPSetsRefresh, err = parseNonNegativeDuration(v); return err }},
	{Name: "InterfacePrefix", Env: "FELIX_INTERFACEPREFIX", Field: "interfacePrefix", Default: DefaultInterfacePrefix,
		Want: "comma-separated interface name prefixes", Doc: "host-side workload interface prefixes",
		set: func(a *Agent, v string) error {
			a.InterfacePrefixes = splitList(v)
			if len(a.InterfacePrefixes) == 0 {
				return errors.New("no prefix given")
			}
			return nil
		}},
	{Name: "DefaultEndpointToHostAction", Env: "FELIX_DEFAULTENDPOINTTOHOSTACTION", Field: "defaultEndpointToHostAction", Default: "Drop",
		Live: true, Want: "Drop, Return or Accept", Doc: "what happens to workload traffic to the host after policy",
		set: func(a *Agent, v string) (err error) {
			a.DefaultEndpointToHostAction, err = oneOf(v, "Drop", "Return", "Accept")
			return err
		}},
	{Name: "FailsafeInboundHostPorts", Env: "FELIX_FAILSAFEINBOUNDHOSTPORTS", Field: "failsafeInboundHostPorts", Live: true,
		Default: "tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667",
		Want:    `comma-separated proto:port or proto:cidr:port ("none" for none)`, Doc: "host ports always open inbound",
		set:       func(a *Agent, v string) (err error) { a.FailsafeInbound, err = ParseProtoPorts(v); return err },
		fromField: protoPortsFromJSON},
	{Name: "FailsafeOutboundHostPorts", Env: "FELIX_FAILSAFEOUTBOUNDHOSTPORTS", Field: "failsafeOutboundHostPorts", Live: true,
		Default: "udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667",
		Want:    `comma-separated proto:port or proto:cidr:port ("none" for none)`, Doc: "host ports always open outbound",
		set:       func(a *Agent, v string) (err error) { a.FailsafeOutbound, err = ParseProtoPorts(v); return err },
		fromField: protoPortsFromJSON},
	{Name: "IPv6Support", Env: "FELIX_IPV6SUPPORT", Field: "ipv6Support", Default: "true", Want: "true or false",
		Doc: "program IPv6", set: func(a *Agent, v string) (err error) { a.IPv6Support, err = ParseBool(v); return err }},
	{Name: "VXLANEnabled", Env: "FELIX_VXLANENABLED", Field: "vxlanEnabled", Default: "", Live: true,
		Want: "true or false (unset: on when an IP pool uses VXLAN)", Doc: "force VXLAN on or off",
		set: func(a *Agent, v string) (err error) { a.VXLANEnabled, err = parseOptionalBool(v); return err }},
	{Name: "VXLANPort", Env: "FELIX_VXLANPORT", Field: "vxlanPort", Default: "4789", Want: "a port number 1-65535",
		Doc: "VXLAN UDP port", set: func(a *Agent, v string) (err error) { a.VXLANPort, err = parsePort(v); return err }},
	{Name: "VXLANVNI", Env: "FELIX_VXLANVNI", Field: "vxlanVNI", Default: "4096", Want: "an integer 1-16777215",
		Doc: "VXLAN network identifier", set: func(a *Agent, v string) (err error) { a.VXLANVNI, err = parseIntRange(v, 1, 1<<24-1); return err }},
	{Name: "VXLANMTU", Env: "FELIX_VXLANMTU", Field: "vxlanMTU", Default: "0", Live: true, Want: "an MTU (0: detect)",
		Doc: "IPv4 VXLAN device MTU", set: func(a *Agent, v string) (err error) { a.VXLANMTU, err = parseIntRange(v, 0, 65535); return err }},
	{Name: "VXLANMTUV6", Env: "FELIX_VXLANMTUV6", Field: "vxlanMTUV6", Default: "0", Live: true, Want: "an MTU (0: detect)",
		Doc: "IPv6 VXLAN device MTU", set: func(a *Agent, v string) (err error) { a.VXLANMTUV6, err = parseIntRange(v, 0, 65535); return err }},
	{Name: "IPIPEnabled", Env: "FELIX_IPIPENABLED", Field: "ipipEnabled", Default: "", Live: true,
		Want: "true or false (unset: on when an IP pool uses IPIP)", Doc: "force IPIP on or off",
		set: func(a *Agent, v string) (err error) { a.IPIPEnabled, err = parseOptionalBool(v); return err }},
	{Name: "IPIPMTU", Env: "FELIX_IPIPMTU", Field: "ipipMTU", Default: "0", Live: true, Want: "an MTU (0: detect)",
		Doc: "IPIP device MTU", set: func(a *Agent, v string) (err error) { a.IPIPMTU, err = parseIntRange(v, 0, 65535); return err }},
	{Name: "NATOutgoingAddress", Env: "FELIX_NATOUTGOINGADDRESS", Field: "natOutgoingAddress", Default: "", Live: true,
		Want: "an IP address (empty: masquerade)", Doc: "source address for NAT outgoing",
		set: func(a *Agent, v string) error {
			a.NATOutgoingAddress = netip.Addr{}
			if v == "" {
				return nil
			}
			ad, err := netip.ParseAddr(v)
			a.NATOutgoingAddress = ad
			return err
		}},
	{Name: "LogPrefix", Env: "FELIX_LOGPREFIX", Field: "logPrefix", Default: "calico-packet", Live: true,
		Want: "text", Doc: "prefix of the Log action's lines", set: func(a *Agent, v string) error { a.LogPrefix = v; return nil }},
	{Name: "IptablesFilterDenyAction", Env: "FELIX_IPTABLESFILTERDENYACTION", Default: "Drop", Live: true,
		Want: "Drop or Reject", Doc: "what the Deny action does",
		set: func(a *Agent, v string) (err error) { a.DenyAction, err = oneOf(v, "Drop", "Reject"); return err }},
}

// ParseLogLevel accepts Felix's (logrus) level names in any case.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace", "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a log level", s)
}

// ParseProtoPorts parses Felix's fail-safe port list: "tcp:22,udp:0.0.0.0/0:53", "none" or "" for none.
func ParseProtoPorts(s string) ([]dpmodel.ProtoPort, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return []dpmodel.ProtoPort{}, nil
	}
	var out []dpmodel.ProtoPort
	for _, item := range splitList(s) {
		parts := strings.Split(item, ":")
		// An IPv6 CIDR holds colons: the protocol is the first part, the port the last.
		if len(parts) < 2 {
			return nil, fmt.Errorf("%q is not proto:port", item)
		}
		p := dpmodel.ProtoPort{Protocol: strings.ToLower(parts[0])}
		if p.Protocol != "tcp" && p.Protocol != "udp" && p.Protocol != "sctp" {
			return nil, fmt.Errorf("%q: protocol must be tcp, udp or sctp", item)
		}
		port, err := strconv.ParseUint(parts[len(parts)-1], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q: bad port", item)
		}
		p.Port = uint16(port)
		if len(parts) > 2 {
			cidr := strings.Join(parts[1:len(parts)-1], ":")
			if p.Net, err = netip.ParsePrefix(cidr); err != nil {
				return nil, fmt.Errorf("%q: bad CIDR %q", item, cidr)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// protoPortsFromJSON turns FelixConfiguration's [{protocol, port, net}] into the text form.
func protoPortsFromJSON(raw json.RawMessage) (string, error) {
	var ps []struct {
		Protocol string `json:"protocol"`
		Port     uint16 `json:"port"`
		Net      string `json:"net"`
	}
	if err := json.Unmarshal(raw, &ps); err != nil {
		return "", fmt.Errorf("want a list of {protocol, port, net}: %w", err)
	}
	if len(ps) == 0 {
		return "none", nil
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if p.Net != "" {
			parts[i] = fmt.Sprintf("%s:%s:%d", proto, p.Net, p.Port)
		} else {
			parts[i] = fmt.Sprintf("%s:%d", proto, p.Port)
		}
	}
	return strings.Join(parts, ","), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty")
	}
	return nil
}

func parseOptionalBool(v string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func parseIntRange(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

func parsePort(v string) (int, error) { return parseIntRange(v, 1, 65535) }

func parseNonNegativeDuration(v string) (time.Duration, error) {
	d, err := ParseDuration(v)
	if err == nil && d < 0 {
		err = fmt.Errorf("%s is negative", d)
	}
	return d, err
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("%s is not positive", d)
	}
	return d, err
}

func oneOf(v string, choices ...string) (string, error) {
	for _, c := range choices {
		if strings.EqualFold(v, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", v, strings.Join(choices, ", "))
}
