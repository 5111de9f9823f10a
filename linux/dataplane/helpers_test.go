//go:build linux

package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/cnitest"
	"github.com/tortie-net/tortie/linux/ipsets"
	"github.com/tortie-net/tortie/linux/iptables"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, iptables, ipset)")
	}
}

// nsExec runs commands inside n.
func nsExec(n ns.NetNS) iptables.Exec {
	return iptables.Exec{Do: func(f func() error) error { return n.Do(func(ns.NetNS) error { return f() }) }}
}

// failingRunner fails the next restore when armed (the Retry check).
type failingRunner struct {
	iptables.Runner
	armed atomic.Bool
}

func (f *failingRunner) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	if (strings.HasSuffix(name, "-restore") || (name == "ipset" && len(args) > 0 && args[0] == "restore")) && f.armed.CompareAndSwap(true, false) {
		return nil, fmt.Errorf("%s: injected failure", name)
	}
	return f.Runner.Run(ctx, name, args, stdin)
}

// kernelView is what iptables-save shows of tortie's rules: per table, owned chains with their rules'
// hashes, and per built-in chain the hashes of tortie's rules when they are at the top ("!" otherwise).
type kernelView map[tableKey]map[string][]string

func readKernel(ctx context.Context, r iptables.Runner, b iptables.Backend) (kernelView, error) {
	out := kernelView{}
	for _, fam := range []int{4, 6} {
		for _, tbl := range iptables.Tables {
			text, err := r.Run(ctx, iptables.Command(b, fam, "save"), []string{"-t", tbl}, nil)
			if err != nil {
				return nil, err
			}
			k := tableKey{tbl, fam}
			chains := map[string][]string{}
			pos := map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(string(text)))
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				l := sc.Text()
				if strings.HasPrefix(l, ":") {
					name, _, _ := strings.Cut(l[1:], " ")
					if iptables.IsOwned(name) {
						chains[name] = []string{}
					}
					continue
				}
				if !strings.HasPrefix(l, "-A ") {
					continue
				}
				chain, _, _ := strings.Cut(l[3:], " ")
				hash := ""
				if _, after, ok := strings.Cut(l, config.RuleCommentPrefix); ok {
					hash, _, _ = strings.Cut(after, "\"")
					hash, _, _ = strings.Cut(hash, " ")
				}
				if iptables.IsOwned(chain) {
					chains[chain] = append(chains[chain], hash)
					continue
				}
				i := pos[chain]
				pos[chain]++
				if hash != "" {
					key := "hook " + chain
					if i != len(chains[key]) {
						hash = "!" + hash
					}
					chains[key] = append(chains[key], hash)
				}
			}
			if len(chains) > 0 {
				out[k] = chains
			}
		}
	}
	return out, nil
}

// expectedView is the kernelView a rendering should produce.
func expectedView(h *hostState) kernelView {
	out := kernelView{}
	for k, t := range h.Tables {
		chains := map[string][]string{}
		for name, rules := range t.Chains {
			chains[name] = iptables.RuleHashes(name, rules)
		}
		for b, rules := range t.Hooks {
			chains["hook "+b] = iptables.RuleHashes(b, rules)
		}
		out[k] = chains
	}
	return out
}

// parseMember reads a member as ipset save prints it.
func parseMember(s string) (dpmodel.Member, error) {
	if a, rest, ok := strings.Cut(s, ","); ok {
		proto, port, _ := strings.Cut(rest, ":")
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return dpmodel.Member{}, err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return dpmodel.Member{}, err
		}
		num := map[string]uint8{"tcp": 6, "udp": 17, "sctp": 132}[proto]
		return dpmodel.Member{Net: netip.PrefixFrom(addr, addr.BitLen()), Protocol: num, Port: uint16(p)}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return dpmodel.Member{Net: p}, err
	}
	a, err := netip.ParseAddr(s)
	return dpmodel.HostMember(a), err
}

// setsView turns tortie's selector IP sets (the kernel's or a rendering's) into dpmodel IP sets named
// by their kernel names.
func setsView(sets map[string]ipsets.Set, s *dpmodel.State) error {
	for name, set := range sets {
		if !strings.HasPrefix(name, config.IPSetPrefix+"4s") && !strings.HasPrefix(name, config.IPSetPrefix+"6s") {
			continue
		}
		typ := dpmodel.IPSetNet
		if set.Type == ipsets.HashIPPort {
			typ = dpmodel.IPSetIPPort
		}
		var ms []dpmodel.Member
		for _, m := range set.Members {
			mem, err := parseMember(m)
			if err != nil {
				return fmt.Errorf("IP set %s member %q: %w", name, m, err)
			}
			ms = append(ms, mem)
		}
		if err := s.Apply(dpmodel.IPSetUpdate{ID: name, Type: typ, Members: ms}); err != nil {
			return err
		}
	}
	return nil
}

// chainsView adds the endpoints, policies and profiles whose chains exist (filter, IPv4) to s.
func chainsView(chains map[string][]string, s *dpmodel.State) error {
	for name := range chains {
		var u dpmodel.Update
		switch {
		case strings.HasPrefix(name, config.ChainPrefix+"tw-"):
			iface := strings.TrimPrefix(name, config.ChainPrefix+"tw-")
			u = dpmodel.WorkloadEndpointUpdate{ID: dpmodel.WorkloadEndpointID{Name: iface}, Endpoint: dpmodel.WorkloadEndpoint{InterfaceName: iface}}
		case strings.HasPrefix(name, config.ChainPrefix+"pi-"):
			u = dpmodel.PolicyUpdate{ID: dpmodel.PolicyID{Name: strings.TrimPrefix(name, config.ChainPrefix+"pi-")}}
		case strings.HasPrefix(name, config.ChainPrefix+"pri-"):
			u = dpmodel.ProfileUpdate{ID: strings.TrimPrefix(name, config.ChainPrefix+"pri-")}
		case strings.HasPrefix(name, config.ChainPrefix+"fh-") || name == config.ChainPrefix+"fhany":
			u = dpmodel.HostEndpointUpdate{ID: name}
		default:
			continue
		}
		if err := s.Apply(u); err != nil {
			return err
		}
	}
	return nil
}

// project is what hostView reads back of a desired state.
func project(s *dpmodel.State) *dpmodel.State {
	out := dpmodel.NewState()
	h := render(s)
	if err := setsView(h.Sets, out); err != nil {
		panic(err)
	}
	all := map[string][]string{}
	for k, t := range h.Tables {
		if k.Family == 4 {
			for c, r := range t.Chains {
				all[c] = r
			}
		}
	}
	if err := chainsView(all, out); err != nil {
		panic(err)
	}
	return out
}

// hostView reads the host back: tortie's selector IP sets with their members and the endpoints,
// policies and profiles that have chains; and it checks that every chain and hook rule in the kernel
// is exactly the rendering of shadow (the desired state the dataplane was given), when the kernel
// holds any of tortie's rules.
func hostView(ctx context.Context, r iptables.Runner, b iptables.Backend, shadow *dpmodel.State) (*dpmodel.State, error) {
	out := dpmodel.NewState()
	sets, err := ipsets.New(r, nil).Read(ctx)
	if err != nil {
		return nil, err
	}
	if err := setsView(sets, out); err != nil {
		return nil, err
	}
	kv, err := readKernel(ctx, r, b)
	if err != nil {
		return nil, err
	}
	all := map[string][]string{}
	for k, chains := range kv {
		if k.Family == 4 {
			for c, h := range chains {
				all[c] = h
			}
		}
	}
	if err := chainsView(all, out); err != nil {
		return nil, err
	}
	if len(kv) > 0 {
		h := render(shadow)
		if d := cmp.Diff(expectedView(h), kv); d != "" {
			return nil, fmt.Errorf("the kernel's rules differ from the rendering of the desired state (-want +got):\n%s", d)
		}
		var want []string
		for name := range h.Sets {
			want = append(want, name)
		}
		var got []string
		for name := range sets {
			got = append(got, name)
		}
		slices.Sort(want)
		slices.Sort(got)
		if d := cmp.Diff(want, got); d != "" {
			return nil, fmt.Errorf("the kernel's IP sets differ from the rendering (-want +got):\n%s", d)
		}
		for name, s := range h.Sets {
			if !cmp.Equal(s.Members, sets[name].Members, cmp.Transformer("sort", func(in []string) []string {
				out := slices.Clone(in)
				slices.Sort(out)
				return out
			})) {
				return nil, fmt.Errorf("IP set %s: kernel %v, want %v", name, sets[name].Members, s.Members)
			}
		}
	}
	return out, nil
}

// newNS returns a fresh network namespace and a runner inside it.
func newNS(t testing.TB) (ns.NetNS, iptables.Exec) {
	t.Helper()
	needRoot(t)
	n := cnitest.NewNS(t)
	return n, nsExec(n)
}
