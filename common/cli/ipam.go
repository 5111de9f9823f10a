package cli

import (
	"context"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// newIPAMCommand is calicoctl's "ipam": show, check and release, over common/ipam.
func newIPAMCommand(s *state) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipam",
		Short: "Show IP address usage, check IPAM for leaks and inconsistencies, release addresses",
		Long: `Show how much of each IP pool and block is in use, check IPAM's records against the workload
endpoints and nodes that use addresses, and release leaked addresses, as calicoctl ipam does.

A typical repair:
  ` + s.name + ` ipam check -o report.json        # read-only; exits 0 even when it finds problems
  ` + s.name + ` ipam release --from-report report.json`,
		// NoArgs makes cobra report an unknown subcommand as such (a usage error in Main).
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newIPAMShowCommand(s), newIPAMCheckCommand(s), newIPAMReleaseCommand(s))
	return cmd
}

// ipamClient opens the datastore and returns an IPAM client over it.
func (s *state) ipamClient(cmd *cobra.Command) (*ipam.Client, error) {
	be, err := s.backend(cmd)
	if err != nil {
		return nil, err
	}
	return ipam.New(be, ipam.WithLogger(s.log)), nil
}

// ipamParseIP reads a plain IP address given to flag; anything else is a usage error.
func ipamParseIP(flag, v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, usagef("%s %q: not an IP address (give one address, such as 10.244.0.5 or fd00::5, without a prefix length)", flag, v)
	}
	return a.Unmap(), nil
}

// ipamDescribe says whose an allocation is: handle, pod, type and node.
func ipamDescribe(handle string, attrs map[string]string) string {
	parts := []string{}
	if handle != "" {
		parts = append(parts, "handle "+handle)
	} else {
		parts = append(parts, "no handle")
	}
	if pod := attrs[ipam.AttributePod]; pod != "" {
		if ns := attrs[ipam.AttributeNamespace]; ns != "" {
			pod = ns + "/" + pod
		}
		parts = append(parts, "pod "+pod)
	}
	if t := attrs[ipam.AttributeType]; t != "" {
		parts = append(parts, "type "+t)
	}
	if n := attrs[ipam.AttributeNode]; n != "" {
		parts = append(parts, "node "+n)
	}
	return strings.Join(parts, ", ")
}

// ipamAlloc is one live allocation read straight from an IPAMBlock.
type ipamAlloc struct {
	ip     netip.Addr
	handle string
	attrs  map[string]string
	seq    *uint64
}

// ipamAllocations reads every live allocation of every block, sorted by address. Damaged parts of a
// block (indices out of range) are skipped: ipam check reports them.
func ipamAllocations(ctx context.Context, be datastore.Backend) ([]ipamAlloc, error) {
	objs, _, err := be.List(ctx, datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil {
		return nil, fmt.Errorf("listing IPAM blocks: %w", err)
	}
	var out []ipamAlloc
	for _, o := range objs {
		b, ok := o.(*api.IPAMBlock)
		if !ok {
			continue
		}
		cidr, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil {
			continue
		}
		cidr = cidr.Masked()
		hostBits := cidr.Addr().BitLen() - cidr.Bits()
		for ord, idx := range b.Spec.Allocations {
			if idx == nil || *idx < 0 || *idx >= len(b.Spec.Attributes) || (hostBits < 63 && ord >= 1<<hostBits) {
				continue
			}
			at := b.Spec.Attributes[*idx]
			if at.ReleasedAt != nil {
				continue // cooling down after a release
			}
			a := ipamAlloc{ip: ipamAddrPlus(cidr.Addr(), ord), attrs: at.Secondary}
			if at.HandleID != nil {
				a.handle = *at.HandleID
			}
			if seq, ok := b.Spec.SequenceNumberForAllocation[strconv.Itoa(ord)]; ok {
				a.seq = &seq
			}
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ip.Less(out[j].ip) })
	return out, nil
}

// ipamAddrPlus returns a+n.
func ipamAddrPlus(a netip.Addr, n int) netip.Addr {
	x := new(big.Int).SetBytes(a.AsSlice())
	x.Add(x, big.NewInt(int64(n)))
	buf := x.FillBytes(make([]byte, len(a.AsSlice())))
	r, _ := netip.AddrFromSlice(buf)
	return r
}

// ipamPoolCIDRs lists the IP pools' CIDRs, for saying which pool an address is in.
func ipamPoolCIDRs(ctx context.Context, be datastore.Backend) ([]netip.Prefix, error) {
	objs, _, err := be.List(ctx, datastore.ListOptions{Kind: api.KindIPPool})
	if err != nil {
		return nil, fmt.Errorf("listing IP pools: %w", err)
	}
	var out []netip.Prefix
	for _, o := range objs {
		if p, ok := o.(*api.IPPool); ok {
			if c, err := netip.ParsePrefix(p.Spec.CIDR); err == nil {
				out = append(out, c.Masked())
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

// ipamPlural returns "1 thing" or "2 things".
func ipamPlural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
