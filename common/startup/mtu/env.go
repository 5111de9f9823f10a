package mtu

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/tortie-net/tortie/common/startup/autodetect"
)

// Felix's environment overrides for the MTU settings. Each also has a TORTIE_ alias (TORTIE_VXLANMTU …,
// the FELIX_ prefix replaced) that wins when both are set. The FelixConfiguration fields are ipipMTU,
// vxlanMTU, vxlanMTUV6, wireguardMTU, wireguardMTUV6 and mtuIfacePattern.
const (
	EnvIPIPMTU        = "FELIX_IPINIPMTU"
	EnvVXLANMTU       = "FELIX_VXLANMTU"
	EnvVXLANMTUV6     = "FELIX_VXLANMTUV6"
	EnvWireGuardMTU   = "FELIX_WIREGUARDMTU"
	EnvWireGuardMTUV6 = "FELIX_WIREGUARDMTUV6"
	EnvIfacePattern   = "FELIX_MTUIFACEPATTERN"
)

// lookup reads FELIX_X or its TORTIE_X alias (alias wins).
func lookup(env func(string) string, felixName string) (string, string) {
	alias := "TORTIE_" + felixName[len("FELIX_"):]
	if v, from := autodetect.Lookup(env, alias); v != "" {
		return v, from
	}
	return autodetect.Lookup(env, felixName)
}

// FromEnv overlays the configured device MTUs set in the environment onto e (values not set are left
// alone) and returns the interface pattern from FELIX_MTUIFACEPATTERN, or nil when unset. This is the
// env layer only; the agent's configuration layering (env > file > per-node > global FelixConfiguration)
// decides the final values.
func FromEnv(env func(string) string, e Encap) (Encap, *regexp.Regexp, error) {
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{EnvIPIPMTU, &e.IPIPMTU}, {EnvVXLANMTU, &e.VXLANMTU}, {EnvVXLANMTUV6, &e.VXLANMTUV6},
		{EnvWireGuardMTU, &e.WireGuardMTU}, {EnvWireGuardMTUV6, &e.WireGuardMTUV6},
	} {
		v, from := lookup(env, f.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return e, nil, fmt.Errorf("%s=%q: want an MTU in bytes between 0 (derive from the host) and 65535", from, v)
		}
		*f.dst = n
	}
	var pat *regexp.Regexp
	if v, from := lookup(env, EnvIfacePattern); v != "" {
		p, err := regexp.Compile(v)
		if err != nil {
			return e, nil, fmt.Errorf("%s=%q: not a valid regular expression (%w); the default is %s", from, v, err, DefaultIfacePattern)
		}
		pat = p
	}
	return e, pat, nil
}
