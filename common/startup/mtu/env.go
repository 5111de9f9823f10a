package mtu

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/tortie-net/tortie/common/config"
)

// Felix's environment overrides for the MTU settings, read under common/config's alias rule
// (TORTIE_VXLANMTU over FELIX_VXLANMTU). The FelixConfiguration fields are ipipMTU,
// vxlanMTU, vxlanMTUV6, wireguardMTU, wireguardMTUV6 and mtuIfacePattern.
const (
	EnvIPIPMTU        = "FELIX_IPINIPMTU"
	EnvVXLANMTU       = "FELIX_VXLANMTU"
	EnvVXLANMTUV6     = "FELIX_VXLANMTUV6"
	EnvWireGuardMTU   = "FELIX_WIREGUARDMTU"
	EnvWireGuardMTUV6 = "FELIX_WIREGUARDMTUV6"
	EnvIfacePattern   = "FELIX_MTUIFACEPATTERN"
)

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
		v, from := config.Lookup(env, f.name)
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
	if v, from := config.Lookup(env, EnvIfacePattern); v != "" {
		p, err := regexp.Compile(v)
		if err != nil {
			return e, nil, fmt.Errorf("%s=%q: not a valid regular expression (%w); the default is %s", from, v, err, DefaultIfacePattern)
		}
		pat = p
	}
	return e, pat, nil
}
