package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/ipam"
)

type ipamShowFlags struct {
	showBlocks bool
	ip         string
	output     string
}

func newIPAMShowCommand(s *state) *cobra.Command {
	var f ipamShowFlags
	cmd := &cobra.Command{
		Use:   "show [--show-blocks | --ip ADDR] [-o table|json]",
		Short: "Show IP address usage per pool (and block), or the allocation of one address",
		Long: `Show, for each IP pool, how many addresses it holds, how many are in use and how many are free,
as calicoctl ipam show does. --show-blocks adds one row per allocation block with its affinity (the node
that owns it). --ip ADDR says whether one address is allocated, and to whom.

In use counts allocated addresses, including addresses still cooling down after a release
(IPAMConfig ipCooldownSeconds). Free excludes addresses an IPReservation keeps from use; when there are
such addresses an IPS RESERVED column shows them.

-o json prints {"pools":[{"name","cidr","size","inUse","reserved","free"}...]} and, with --show-blocks,
"blocks":[{"cidr","pool","affinity","size","inUse","reserved","free"}...] (pool is the pool's CIDR).`,
		Example: fmt.Sprintf(`  %[1]s ipam show
  %[1]s ipam show --show-blocks
  %[1]s ipam show --ip 10.244.0.5
  %[1]s ipam show -o json`, s.name),
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return s.runIPAMShow(cmd, f) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.showBlocks, "show-blocks", false, "also show each allocation block")
	fl.StringVar(&f.ip, "ip", "", "show whether this address is allocated, and its handle and attributes")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	return cmd
}

func (s *state) runIPAMShow(cmd *cobra.Command, f ipamShowFlags) error {
	format := strings.ToLower(f.output)
	if format != "table" && format != "json" {
		return usagef("-o %s: unknown output format; use table or json", f.output)
	}
	if f.showBlocks && cmd.Flags().Changed("ip") {
		return usagef("give --show-blocks or --ip, not both")
	}
	var ip netip.Addr
	if cmd.Flags().Changed("ip") {
		var err error
		if ip, err = ipamParseIP("--ip", f.ip); err != nil {
			return err
		}
	}
	c, err := s.ipamClient(cmd)
	if err != nil {
		return err
	}
	if ip.IsValid() {
		return s.showIPAMAddress(cmd, c, ip, format)
	}
	pools, err := c.GetUtilization(cmd.Context(), ipam.UtilizationArgs{})
	if err != nil {
		return err
	}
	for i := range pools {
		slices.SortFunc(pools[i].Blocks, func(a, b ipam.BlockUtilization) int { return a.CIDR.Addr().Compare(b.CIDR.Addr()) })
	}
	if format == "json" {
		return printStructured(s.stdout(), "json", ipamUsageJSON(pools, f.showBlocks))
	}
	return writeIPAMTable(s.stdout(), ipamUsageTable(pools, f.showBlocks))
}

// ipamPoolJSON and ipamBlockJSON are the -o json shapes; the field names are part of the interface.
type ipamPoolJSON struct {
	Name     string   `json:"name"`
	CIDR     string   `json:"cidr"`
	Disabled bool     `json:"disabled,omitempty"`
	Size     *big.Int `json:"size"`
	InUse    *big.Int `json:"inUse"`
	Reserved *big.Int `json:"reserved"`
	Free     *big.Int `json:"free"`
}

type ipamBlockJSON struct {
	CIDR     string `json:"cidr"`
	Pool     string `json:"pool"`
	Affinity string `json:"affinity"`
	Size     int    `json:"size"`
	InUse    int    `json:"inUse"`
	Reserved int    `json:"reserved"`
	Free     int    `json:"free"`
}

type ipamUsage struct {
	Pools  []ipamPoolJSON   `json:"pools"`
	Blocks *[]ipamBlockJSON `json:"blocks,omitempty"`
}

func ipamUsageJSON(pools []ipam.PoolUtilization, showBlocks bool) ipamUsage {
	u := ipamUsage{Pools: []ipamPoolJSON{}}
	var blocks []ipamBlockJSON
	for _, p := range pools {
		u.Pools = append(u.Pools, ipamPoolJSON{Name: p.Name, CIDR: p.CIDR.String(), Disabled: p.Disabled,
			Size: p.Capacity, InUse: p.InUse, Reserved: p.Reserved, Free: p.Available})
		for _, b := range p.Blocks {
			blocks = append(blocks, ipamBlockJSON{CIDR: b.CIDR.String(), Pool: p.CIDR.String(), Affinity: b.Affinity,
				Size: b.Capacity, InUse: b.InUse, Reserved: b.Reserved, Free: b.Available})
		}
	}
	if showBlocks {
		if blocks == nil {
			blocks = []ipamBlockJSON{}
		}
		u.Blocks = &blocks
	}
	return u
}

// ipamUsageTable is calicoctl's table: GROUPING CIDR IPS TOTAL IPS IN USE IPS FREE, with IPS RESERVED
// when reservations keep addresses from use and AFFINITY with --show-blocks.
func ipamUsageTable(pools []ipam.PoolUtilization, showBlocks bool) ipamTable {
	reserved := false
	for _, p := range pools {
		reserved = reserved || p.Reserved.Sign() > 0
	}
	t := ipamTable{header: []string{"GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE"}, right: []bool{false, false, true, false}}
	if reserved {
		t.header = append(t.header, "IPS RESERVED")
		t.right = append(t.right, false)
	}
	t.header = append(t.header, "IPS FREE")
	t.right = append(t.right, false)
	if showBlocks {
		t.header = append(t.header, "AFFINITY")
		t.right = append(t.right, false)
	}
	row := func(grouping, cidr string, total, inUse, resv, free *big.Int, affinity string) {
		r := []string{grouping, cidr, total.String(), ipamPercent(inUse, total)}
		if reserved {
			r = append(r, ipamPercent(resv, total))
		}
		r = append(r, ipamPercent(free, total))
		if showBlocks {
			r = append(r, affinity)
		}
		t.rows = append(t.rows, r)
	}
	for _, p := range pools {
		grouping := "IP Pool"
		if p.Disabled {
			grouping = "IP Pool (disabled)"
		}
		row(grouping, p.CIDR.String(), p.Capacity, p.InUse, p.Reserved, p.Available, "")
		if !showBlocks {
			continue
		}
		for _, b := range p.Blocks {
			big64 := func(n int) *big.Int { return big.NewInt(int64(n)) }
			row("Block", b.CIDR.String(), big64(b.Capacity), big64(b.InUse), big64(b.Reserved), big64(b.Available), b.Affinity)
		}
	}
	return t
}

// ipamPercent formats n as "n (p%)" of total, rounded as calicoctl rounds.
func ipamPercent(n, total *big.Int) string {
	if total.Sign() == 0 {
		return n.String()
	}
	pct, _ := new(big.Rat).SetFrac(new(big.Int).Mul(n, big.NewInt(100)), total).Float64()
	return fmt.Sprintf("%s (%.0f%%)", n, pct)
}

// ipamAddressJSON is -o json of show --ip.
type ipamAddressJSON struct {
	IP             string            `json:"ip"`
	InUse          bool              `json:"inUse"`
	Pool           string            `json:"pool,omitempty"`
	Block          string            `json:"block,omitempty"`
	Affinity       string            `json:"affinity,omitempty"`
	Handle         string            `json:"handle,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	SequenceNumber *uint64           `json:"sequenceNumber,omitempty"`
}

func (s *state) showIPAMAddress(cmd *cobra.Command, c *ipam.Client, ip netip.Addr, format string) error {
	ctx := cmd.Context()
	pools, err := ipamPoolCIDRs(ctx, c.Backend())
	if err != nil {
		return err
	}
	out := ipamAddressJSON{IP: ip.String()}
	for _, p := range pools {
		if p.Contains(ip) {
			out.Pool = p.String()
			break
		}
	}
	a, err := c.GetAssignmentAttributes(ctx, ip)
	switch {
	case errors.Is(err, ipam.ErrNotAllocated):
	case err != nil:
		return err
	default:
		out.InUse = true
		out.Block, out.Affinity, out.Handle, out.Attributes, out.SequenceNumber = a.Block.String(), a.Affinity, a.Handle, a.Attrs, a.SequenceNumber
	}
	w := s.stdout()
	if format == "json" {
		return printStructured(w, "json", out)
	}
	if !out.InUse {
		where := ""
		if out.Pool == "" {
			where = " (no IP pool contains it)"
		}
		printf(w, "IP %s is not assigned%s\n", ip, where)
		return nil
	}
	printf(w, "IP %s is in use\n", ip)
	if out.Handle != "" {
		printf(w, "Handle ID: %s\n", out.Handle)
	} else {
		printf(w, "Handle ID: (none)\n")
	}
	aff := out.Affinity
	if aff == "" {
		aff = "none"
	}
	printf(w, "Block: %s (affinity: %s)\n", out.Block, aff)
	if len(out.Attributes) == 0 {
		printf(w, "No attributes defined\n")
		return nil
	}
	printf(w, "Attributes:\n")
	for _, k := range slices.Sorted(maps.Keys(out.Attributes)) {
		printf(w, "  %s: %s\n", k, out.Attributes[k])
	}
	return nil
}

// ipamTable is a table drawn with borders, as calicoctl draws its ipam tables.
type ipamTable struct {
	header []string
	right  []bool // right-align the column's cells (headers are centred)
	rows   [][]string
}

func writeIPAMTable(w io.Writer, t ipamTable) error {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func() {
		for _, wd := range widths {
			b.WriteString("+" + strings.Repeat("-", wd+2))
		}
		b.WriteString("+\n")
	}
	cells := func(vals []string, align func(i int) string) {
		for i, v := range vals {
			gap := widths[i] - utf8.RuneCountInString(v)
			left := 0
			switch align(i) {
			case "right":
				left = gap
			case "centre":
				left = gap / 2
			}
			b.WriteString("| " + strings.Repeat(" ", left) + v + strings.Repeat(" ", gap-left) + " ")
		}
		b.WriteString("|\n")
	}
	line()
	cells(t.header, func(int) string { return "centre" })
	line()
	for _, r := range t.rows {
		cells(r, func(i int) string {
			if t.right[i] {
				return "right"
			}
			return "left"
		})
	}
	line()
	_, err := io.WriteString(w, b.String())
	return err
}
