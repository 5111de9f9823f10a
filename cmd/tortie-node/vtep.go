package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/startup/node"
	"github.com/tortie-net/tortie/platform"
	windp "github.com/tortie-net/tortie/windows/dataplane"
)

// Backoff between attempts to write the VTEP to the Node.
const (
	vtepRetryMin = time.Second
	vtepRetryMax = 30 * time.Second
)

// publishWindowsVTEP makes the Windows dataplane's VTEP (its overlay network's gateway and router MAC)
// reach this node's Node resource, where other nodes' calculations find it. The dataplane hands each
// new VTEP over without blocking the agent's loop; a goroutine, running until ctx ends, writes the
// latest one, retrying failed writes with backoff (a newer VTEP replaces one still being retried).
// Other dataplanes have nothing to publish: this is then a no-op.
func publishWindowsVTEP(ctx context.Context, dp platform.Dataplane, be datastore.Backend, nodeName string, log *slog.Logger) {
	wdp, ok := dp.(*windp.Dataplane)
	if !ok {
		return
	}
	p := newVTEPPublisher(func(ctx context.Context, v windp.VTEP) (bool, error) {
		return node.PublishWindowsVTEP(ctx, be, nodeName, v.TunnelAddress, v.MAC, log)
	}, log)
	wdp.SetVTEPHandler(p.offer)
	go p.run(ctx)
}

// vtepPublisher holds the latest VTEP not yet written (a one-slot mailbox: offering never blocks, the
// newest value wins) and writes it from run.
type vtepPublisher struct {
	write func(context.Context, windp.VTEP) (bool, error)
	log   *slog.Logger
	slot  chan windp.VTEP
	// retryMin and retryMax bound the backoff after a failed write.
	retryMin, retryMax time.Duration
}

func newVTEPPublisher(write func(context.Context, windp.VTEP) (bool, error), log *slog.Logger) *vtepPublisher {
	return &vtepPublisher{write: write, log: log, slot: make(chan windp.VTEP, 1), retryMin: vtepRetryMin, retryMax: vtepRetryMax}
}

// offer replaces the pending VTEP with v. It never blocks.
func (p *vtepPublisher) offer(v windp.VTEP) {
	for {
		select {
		case p.slot <- v:
			return
		default:
		}
		select {
		case <-p.slot: // drop the older pending value
		default:
		}
	}
}

// run writes each offered VTEP until ctx ends.
func (p *vtepPublisher) run(ctx context.Context) {
	for {
		var v windp.VTEP
		select {
		case <-ctx.Done():
			return
		case v = <-p.slot:
		}
		wait := p.retryMin
		for {
			wrote, err := p.write(ctx, v)
			if err == nil {
				if wrote {
					p.log.Info("published this node's VXLAN tunnel endpoint", "tunnel_address", v.TunnelAddress.String(), "mac", v.MAC)
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("could not publish this node's VXLAN tunnel endpoint; other nodes cannot reach its pods until it is; retrying",
				"tunnel_address", v.TunnelAddress.String(), "mac", v.MAC, "retry_in", wait.String(), "error", err.Error())
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				wait = min(2*wait, p.retryMax)
			case newer := <-p.slot: // a newer VTEP: write that one at once
				t.Stop()
				v, wait = newer, p.retryMin
			}
		}
	}
}
