package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/ipam"
)

// ipamCheckListLimit is how many problem addresses of one kind check lists without --show-problem-ips.
const ipamCheckListLimit = 10

type ipamCheckFlags struct {
	output       string
	showAllIPs   bool
	showProblems bool
}

func newIPAMCheckCommand(s *state) *cobra.Command {
	var f ipamCheckFlags
	cmd := &cobra.Command{
		Use:   "check [-o FILE] [--show-all-ips] [--show-problem-ips]",
		Short: "Check IPAM for leaked addresses and inconsistencies; changes nothing",
		Long: `Compare IPAM's records (blocks, block affinities, handles) with what uses addresses: workload
endpoints, and nodes' tunnel and WireGuard addresses. Report:
  - leaked addresses: allocated, but neither they nor another address of their handle is in use;
  - addresses in use in an IP pool that IPAM has not allocated, or that several owners use;
  - nodes that no longer exist but still own blocks, and stale block affinities;
  - empty blocks to release, IPAM handles without addresses or with wrong counts, damaged blocks.

The check only reads. It exits 0 when IPAM is consistent and 1 when it finds a problem (so scripts and
CI can tell); the last line counts the problems. Addresses in use outside every IP pool are shown but
are no problem.
-o FILE writes the findings as JSON for "ipam release --from-report FILE", which releases exactly what
the file lists after checking each item again.`,
		Example: fmt.Sprintf(`  %[1]s ipam check
  %[1]s ipam check --show-problem-ips
  %[1]s ipam check -o report.json && %[1]s ipam release --from-report report.json`, s.name),
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return s.runIPAMCheck(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "write the report as JSON to this file (input of ipam release --from-report)")
	fl.BoolVar(&f.showAllIPs, "show-all-ips", false, "list every allocated or in-use address and its status")
	fl.BoolVar(&f.showProblems, "show-problem-ips", false, fmt.Sprintf("list every problem address (without it, at most %d of each kind)", ipamCheckListLimit))
	return cmd
}

func (s *state) runIPAMCheck(cmd *cobra.Command, f ipamCheckFlags) error {
	if cmd.Flags().Changed("output") && strings.TrimSpace(f.output) == "" {
		return usagef("-o: give a file name for the report")
	}
	c, err := s.ipamClient(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	live, err := ipam.LivenessFromDatastore(ctx, c.Backend())
	if err != nil {
		return err
	}
	r, err := c.Check(ctx, live)
	if err != nil {
		return err
	}
	var all []ipamAlloc
	if f.showAllIPs {
		if all, err = ipamAllocations(ctx, c.Backend()); err != nil {
			return err
		}
	}
	w := s.stdout()
	problems := printIPAMCheck(w, s.name, r, live, f, all)
	if f.output != "" {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		if err := os.WriteFile(f.output, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		printf(w, "Report written to %s.\n", f.output)
		if ipamReleasable(r) {
			printf(w, "To release what it lists: %s ipam release --from-report %s\n", s.name, f.output)
		}
	} else if ipamReleasable(r) {
		printf(w, "To repair: %s ipam check -o report.json, then %s ipam release --from-report report.json\n", s.name, s.name)
	}
	printf(w, "Check complete; found %s.\n", ipamPlural(problems, "problem", "problems"))
	if problems > 0 {
		return &reportedError{summary: "IPAM check found " + ipamPlural(problems, "problem", "problems")}
	}
	return nil
}

// ipamReleasable reports whether release --from-report would act on something in r.
func ipamReleasable(r ipam.Report) bool {
	return len(r.Leaked)+len(r.OrphanNodes)+len(r.StaleAffinities)+len(r.EmptyBlocks)+len(r.HandleProblems) > 0
}

// printIPAMCheck writes the human summary of r and returns the number of problems (addresses in use
// outside every pool are information, not problems).
func printIPAMCheck(out io.Writer, name string, r ipam.Report, live ipam.Liveness, f ipamCheckFlags, all []ipamAlloc) int {
	w := &ipamParagraphs{}
	defer func() {
		w.blank()
		_, _ = io.WriteString(out, w.String())
	}()
	sum := r.Summary
	printf(w, "Checking IPAM for inconsistencies...\n\n")
	printf(w, "Found %s, %s, %s and %s.\n", ipamPlural(sum.Pools, "IP pool", "IP pools"), ipamPlural(sum.Blocks, "IPAM block", "IPAM blocks"),
		ipamPlural(sum.Affinities, "block affinity", "block affinities"), ipamPlural(sum.Handles, "IPAM handle", "IPAM handles"))
	recent := ""
	if sum.Recent > 0 {
		recent = fmt.Sprintf(", %d allocated too recently to judge", sum.Recent)
	}
	printf(w, "Found %s: %d in use, %d leaked%s.\n", ipamPlural(sum.Allocations, "allocated address", "allocated addresses"), sum.InUse, sum.Leaked, recent)
	printf(w, "Workload endpoints and nodes use %s.\n\n", ipamPlural(len(live.IPs), "address", "addresses"))

	limit := ipamCheckListLimit
	if f.showProblems || f.showAllIPs {
		limit = -1
	}
	problems := 0
	// section prints one kind of finding: a count line, up to limit items (all when limit < 0) and what
	// to do about them.
	section := func(count int, problem bool, title string, items []string, limit int, todo string) {
		if problem {
			problems += count
		}
		if count == 0 {
			printf(w, "%s: 0\n", title)
			return
		}
		w.blank()
		printf(w, "%s: %d\n", title, count)
		for i, it := range items {
			if limit >= 0 && i == limit {
				printf(w, "  ... and %d more (--show-problem-ips lists them all)\n", len(items)-limit)
				break
			}
			printf(w, "  %s\n", it)
		}
		printf(w, "  What to do: %s\n", todo)
		w.blank()
	}
	fromReport := "release them with " + name + " ipam release --from-report (see below)"

	var items []string
	for _, a := range r.Leaked {
		items = append(items, fmt.Sprintf("%s  %s", a.IP, ipamDescribe(a.Handle, a.Attrs)))
	}
	section(len(r.Leaked), true, "Leaked addresses (allocated, but neither they nor another address of their handle is in use)",
		items, limit, fromReport+", or one at a time with "+name+" ipam release --ip ADDR.")

	section(len(r.NotAllocated), true, "Addresses in use in an IP pool but not allocated in IPAM",
		ipamInUseItems(r.NotAllocated), limit,
		"IPAM may hand these addresses to another workload. Recreate their workloads so that they get allocated addresses; release cannot fix this.")
	section(len(r.MultipleOwners), true, "Addresses used by more than one workload endpoint or node",
		ipamInUseItems(r.MultipleOwners), limit,
		"only one owner can receive the traffic. Recreate all but one of the owners.")
	section(len(r.OutsidePools), false, "Addresses in use outside every IP pool (information only)",
		ipamInUseItems(r.OutsidePools), limit,
		"nothing, unless they should come from a pool: IPAM does not manage addresses outside its pools.")

	items = nil
	for _, n := range r.OrphanNodes {
		var bs []string
		for _, b := range n.Blocks {
			bs = append(bs, b.String())
		}
		items = append(items, fmt.Sprintf("node %s: %s", n.Node, strings.Join(bs, ", ")))
	}
	section(len(r.OrphanNodes), true, "Nodes that no longer exist but still own blocks", items, -1,
		"release their affinities with "+name+" ipam release --from-report (see below); addresses still allocated in those blocks stay allocated.")

	items = nil
	for _, a := range r.StaleAffinities {
		items = append(items, fmt.Sprintf("%s (node %s, %s, %s): %s", a.Name, a.Node, a.CIDR, a.State, a.Reason))
	}
	section(len(r.StaleAffinities), true, "Stale block affinities", items, -1, fromReport+"; the claim or release is finished or undone.")

	items = nil
	for _, b := range r.EmptyBlocks {
		aff := "no affinity"
		if b.Affinity != "" {
			aff = "affinity " + b.Affinity
		}
		items = append(items, fmt.Sprintf("%s (%s)", b.CIDR, aff))
	}
	section(len(r.EmptyBlocks), true, "Empty blocks to release (without affinity, or beyond the one a node keeps per IP version)",
		items, -1, fromReport+".")

	items = nil
	for _, h := range r.HandleProblems {
		switch h.Problem {
		case "counts differ":
			items = append(items, fmt.Sprintf("%s: counts differ: the handle records %s, the blocks hold %s", h.HandleID, ipamCounts(h.Recorded), ipamCounts(h.Actual)))
		case "missing":
			items = append(items, fmt.Sprintf("%s: missing: the blocks hold %s for it", h.HandleID, ipamCounts(h.Actual)))
		default:
			items = append(items, fmt.Sprintf("%s: %s", h.HandleID, h.Problem))
		}
	}
	section(len(r.HandleProblems), true, "IPAM handles with problems (no addresses, wrong counts, missing)", items, -1,
		name+" ipam release --from-report (see below) recounts each from the blocks, and deletes those without addresses.")

	items = nil
	for _, b := range r.InvalidBlocks {
		items = append(items, fmt.Sprintf("%s: %s", b.Block, strings.Join(b.Problems, "; ")))
	}
	section(len(r.InvalidBlocks), true, "Damaged blocks (nothing is allocated from them)", items, -1,
		"inspect them with "+name+" get ipamblocks -o yaml; release does not change them.")

	if f.showAllIPs {
		printIPAMAllIPs(w, r, live, all)
	}
	return problems
}

// ipamInUseItems lists addresses with their owners.
func ipamInUseItems(as []ipam.InUseAddress) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s  used by %s", a.IP, strings.Join(a.Owners, ", ")))
	}
	return out
}

// ipamCounts writes a handle's per-block counts in block order: "10.0.0.0/26: 2, 10.0.1.0/26: 1".
func ipamCounts(m map[string]int) string {
	if len(m) == 0 {
		return "nothing"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		pa, ea := netip.ParsePrefix(a)
		pb, eb := netip.ParsePrefix(b)
		if ea == nil && eb == nil {
			return pa.Addr().Compare(pb.Addr())
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// printIPAMAllIPs lists every allocated address with its status, then the addresses in use that IPAM
// has not allocated.
func printIPAMAllIPs(w *ipamParagraphs, r ipam.Report, live ipam.Liveness, all []ipamAlloc) {
	leaked := map[netip.Addr]bool{}
	for _, a := range r.Leaked {
		leaked[a.IP] = true
	}
	w.blank()
	printf(w, "All allocated addresses: %d\n", len(all))
	for _, a := range all {
		var status string
		switch owners := live.IPs[a.ip]; {
		case leaked[a.ip]:
			status = "LEAKED"
		case len(owners) > 0:
			status = "in use by " + strings.Join(owners, ", ")
		case a.handle == ipam.WindowsReservedHandle:
			status = "reserved for Windows"
		default:
			status = "kept: another address of its handle is in use"
		}
		printf(w, "  %s  %s (%s)\n", a.ip, status, ipamDescribe(a.handle, a.attrs))
	}
	var unalloc []ipam.InUseAddress
	unalloc = append(unalloc, r.NotAllocated...)
	unalloc = append(unalloc, r.OutsidePools...)
	slices.SortFunc(unalloc, func(a, b ipam.InUseAddress) int { return a.IP.Compare(b.IP) })
	w.blank()
	printf(w, "In-use addresses not allocated in IPAM: %d\n", len(unalloc))
	for _, a := range unalloc {
		printf(w, "  %s  used by %s\n", a.IP, strings.Join(a.Owners, ", "))
	}
}

// ipamParagraphs collects output and separates paragraphs with exactly one blank line.
type ipamParagraphs struct{ strings.Builder }

// blank ends the current paragraph unless it has ended already.
func (b *ipamParagraphs) blank() {
	if t := b.String(); t != "" && !strings.HasSuffix(t, "\n\n") {
		b.WriteString("\n")
	}
}
