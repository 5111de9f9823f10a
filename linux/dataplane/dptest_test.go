//go:build linux

package dataplane

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/dpmodel"
	"github.com/tortie-net/tortie/linux/iptables"
	"github.com/tortie-net/tortie/platform/dptest"
)

// recorder keeps a copy of the desired state the dataplane was given, for hostView's check.
type recorder struct {
	*Dataplane
	shadow *dpmodel.State
}

func (r *recorder) OnUpdate(u dpmodel.Update) {
	_ = r.shadow.Apply(u)
	r.Dataplane.OnUpdate(u)
}

func newDptestInstance(b iptables.Backend) dptest.Factory {
	return func(t *testing.T) dptest.Instance {
		_, r := newNS(t)
		fr := &failingRunner{Runner: r}
		dp := &recorder{Dataplane: New(Options{Runner: fr, Backend: string(b)}), shadow: dpmodel.NewState()}
		return dptest.Instance{
			Dataplane: dp,
			Project:   project,
			Host:      func(ctx context.Context) (*dpmodel.State, error) { return hostView(ctx, r, b, dp.shadow) },
			Writes:    dp.Writes,
			Drift: func(ctx context.Context, rnd *rand.Rand) error {
				kv, err := readKernel(ctx, r, b)
				if err != nil {
					return err
				}
				var chains []string
				for c, rules := range kv[tableKey{"filter", 4}] {
					if strings.HasPrefix(c, config.ChainPrefix) && len(rules) > 0 {
						chains = append(chains, c)
					}
				}
				ipt := iptables.Command(b, 4, "")
				sets, err := dp.sets.Read(ctx)
				if err != nil {
					return err
				}
				switch rnd.IntN(4) {
				case 0: // a rule of ours deleted
					c := chains[rnd.IntN(len(chains))]
					_, err = r.Run(ctx, ipt, []string{"-D", c, "1"}, nil)
				case 1: // a chain of ours flushed
					c := chains[rnd.IntN(len(chains))]
					_, err = r.Run(ctx, ipt, []string{"-F", c}, nil)
				case 2: // another program inserts above our hook (its rule must stay)
					_, err = r.Run(ctx, ipt, []string{"-I", "FORWARD", "1", "-p", "tcp", "--dport", "7", "-j", "ACCEPT"}, nil)
				default: // a set of ours flushed
					for name, s := range sets {
						if len(s.Members) > 0 {
							_, err = r.Run(ctx, "ipset", []string{"flush", name}, nil)
							break
						}
					}
				}
				return err
			},
			FailNextApply: func() { fr.armed.Store(true) },
		}
	}
}

// TestDataplaneConformance runs platform/dptest's generic checks (random state sequences, idempotence,
// drift repair, retry, cleanup) against this dataplane in a network namespace with the real iptables
// (both backends) and ipset: after every step the kernel's rules must be exactly the rendering of the
// desired state, and its IP sets the desired members.
func TestDataplaneConformance(t *testing.T) {
	for _, b := range []iptables.Backend{iptables.NFT, iptables.Legacy} {
		t.Run(string(b), func(t *testing.T) {
			dptest.Run(t, newDptestInstance(b), dptest.Options{Sequences: 6})
		})
	}
}
