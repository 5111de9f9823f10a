package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/startup/mtu"
)

// felixSettings are the Felix settings startup needs, layered as Felix layers them: FelixConfiguration
// "default", then "node.<name>", then the environment (FELIX_*, or the TORTIE_* aliases).
type felixSettings struct {
	// ipipEnabled and vxlanEnabled force the encapsulation on or off; nil means "from the pools".
	ipipEnabled, vxlanEnabled *bool
	wireguard, wireguardV6    bool
	wireguardHostEncryption   bool
	// mtus holds the configured device MTUs (0 = derive from the host).
	mtus    mtu.Encap
	pattern *regexp.Regexp
}

// loadFelixSettings reads the FelixConfigurations and the environment into s.felix.
func (s *starter) loadFelixSettings(ctx context.Context) error {
	var f felixSettings
	for _, name := range []string{api.DefaultConfigName, felixNodeConfigPrefix + s.name} {
		obj, err := s.o.Backend.Get(ctx, key(api.KindFelixConfiguration, name))
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading FelixConfiguration %q: %w", name, err)
		}
		fc, ok := obj.(*api.FelixConfiguration)
		if !ok {
			continue
		}
		sp := fc.Spec
		if sp.IPIPEnabled != nil {
			f.ipipEnabled = boolPtr(*sp.IPIPEnabled)
		}
		if sp.VXLANEnabled != nil {
			f.vxlanEnabled = boolPtr(*sp.VXLANEnabled)
		}
		if sp.WireguardEnabled != nil {
			f.wireguard = *sp.WireguardEnabled
		}
		if sp.WireguardEnabledV6 != nil {
			f.wireguardV6 = *sp.WireguardEnabledV6
		}
		if sp.WireguardHostEncryptionEnabled != nil {
			f.wireguardHostEncryption = *sp.WireguardHostEncryptionEnabled
		}
		for _, m := range []struct {
			src *int
			dst *int
		}{
			{sp.IPIPMTU, &f.mtus.IPIPMTU}, {sp.VXLANMTU, &f.mtus.VXLANMTU}, {sp.VXLANMTUV6, &f.mtus.VXLANMTUV6},
			{sp.WireguardMTU, &f.mtus.WireGuardMTU}, {sp.WireguardMTUV6, &f.mtus.WireGuardMTUV6},
		} {
			if m.src != nil {
				*m.dst = *m.src
			}
		}
		if sp.MTUIfacePattern != "" {
			re, err := regexp.Compile(sp.MTUIfacePattern)
			if err != nil {
				s.warn(fmt.Sprintf("FelixConfiguration %q mtuIfacePattern %q is not a valid regular expression (%v); ignoring it", name, sp.MTUIfacePattern, err))
			} else {
				f.pattern = re
			}
		}
	}
	for _, b := range []struct {
		name string
		dst  **bool
	}{{EnvIPIPEnabled, &f.ipipEnabled}, {EnvVXLANEnabled, &f.vxlanEnabled}} {
		if v, _ := config.Lookup(s.o.Env, b.name); v != "" {
			on, err := config.LookupBool(s.o.Env, b.name, false)
			if err != nil {
				return err
			}
			*b.dst = &on
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{EnvWireguardEnabled, &f.wireguard}, {EnvWireguardEnabledV6, &f.wireguardV6}, {EnvWireguardHostEncryptionEnabled, &f.wireguardHostEncryption}} {
		v, err := config.LookupBool(s.o.Env, b.name, *b.dst)
		if err != nil {
			return err
		}
		*b.dst = v
	}
	mtus, pat, err := mtu.FromEnv(s.o.Env, f.mtus)
	if err != nil {
		return err
	}
	f.mtus = mtus
	if pat != nil {
		f.pattern = pat
	}
	s.felix = f
	return nil
}

func boolPtr(b bool) *bool { return &b }

// ensureMTU is step 7: the pod MTU for the encapsulations in use, written to the MTU file. As in
// Felix, IPIP and VXLAN count as in use when any pool has them enabled (whichever nodes it selects —
// traffic from this node to pods in such a pool elsewhere is encapsulated too), unless Felix
// configuration forces them (ipipEnabled / vxlanEnabled, FELIX_IPINIPENABLED / FELIX_VXLANENABLED);
// WireGuard when wireguardEnabled / wireguardEnabledV6 is set. Configured device MTUs (ipipMTU,
// vxlanMTU, … or FELIX_IPINIPMTU, FELIX_VXLANMTU, …) win over derived ones.
func (s *starter) ensureMTU(ctx context.Context) error {
	objs, _, err := s.o.Backend.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		return fmt.Errorf("listing IP pools for the MTU: %w", err)
	}
	e := s.felix.mtus
	for _, o := range objs {
		p, ok := o.(*api.IPPool)
		if !ok {
			continue
		}
		c, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			continue
		}
		if encapOn(p.Spec.IPIPMode) && c.Addr().Is4() {
			e.IPIP = true
		}
		if encapOn(p.Spec.VXLANMode) {
			if c.Addr().Is4() {
				e.VXLAN = true
			} else {
				e.VXLANV6 = true
			}
		}
	}
	if s.felix.ipipEnabled != nil {
		e.IPIP = *s.felix.ipipEnabled
	}
	if s.felix.vxlanEnabled != nil {
		e.VXLAN = *s.felix.vxlanEnabled
	}
	e.WireGuard, e.WireGuardV6 = s.felix.wireguard, s.felix.wireguardV6

	ifaces, err := s.o.Interfaces.List()
	if err != nil {
		return fmt.Errorf("listing host interfaces for the MTU: %w", err)
	}
	r := mtu.Calculate(ifaces, s.felix.pattern, e)
	if r.Warning != "" {
		s.warn(r.Warning)
	}
	s.res.Encap, s.res.MTU = e, r
	s.log.Info("pod MTU", "mtu", r.Pod, "host_mtu", r.Host, "ipip", e.IPIP, "vxlan", e.VXLAN, "vxlan_v6", e.VXLANV6,
		"wireguard", e.WireGuard, "wireguard_v6", e.WireGuardV6, "file", s.o.Files.MTUFile)
	if r.Pod <= 0 || r.Pod > 65535 {
		return fmt.Errorf("computed pod MTU %d is out of range; set the device MTUs (FELIX_VXLANMTU, FELIX_IPINIPMTU, …) explicitly", r.Pod)
	}
	changed, err := writeFileIfChanged(s.o.Files.MTUFile, []byte(strconv.Itoa(r.Pod)))
	if err != nil {
		return fmt.Errorf("writing the MTU file: %w (the CNI plugin reads it; mount its directory into the node agent)", err)
	}
	if changed {
		s.change("wrote %s (MTU %d)", s.o.Files.MTUFile, r.Pod)
	}
	return nil
}
