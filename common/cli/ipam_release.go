package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/ipam"
)

type ipamReleaseFlags struct {
	ip         string
	fromReport string
	force      bool
}

func newIPAMReleaseCommand(s *state) *cobra.Command {
	var f ipamReleaseFlags
	cmd := &cobra.Command{
		Use:   "release (--ip ADDR | --from-report FILE)",
		Short: "Release one allocated address, or what an ipam check report lists",
		Long: `Release IPAM allocations.

--ip ADDR releases one address. It fails if the address is not allocated, and refuses while a workload
endpoint or node uses the address (IPAM would hand it to a second workload) unless --force is given.

--from-report FILE acts on a report written by "ipam check -o FILE": it releases the leaked addresses,
recounts or deletes the IPAM handles, releases the block affinities of nodes that no longer exist, stale
affinities and empty blocks that the report lists, and nothing else. Every item is checked again first: an
address that is now in use, or was released and allocated again since the check, and an object that changed
since the check, are skipped and listed with the reason. No datastore lock is needed.`,
		Example: fmt.Sprintf(`  %[1]s ipam release --ip 10.244.0.5
  %[1]s ipam check -o report.json && %[1]s ipam release --from-report report.json`, s.name),
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return s.runIPAMRelease(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ip, "ip", "", "the address to release")
	fl.StringVar(&f.fromReport, "from-report", "", "release what this report of ipam check -o lists")
	fl.BoolVar(&f.force, "force", false, "with --ip: release even while a workload endpoint or node uses the address; "+
		"with --from-report: accepted for calicoctl compatibility (no lock is needed)")
	return cmd
}

func (s *state) runIPAMRelease(cmd *cobra.Command, f ipamReleaseFlags) error {
	byIP, byReport := cmd.Flags().Changed("ip"), cmd.Flags().Changed("from-report")
	switch {
	case byIP && byReport:
		return usagef("give --ip or --from-report, not both")
	case !byIP && !byReport:
		return usagef("give --ip ADDR or --from-report FILE")
	case byIP:
		ip, err := ipamParseIP("--ip", f.ip)
		if err != nil {
			return err
		}
		return s.releaseIPAMAddress(cmd, ip, f.force)
	default:
		if strings.TrimSpace(f.fromReport) == "" {
			return usagef("--from-report: give the file that ipam check -o wrote")
		}
		// The report is read and validated before the datastore is contacted.
		r, err := readIPAMReport(f.fromReport)
		if err != nil {
			return err
		}
		return s.releaseIPAMReport(cmd, f.fromReport, r)
	}
}

func (s *state) releaseIPAMAddress(cmd *cobra.Command, ip netip.Addr, force bool) error {
	c, err := s.ipamClient(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	a, err := c.GetAssignmentAttributes(ctx, ip)
	if errors.Is(err, ipam.ErrNotAllocated) {
		return fmt.Errorf("IP address %s is not assigned", ip)
	}
	if err != nil {
		return err
	}
	if !force {
		live, err := ipam.LivenessFromDatastore(ctx, c.Backend())
		if err != nil {
			return err
		}
		if owners := live.IPs[ip]; len(owners) > 0 {
			return fmt.Errorf("IP address %s is in use by %s: releasing it would let IPAM give it to a second workload. "+
				"Delete the workload first, or pass --force", ip, strings.Join(owners, ", "))
		}
	}
	// Guarded by the handle and sequence number just read: if the address was released and handed out
	// again in between, the new owner keeps it.
	un, err := c.ReleaseIPs(ctx, ipam.ReleaseOptions{Address: ip, Handle: a.Handle, SequenceNumber: a.SequenceNumber})
	if errors.Is(err, ipam.ErrBadSequenceNumber) || errors.Is(err, ipam.ErrHandleMismatch) {
		return fmt.Errorf("IP address %s was released and allocated again while this command ran; nothing was released: %w", ip, err)
	}
	if err != nil {
		return err
	}
	if len(un) > 0 {
		return fmt.Errorf("IP address %s is not assigned (it was released while this command ran)", ip)
	}
	printf(s.stdout(), "Successfully released IP address %s (%s)\n", ip, ipamDescribe(a.Handle, a.Attrs))
	return nil
}

// readIPAMReport reads a report written by ipam check -o, strictly: a file that is not one (calicoctl's
// report, another JSON document) is rejected rather than half understood.
func readIPAMReport(path string) (ipam.Report, error) {
	var r ipam.Report
	data, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("reading the report: %w", err)
	}
	bad := func(err error) error {
		return fmt.Errorf("%s: not a report written by ipam check -o: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, bad(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return r, bad(errors.New("unexpected data after the report"))
	}
	if r.CheckedAt.IsZero() {
		return r, bad(errors.New("checkedAt is missing"))
	}
	for i, a := range r.Leaked {
		if !a.IP.IsValid() {
			return r, bad(fmt.Errorf("leaked[%d]: no ip", i))
		}
	}
	for i, h := range r.HandleProblems {
		if h.HandleID == "" {
			return r, bad(fmt.Errorf("handleProblems[%d]: no handleID", i))
		}
	}
	for i, n := range r.OrphanNodes {
		if n.Node == "" {
			return r, bad(fmt.Errorf("orphanNodes[%d]: no node", i))
		}
	}
	for i, a := range r.StaleAffinities {
		if a.Name == "" || !a.CIDR.IsValid() {
			return r, bad(fmt.Errorf("staleAffinities[%d]: no name or cidr", i))
		}
	}
	for i, b := range r.EmptyBlocks {
		if !b.CIDR.IsValid() {
			return r, bad(fmt.Errorf("emptyBlocks[%d]: no cidr", i))
		}
	}
	return r, nil
}

// ipamLeakKey identifies one allocation: a release is exact only if address, handle and sequence
// number all match.
type ipamLeakKey struct {
	ip     netip.Addr
	handle string
	seq    string
}

// ipamKey is the ipamLeakKey of an allocation.
func ipamKey(ip netip.Addr, handle string, seq *uint64) ipamLeakKey {
	k := ipamLeakKey{ip: ip, handle: handle, seq: "none"}
	if seq != nil {
		k.seq = fmt.Sprint(*seq)
	}
	return k
}

// releaseIPAMReport releases what r lists, after a fresh check: only what that check still finds, at
// the same revisions, is passed to ReleaseFromReport, which checks each item once more as it writes.
func (s *state) releaseIPAMReport(cmd *cobra.Command, path string, r ipam.Report) error {
	c, err := s.ipamClient(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	live, err := ipam.LivenessFromDatastore(ctx, c.Backend())
	if err != nil {
		return err
	}
	now, err := c.Check(ctx, live)
	if err != nil {
		return err
	}

	todo := ipam.Report{CheckedAt: r.CheckedAt}
	var skipped []string

	// Leaked addresses: still leaked, the same allocation (handle and sequence number).
	stillLeaked := map[ipamLeakKey]bool{}
	for _, a := range now.Leaked {
		stillLeaked[ipamKey(a.IP, a.Handle, a.SequenceNumber)] = true
	}
	var current map[netip.Addr]ipamAlloc // read only when a leak is skipped, to say why
	for _, a := range r.Leaked {
		if stillLeaked[ipamKey(a.IP, a.Handle, a.SequenceNumber)] {
			todo.Leaked = append(todo.Leaked, a)
			continue
		}
		if current == nil {
			all, err := ipamAllocations(ctx, c.Backend())
			if err != nil {
				return err
			}
			current = map[netip.Addr]ipamAlloc{}
			for _, x := range all {
				current[x.ip] = x
			}
		}
		cur, allocated := current[a.IP]
		var why string
		switch {
		case len(live.IPs[a.IP]) > 0:
			why = "now in use by " + strings.Join(live.IPs[a.IP], ", ")
		case !allocated:
			why = "already released"
		case ipamKey(cur.ip, cur.handle, cur.seq) != ipamKey(a.IP, a.Handle, a.SequenceNumber):
			why = "released and allocated again since the check (now " + ipamDescribe(cur.handle, cur.attrs) + ")"
		default:
			why = "no longer leaked: another address of its handle is in use"
		}
		skipped = append(skipped, fmt.Sprintf("address %s (%s): %s", a.IP, ipamDescribe(a.Handle, a.Attrs), why))
	}

	// Handles: the same problem at the same revision.
	type handleKey struct{ id, problem, rev string }
	sameHandle := map[handleKey]bool{}
	for _, h := range now.HandleProblems {
		sameHandle[handleKey{h.HandleID, h.Problem, h.Revision}] = true
	}
	for _, h := range r.HandleProblems {
		if sameHandle[handleKey{h.HandleID, h.Problem, h.Revision}] {
			todo.HandleProblems = append(todo.HandleProblems, h)
		} else {
			skipped = append(skipped, fmt.Sprintf("IPAM handle %s (%s): changed since the check", h.HandleID, h.Problem))
		}
	}

	// Orphan nodes: the node is still gone, and the block still affine to it.
	orphanBlocks := map[string]map[netip.Prefix]bool{}
	for _, n := range now.OrphanNodes {
		orphanBlocks[n.Node] = map[netip.Prefix]bool{}
		for _, b := range n.Blocks {
			orphanBlocks[n.Node][b] = true
		}
	}
	for _, n := range r.OrphanNodes {
		keep := ipam.NodeBlocks{Node: n.Node}
		for _, b := range n.Blocks {
			switch {
			case live.Nodes[n.Node]:
				skipped = append(skipped, fmt.Sprintf("block %s of node %s: the node exists again", b, n.Node))
			case !orphanBlocks[n.Node][b]:
				skipped = append(skipped, fmt.Sprintf("block %s of node %s: no longer affine to the node", b, n.Node))
			default:
				keep.Blocks = append(keep.Blocks, b)
			}
		}
		if len(keep.Blocks) > 0 {
			todo.OrphanNodes = append(todo.OrphanNodes, keep)
		}
	}

	// Stale affinities and empty blocks: the same object at the same revision.
	sameAff := map[string]bool{}
	for _, a := range now.StaleAffinities {
		sameAff[a.Name+"@"+a.Revision] = true
	}
	for _, a := range r.StaleAffinities {
		if sameAff[a.Name+"@"+a.Revision] {
			todo.StaleAffinities = append(todo.StaleAffinities, a)
		} else {
			skipped = append(skipped, fmt.Sprintf("block affinity %s: changed since the check", a.Name))
		}
	}
	sameBlock := map[string]bool{}
	for _, b := range now.EmptyBlocks {
		sameBlock[b.CIDR.String()+"@"+b.Revision] = true
	}
	for _, b := range r.EmptyBlocks {
		if sameBlock[b.CIDR.String()+"@"+b.Revision] {
			todo.EmptyBlocks = append(todo.EmptyBlocks, b)
		} else {
			skipped = append(skipped, fmt.Sprintf("empty block %s: changed since the check", b.CIDR))
		}
	}

	sum, relErr := c.ReleaseFromReport(ctx, todo)

	// ReleaseFromReport counts; find which addresses it left (changed in the moment between the check
	// above and the release) so that the lists below are exact.
	released := todo.Leaked
	if sum.Released < len(todo.Leaked) {
		released = nil
		for _, a := range todo.Leaked {
			cur, err := c.GetAssignmentAttributes(ctx, a.IP)
			if err == nil && ipamKey(cur.IP, cur.Handle, cur.SequenceNumber) == ipamKey(a.IP, a.Handle, a.SequenceNumber) {
				skipped = append(skipped, fmt.Sprintf("address %s (%s): not released (it changed during the release)", a.IP, ipamDescribe(a.Handle, a.Attrs)))
				continue
			}
			released = append(released, a)
		}
	}

	w := s.stdout()
	printf(w, "Releasing what %s lists, after checking each item again.\n", path)
	printf(w, "Released %s.\n", ipamPlural(len(released), "leaked address", "leaked addresses"))
	for _, a := range released {
		printf(w, "  %s  %s\n", a.IP, ipamDescribe(a.Handle, a.Attrs))
	}
	printf(w, "Repaired %s.\n", ipamPlural(sum.HandlesRepaired, "IPAM handle", "IPAM handles"))
	printf(w, "Released %s and %s.\n", ipamPlural(sum.AffinitiesReleased, "block affinity", "block affinities"),
		ipamPlural(sum.BlocksReleased, "empty block", "empty blocks"))
	if n := len(todo.HandleProblems) - sum.HandlesRepaired; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%s: changed during the release", ipamPlural(n, "IPAM handle", "IPAM handles")))
	}
	if n := len(todo.StaleAffinities) + ipamBlockCount(todo.OrphanNodes) - sum.AffinitiesReleased; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%s: changed during the release", ipamPlural(n, "block affinity", "block affinities")))
	}
	if n := len(todo.EmptyBlocks) - sum.BlocksReleased; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%s: changed during the release", ipamPlural(n, "empty block", "empty blocks")))
	}
	printf(w, "Skipped %s.\n", ipamPlural(len(skipped), "item", "items"))
	for _, sk := range skipped {
		printf(w, "  %s\n", sk)
	}
	if n := len(r.NotAllocated) + len(r.MultipleOwners) + len(r.InvalidBlocks); n > 0 {
		printf(w, "Not acted on: %s that release cannot fix (addresses in use but not allocated, addresses with several owners, damaged blocks); see ipam check.\n",
			ipamPlural(n, "finding", "findings"))
	}
	if relErr != nil {
		// ReleaseFromReport joins its errors, one per line.
		for _, line := range strings.Split(relErr.Error(), "\n") {
			printf(s.stderr(), "Failed to release: %s\n", line)
		}
		return &reportedError{"some items of the report could not be released"}
	}
	return nil
}

// ipamBlockCount counts the blocks of orphan nodes (one affinity each).
func ipamBlockCount(ns []ipam.NodeBlocks) int {
	n := 0
	for _, x := range ns {
		n += len(x.Blocks)
	}
	return n
}
