package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/datastore"
)

// Default pool names and values (Calico's).
const (
	DefaultIPv4PoolName = "default-ipv4-ippool"
	DefaultIPv6PoolName = "default-ipv6-ippool"
	// DefaultIPv4PoolCIDR is used when neither CALICO_IPV4POOL_CIDR nor kubeadm name one; when a host
	// address lies inside it, the first of 172.16.0.0/16 … 172.31.0.0/16 that holds none is used.
	DefaultIPv4PoolCIDR = "192.168.0.0/16"
)

// PoolEnv names the variables of one family's default pool.
type PoolEnv struct {
	CIDR, BlockSize, IPIP, VXLAN, NATOutgoing, NodeSelector, DisableBGPExport string
}

// IPv4PoolEnv and IPv6PoolEnv are the variables of the default pools (IPv6 has no IPIP).
var (
	IPv4PoolEnv = PoolEnv{EnvIPv4PoolCIDR, EnvIPv4PoolBlockSize, EnvIPv4PoolIPIP, EnvIPv4PoolVXLAN,
		EnvIPv4PoolNATOutgoing, EnvIPv4PoolNodeSelector, EnvIPv4PoolDisableBGPExport}
	IPv6PoolEnv = PoolEnv{EnvIPv6PoolCIDR, EnvIPv6PoolBlockSize, "", EnvIPv6PoolVXLAN,
		EnvIPv6PoolNATOutgoing, EnvIPv6PoolNodeSelector, EnvIPv6PoolDisableBGPExport}
)

// poolSpec is a default pool as the environment describes it.
type poolSpec struct {
	family     int
	disabled   bool // CIDR "none"
	pool       *api.IPPool
	cidrSource string
}

// poolInputs are the inputs besides the environment.
type poolInputs struct {
	kubeadm       *kubeadmConfig
	kubeadmSource string
	// hostAddrs are the host's addresses, for the default IPv4 CIDR's overlap check; nil skips it.
	hostAddrs []netip.Addr
	rand      io.Reader
}

// parsePoolEnv builds one family's default pool from the environment, validated. Every variable is
// checked even when no pool will be created, so that a typo is reported on the first start rather than
// on the day the pools are deleted. Errors name the variable, its value and the fix.
func parsePoolEnv(env func(string) string, family int, in poolInputs) (poolSpec, error) {
	vars, name, defBlock := IPv4PoolEnv, DefaultIPv4PoolName, api.DefaultIPv4BlockSize
	if family == 6 {
		vars, name, defBlock = IPv6PoolEnv, DefaultIPv6PoolName, api.DefaultIPv6BlockSize
	}
	ps := poolSpec{family: family}

	cidrStr, from := config.Lookup(env, vars.CIDR)
	if strings.EqualFold(cidrStr, "none") {
		ps.disabled, ps.cidrSource = true, from+"=none"
		return ps, nil
	}
	var cidr netip.Prefix
	switch {
	case cidrStr != "":
		p, err := parseCIDR(cidrStr, family)
		if err != nil {
			return ps, fmt.Errorf("%s=%q: %w; set it to an IPv%d CIDR such as %s, or to none for no default IPv%d pool",
				from, cidrStr, err, family, exampleCIDR(family), family)
		}
		cidr, ps.cidrSource = p, from
	case in.kubeadm != nil && kubeadmSubnet(in.kubeadm, family) != "":
		v := kubeadmSubnet(in.kubeadm, family)
		p, err := parseCIDR(v, family)
		if err != nil {
			return ps, fmt.Errorf("%s is %q: %w; set %s to override it", in.kubeadmSource, v, err, vars.CIDR)
		}
		cidr, ps.cidrSource = p, in.kubeadmSource
	case family == 4:
		cidr, ps.cidrSource = defaultIPv4CIDR(in.hostAddrs), "default"
	default:
		p, err := randomULA(in.rand)
		if err != nil {
			return ps, fmt.Errorf("generating a random IPv6 ULA /48 for the default IPv6 pool: %w; set %s", err, vars.CIDR)
		}
		cidr, ps.cidrSource = p, "random ULA"
	}

	blockSize := defBlock
	if v, from := config.Lookup(env, vars.BlockSize); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return ps, fmt.Errorf("%s=%q is not a number: %s", from, v, blockSizeFix(vars.BlockSize, family))
		}
		blockSize = n
	}
	ipip := api.EncapNever
	if vars.IPIP != "" {
		m, err := parseEncapMode(env, vars.IPIP)
		if err != nil {
			return ps, err
		}
		ipip = m
	}
	vxlan, err := parseEncapMode(env, vars.VXLAN)
	if err != nil {
		return ps, err
	}
	nat, err := config.LookupBool(env, vars.NATOutgoing, family == 4)
	if err != nil {
		return ps, err
	}
	noExport, err := config.LookupBool(env, vars.DisableBGPExport, false)
	if err != nil {
		return ps, err
	}
	selector, _ := config.Lookup(env, vars.NodeSelector)

	pool := api.NewIPPool()
	pool.Name = name
	pool.Spec = api.IPPoolSpec{
		CIDR:             cidr.String(),
		BlockSize:        blockSize,
		IPIPMode:         ipip,
		VXLANMode:        vxlan,
		NATOutgoing:      nat,
		NodeSelector:     selector,
		DisableBGPExport: noExport,
	}
	api.SetDefaults(pool)
	if err := api.Validate(pool); err != nil {
		return ps, poolValidationError(env, err, vars, ps.cidrSource, family)
	}
	ps.pool = pool
	return ps, nil
}

func kubeadmSubnet(k *kubeadmConfig, family int) string {
	if family == 4 {
		return k.PodSubnetV4
	}
	return k.PodSubnetV6
}

// parseCIDR parses a CIDR of the family. Host bits are dropped (10.1.2.3/16 means 10.1.0.0/16), as
// in Calico.
func parseCIDR(s string, family int) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR")
	}
	if p.Addr().Is4In6() || p.Addr().Is4() != (family == 4) {
		return netip.Prefix{}, fmt.Errorf("not an IPv%d CIDR", family)
	}
	return p.Masked(), nil
}

func exampleCIDR(family int) string {
	if family == 6 {
		return "fd00:10:244::/48"
	}
	return "10.244.0.0/16"
}

func blockSizeFix(varName string, family int) string {
	if family == 6 {
		return fmt.Sprintf("set %s to a prefix length between 116 and 128 (default %d)", varName, api.DefaultIPv6BlockSize)
	}
	return fmt.Sprintf("set %s to a prefix length between 20 and 32 (default %d)", varName, api.DefaultIPv4BlockSize)
}

// parseEncapMode reads CALICO_IPV4POOL_IPIP / _VXLAN: Always, CrossSubnet (or Cross-Subnet) or Never
// (or Off), any case; empty means Never.
func parseEncapMode(env func(string) string, name string) (api.EncapMode, error) {
	v, from := config.Lookup(env, name)
	switch strings.ToLower(v) {
	case "", "never", "off":
		return api.EncapNever, nil
	case "always":
		return api.EncapAlways, nil
	case "crosssubnet", "cross-subnet":
		return api.EncapCrossSubnet, nil
	}
	return "", fmt.Errorf("%s=%q is not an encapsulation mode: use Always, CrossSubnet or Never (unset means Never)", from, v)
}

// poolValidationError turns the pool's validation errors into errors about the variables that set
// the offending fields.
func poolValidationError(env func(string) string, err error, vars PoolEnv, cidrSource string, family int) error {
	var verr *api.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	describe := func(name string) string {
		if name == "" {
			return ""
		}
		v, from := config.Lookup(env, name)
		if from == "" {
			return name + " (unset)"
		}
		return fmt.Sprintf("%s=%q", from, v)
	}
	var msgs []string
	for _, fe := range verr.Errors {
		var what, fix string
		switch fe.Field {
		case "spec.cidr":
			what = describe(vars.CIDR)
			if !strings.HasPrefix(cidrSource, "CALICO_") && !strings.HasPrefix(cidrSource, "TORTIE_") {
				what = cidrSource
			}
			fix = fmt.Sprintf("choose a CIDR with %s, or a block size with %s", vars.CIDR, vars.BlockSize)
		case "spec.blockSize":
			what, fix = describe(vars.BlockSize), blockSizeFix(vars.BlockSize, family)
		case "spec.ipipMode":
			what, fix = describe(vars.IPIP)+" with "+describe(vars.VXLAN), "set one of them to Never"
		case "spec.vxlanMode":
			what, fix = describe(vars.VXLAN), "use Always, CrossSubnet or Never"
		case "spec.nodeSelector":
			what, fix = describe(vars.NodeSelector), "write a selector such as all() or kubernetes.io/os == 'linux'"
		default:
			what, fix = "the default IPv"+strconv.Itoa(family)+" pool", "check the CALICO_IPV"+strconv.Itoa(family)+"POOL_* variables"
		}
		msgs = append(msgs, fmt.Sprintf("%s: %s: %s; %s", what, fe.Field, fe.Reason, fix))
	}
	return fmt.Errorf("invalid default IPv%d pool: %s", family, strings.Join(msgs, "; "))
}

// defaultIPv4CIDR is Calico's choice: 192.168.0.0/16, unless a host address lies inside it; then the
// first of 172.16.0.0/16 … 172.31.0.0/16 that holds no host address (192.168.0.0/16 if all do).
func defaultIPv4CIDR(hostAddrs []netip.Addr) netip.Prefix {
	preferred := netip.MustParsePrefix(DefaultIPv4PoolCIDR)
	free := func(p netip.Prefix) bool {
		for _, a := range hostAddrs {
			if p.Contains(a) {
				return false
			}
		}
		return true
	}
	if free(preferred) {
		return preferred
	}
	for i := 16; i <= 31; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16)
		if free(p) {
			return p
		}
	}
	return preferred
}

// randomULA returns a random RFC 4193 unique local /48: fd00::/8 followed by 40 random bits.
func randomULA(r io.Reader) (netip.Prefix, error) {
	var b [16]byte
	b[0] = 0xfd
	if _, err := io.ReadFull(r, b[1:6]); err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 48), nil
}

// ensurePools is step 4.
func (s *starter) ensurePools(ctx context.Context) error {
	noDefault, err := config.LookupBool(s.o.Env, EnvNoDefaultPools, false)
	if err != nil {
		return err
	}
	if noDefault {
		var set []string
		for _, n := range []string{EnvIPv4PoolCIDR, EnvIPv6PoolCIDR} {
			if v, from := config.Lookup(s.o.Env, n); v != "" {
				set = append(set, fmt.Sprintf("%s=%s", from, v))
			}
		}
		if len(set) > 0 {
			return fmt.Errorf("%s=true conflicts with %s: unset %s to create no default pools, or unset %s",
				EnvNoDefaultPools, strings.Join(set, " and "), EnvNoDefaultPools, strings.Join(set, ", "))
		}
		s.log.Info("not creating default IP pools", "variable", EnvNoDefaultPools)
		s.res.Pools = append(s.res.Pools,
			PoolResult{Family: 4, Name: DefaultIPv4PoolName, Action: PoolNoDefaultPools},
			PoolResult{Family: 6, Name: DefaultIPv6PoolName, Action: PoolNoDefaultPools})
		return nil
	}

	in := poolInputs{kubeadm: s.kubeadm, kubeadmSource: s.kubeadmSource, rand: s.o.Rand}
	if ifaces, err := s.o.Interfaces.List(); err == nil {
		for _, ifc := range ifaces {
			for _, p := range ifc.Addrs {
				in.hostAddrs = append(in.hostAddrs, p.Addr().Unmap())
			}
		}
	} else {
		s.warn(fmt.Sprintf("cannot list host interfaces to check the default IPv4 pool against host addresses: %v", err))
	}
	specs := make([]poolSpec, 0, 2)
	for _, fam := range []int{4, 6} {
		ps, err := parsePoolEnv(s.o.Env, fam, in)
		if err != nil {
			return err
		}
		specs = append(specs, ps)
	}
	ipv6On, err := config.LookupBool(s.o.Env, EnvIPv6Support, true)
	if err != nil {
		return err
	}
	ipv6On = ipv6On && s.o.IPv6Supported()

	objs, _, err := s.o.Backend.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		return fmt.Errorf("listing IP pools: %w", err)
	}
	present := map[int]bool{}
	for _, o := range objs {
		p, ok := o.(*api.IPPool)
		if !ok {
			continue
		}
		c, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			s.warn(fmt.Sprintf("IP pool %q has an invalid CIDR %q; ignoring it", p.Name, p.Spec.CIDR))
			continue
		}
		if c.Addr().Is4() {
			present[4] = true
		} else {
			present[6] = true
		}
	}

	for _, ps := range specs {
		r := PoolResult{Family: ps.family, Name: DefaultIPv4PoolName, CIDRSource: ps.cidrSource}
		if ps.family == 6 {
			r.Name = DefaultIPv6PoolName
		}
		if ps.pool != nil {
			r.CIDR = ps.pool.Spec.CIDR
		}
		switch {
		case ps.disabled:
			r.Action = PoolDisabledByEnv
		case present[ps.family]:
			r.Action = PoolExists
		case ps.family == 6 && !ipv6On:
			r.Action = PoolIPv6Unsupported
		default:
			_, err := s.o.Backend.Create(ctx, ps.pool)
			switch {
			case err == nil:
				r.Action = PoolCreated
				s.change("created IPPool %s (%s from %s, ipipMode %s, vxlanMode %s, natOutgoing %t)", ps.pool.Name, ps.pool.Spec.CIDR,
					ps.cidrSource, ps.pool.Spec.IPIPMode, ps.pool.Spec.VXLANMode, ps.pool.Spec.NATOutgoing)
			case errors.Is(err, datastore.ErrAlreadyExists):
				r.Action = PoolExists // another node created it first
			default:
				return fmt.Errorf("creating the default IPv%d pool %s (%s): %w", ps.family, ps.pool.Name, ps.pool.Spec.CIDR, err)
			}
		}
		s.log.Info("default IP pool", "family", ps.family, "pool", r.Name, "cidr", r.CIDR, "cidr_source", r.CIDRSource, "action", string(r.Action))
		s.res.Pools = append(s.res.Pools, r)
	}
	return nil
}
