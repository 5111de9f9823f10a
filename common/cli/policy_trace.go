package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/calc"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/common/dpmodel/dpeval"
)

func newPolicyCommand(s *state) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Explain policy: trace which tier, policy and rule decide a packet",
		Args:  argsRange(0, 0),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPolicyTraceCommand(s))
	return cmd
}

type traceFlags struct {
	src, dst string
	proto    string
	port     int
	srcPort  int
	icmpType int
	icmpCode int
	output   string
}

func newPolicyTraceCommand(s *state) *cobra.Command {
	var f traceFlags
	cmd := &cobra.Command{
		Use:   "trace --src NS/POD|IP --dst NS/POD|IP --proto TCP|UDP|SCTP|ICMP [--port N]",
		Short: "Show whether a packet is allowed, and which tier, policy and rule decided",
		Long: `Compute the verdict for the first packet of a flow from the datastore's current resources, the way the
nodes do: egress policy at the source endpoint (on its node) and ingress policy at the destination endpoint
(on its node), each through the tiers in order, listing every policy consulted, the rule that decided, or
the tier's default action, or the profile. A side that is not a tortie endpoint (an address outside the
cluster) allows. The flow is allowed when both sides allow it.

--src and --dst are a pod as NAMESPACE/POD, or an address (a pod's, a host endpoint's expected IP, or
any other address). --port is required for TCP, UDP and SCTP; for ICMP use --icmp-type and --icmp-code.`,
		Example: fmt.Sprintf(`  %[1]s policy trace --src shop/frontend-0 --dst shop/db-0 --proto TCP --port 5432
  %[1]s policy trace --src 203.0.113.9 --dst shop/frontend-0 --proto TCP --port 443 -o json
  %[1]s policy trace --src shop/frontend-0 --dst 10.65.0.9 --proto ICMP --icmp-type 8`, s.name),
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return s.runPolicyTrace(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.src, "src", "", "source: NAMESPACE/POD or an IP address (required)")
	fl.StringVar(&f.dst, "dst", "", "destination: NAMESPACE/POD or an IP address (required)")
	fl.StringVar(&f.proto, "proto", "TCP", "protocol: TCP, UDP, SCTP or ICMP")
	fl.IntVar(&f.port, "port", -1, "destination port (TCP, UDP, SCTP)")
	fl.IntVar(&f.srcPort, "src-port", 0, "source port")
	fl.IntVar(&f.icmpType, "icmp-type", 8, "ICMP type (ICMP)")
	fl.IntVar(&f.icmpCode, "icmp-code", 0, "ICMP code (ICMP)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

// traceKinds are the kinds the calculation reads for policy.
var traceKinds = []string{
	api.KindTier, api.KindProfile, api.KindNetworkPolicy, api.KindGlobalNetworkPolicy, api.KindNetworkSet,
	api.KindGlobalNetworkSet, api.KindHostEndpoint, api.KindWorkloadEndpoint,
}

// traceEnd is one end of the traced flow.
type traceEnd struct {
	arg      string
	addr     netip.Addr
	node     string // "" when not a tortie endpoint
	endpoint string // "WorkloadEndpoint ns/name", "HostEndpoint name"
}

// TraceSide is one side's verdict in -o json.
type TraceSide struct {
	Endpoint string `json:"endpoint,omitempty"`
	Node     string `json:"node,omitempty"`
	Verdict  string `json:"verdict"`
	dpeval.Result
}

// TraceOutput is the -o json document.
type TraceOutput struct {
	Verdict  string    `json:"verdict"`
	Packet   string    `json:"packet"`
	Egress   TraceSide `json:"egress"`
	Ingress  TraceSide `json:"ingress"`
	Problems []string  `json:"problems,omitempty"`
}

func (s *state) runPolicyTrace(cmd *cobra.Command, f traceFlags) error {
	if f.src == "" || f.dst == "" {
		return usagef("policy trace: --src and --dst are required")
	}
	format := strings.ToLower(f.output)
	if format != "text" && format != "json" {
		return usagef("policy trace: -o %q: use text or json", f.output)
	}
	pkt := dpeval.Packet{}
	switch strings.ToUpper(f.proto) {
	case "TCP":
		pkt.Protocol = 6
	case "UDP":
		pkt.Protocol = 17
	case "SCTP":
		pkt.Protocol = 132
	case "ICMP":
		pkt.Protocol = 1
	default:
		return usagef("policy trace: --proto %q: use TCP, UDP, SCTP or ICMP", f.proto)
	}
	if pkt.Protocol == 1 {
		if f.icmpType < 0 || f.icmpType > 255 || f.icmpCode < 0 || f.icmpCode > 255 {
			return usagef("policy trace: --icmp-type and --icmp-code must be 0-255")
		}
		pkt.ICMPType, pkt.ICMPCode = uint8(f.icmpType), uint8(f.icmpCode)
	} else {
		if f.port < 0 || f.port > 65535 {
			return usagef("policy trace: --port 0-65535 is required for %s", strings.ToUpper(f.proto))
		}
		if f.srcPort < 0 || f.srcPort > 65535 {
			return usagef("policy trace: --src-port must be 0-65535")
		}
		pkt.DstPort, pkt.SrcPort = uint16(f.port), uint16(f.srcPort)
	}
	be, err := s.backend(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	updates, err := traceResources(ctx, be)
	if err != nil {
		return err
	}
	src, err := resolveTraceEnd(f.src, "--src", updates)
	if err != nil {
		return err
	}
	dst, err := resolveTraceEnd(f.dst, "--dst", updates)
	if err != nil {
		return err
	}
	if src.addr.Is4() != dst.addr.Is4() {
		return usagef("policy trace: --src %s and --dst %s are not of the same IP family", src.addr, dst.addr)
	}
	pkt.Src, pkt.Dst = src.addr, dst.addr
	out := TraceOutput{Packet: pkt.String()}
	problems := map[string]bool{}
	side := func(end traceEnd, dir dpeval.Direction) TraceSide {
		if end.node == "" {
			return TraceSide{Verdict: "Allow", Result: dpeval.Result{Verdict: dpmodel.Allow, Decision: "not-a-tortie-endpoint"}}
		}
		c := calc.New(calc.Config{NodeName: end.node})
		st := dpmodel.NewState()
		if err := st.ApplyAll(c.OnUpdates(updates)); err != nil {
			// The calculation's output always keeps the contract; this is a bug worth reporting as such.
			return TraceSide{Endpoint: end.endpoint, Node: end.node, Verdict: "Deny",
				Result: dpeval.Result{Verdict: dpmodel.Deny, Decision: "internal error: " + err.Error()}}
		}
		for _, p := range c.Problems() {
			problems[p.String()] = true
		}
		res, _ := dpeval.Side(st, dir, pkt)
		return TraceSide{Endpoint: end.endpoint, Node: end.node, Verdict: res.Verdict.String(), Result: res}
	}
	out.Egress = side(src, dpeval.Egress)
	out.Ingress = side(dst, dpeval.Ingress)
	out.Verdict = "Deny"
	if out.Egress.Verdict == "Allow" && out.Ingress.Verdict == "Allow" {
		out.Verdict = "Allow"
	}
	out.Problems = slices.Sorted(maps.Keys(problems))
	if format == "json" {
		enc := json.NewEncoder(s.stdout())
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		return nil
	}
	printTrace(s.stdout(), out, src, dst)
	return nil
}

// traceResources lists what the calculation needs, as a snapshot of the syncer's stream.
func traceResources(ctx context.Context, be datastore.Backend) ([]datastore.Update, error) {
	var out []datastore.Update
	for _, kind := range traceKinds {
		objs, _, err := be.List(ctx, datastore.ListOptions{Kind: kind})
		if err != nil {
			if errors.Is(err, datastore.ErrUnsupported) {
				continue
			}
			return nil, fmt.Errorf("listing %s resources: %w", kind, err)
		}
		for _, o := range objs {
			k, err := datastore.KeyOf(o)
			if err != nil {
				return nil, err
			}
			out = append(out, datastore.Update{Type: datastore.UpdateNew, Key: k, Value: o})
		}
	}
	return out, nil
}

// resolveTraceEnd finds a pod (NAMESPACE/POD) or an address among the endpoints.
func resolveTraceEnd(arg, flag string, updates []datastore.Update) (traceEnd, error) {
	end := traceEnd{arg: arg}
	if a, err := netip.ParseAddr(arg); err == nil {
		end.addr = a.Unmap()
		for _, u := range updates {
			switch o := u.Value.(type) {
			case *api.WorkloadEndpoint:
				for _, n := range o.Spec.IPNetworks {
					if p, err := netip.ParsePrefix(n); err == nil && p.Contains(end.addr) {
						end.node, end.endpoint = o.Spec.Node, "WorkloadEndpoint "+o.Namespace+"/"+o.Name
						return end, nil
					}
				}
			case *api.HostEndpoint:
				for _, ip := range o.Spec.ExpectedIPs {
					if ip == end.addr.String() {
						end.node, end.endpoint = o.Spec.Node, "HostEndpoint "+o.Name
						return end, nil
					}
				}
			}
		}
		return end, nil
	}
	ns, pod, ok := strings.Cut(arg, "/")
	if !ok || ns == "" || pod == "" {
		return end, usagef("policy trace: %s %q is neither NAMESPACE/POD nor an IP address", flag, arg)
	}
	for _, u := range updates {
		w, ok := u.Value.(*api.WorkloadEndpoint)
		if !ok || w.Namespace != ns || (w.Spec.Pod != pod && w.Spec.Workload != pod && w.Name != pod) {
			continue
		}
		for _, n := range w.Spec.IPNetworks {
			if p, err := netip.ParsePrefix(n); err == nil {
				end.addr, end.node, end.endpoint = p.Addr(), w.Spec.Node, "WorkloadEndpoint "+w.Namespace+"/"+w.Name
				if end.addr.Is4() {
					return end, nil
				}
			}
		}
		if end.addr.IsValid() {
			return end, nil
		}
		return end, fmt.Errorf("policy trace: %s %s: the pod's endpoint has no address yet (is it running?)", flag, arg)
	}
	return end, fmt.Errorf("policy trace: %s %s: no such pod endpoint (check the namespace and the pod name with 'get workloadendpoints -n %s')", flag, arg, ns)
}

func printTrace(w io.Writer, out TraceOutput, src, dst traceEnd) {
	printf(w, "Verdict: %s\nPacket:  %s\n", out.Verdict, out.Packet)
	printSide := func(title string, end traceEnd, sd TraceSide) {
		printf(w, "\n%s at %s: %s\n", title, end.arg, sd.Verdict)
		if end.node == "" {
			printf(w, "  %s is not a tortie endpoint: no policy applies on this side\n", end.addr)
			return
		}
		printf(w, "  endpoint %s on node %s\n", sd.Endpoint, sd.Node)
		for _, st := range sd.Steps {
			where := "profile " + st.Policy
			if !st.Profile {
				where = "tier " + st.Tier + ", policy " + st.Policy
			}
			what := "no rule matched"
			if st.Rule >= 0 {
				what = fmt.Sprintf("rule %d: %s", st.Rule, st.Action)
			}
			if len(st.Logged) > 0 {
				what += fmt.Sprintf(" (logged by rules %v)", st.Logged)
			}
			if st.Invalid != "" {
				what += " [invalid: " + st.Invalid + "]"
			}
			printf(w, "  %s: %s\n", where, what)
		}
		switch sd.Decision {
		case "rule":
			printf(w, "  decided by a rule in tier %s\n", sd.Tier)
		case "tier-default":
			printf(w, "  decided by the default action (Deny) of tier %s: its policies apply but none matched\n", sd.Tier)
		case "profile":
			printf(w, "  decided by a profile (no tier decided)\n")
		case "no-profile-matched":
			printf(w, "  denied: no tier decided and no profile rule matched\n")
		default:
			printf(w, "  decided by: %s\n", sd.Decision)
		}
	}
	printSide("Egress", src, out.Egress)
	printSide("Ingress", dst, out.Ingress)
	if len(out.Problems) > 0 {
		printf(w, "\nProblems (the affected endpoints fail closed):\n")
		for _, p := range out.Problems {
			printf(w, "  %s\n", p)
		}
	}
}
