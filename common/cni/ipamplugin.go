package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/tortie-net/tortie/common/ipam"
)

// The IPAM plugin (tortie-ipam, or calico-ipam): the same allocation the main plugin does in-process,
// for other plugins (bridge, ptp, macvlan, ...) to delegate to. It runs for any workload: CNI_ARGS
// naming a Kubernetes pod add the pod attributes and, when pods can be read, its annotations.

// IPAMAdd allocates the addresses and returns them as Calico's calico-ipam does: with their block's
// prefix length (an address asked for by name with its full length), and a route to each; a failure
// releases whatever was allocated.
func (p *Plugin) IPAMAdd(ctx context.Context, cmd *CmdArgs) (_ *types100.Result, err error) {
	p.defaults()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var undo undoStack
	defer p.guard(ctx, "ADD", &undo, &err)

	args, err := ParseArgs(cmd.Args)
	if err != nil {
		return nil, err
	}
	node, err := p.Conf.ResolveNodename(p.Host, false)
	if err != nil {
		return nil, err
	}
	// As in Add: the readiness check, the pod and IPAM's first reads in one round trip.
	sess, err := p.beginIPAM(ctx, node)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		defer sess.unlock() // before guard's rollback, which takes the lock again
	}
	pod, err := p.readyAndPod(ctx, args)
	if err != nil {
		return nil, err
	}
	req, err := addrRequestFor(p.Conf, pod, args)
	if err != nil {
		return nil, AsError(err, CodeInvalidConfig)
	}
	if len(req.NoIPAM) > 0 {
		return nil, Errorf(CodeInvalidConfig, "the %s annotation bypasses IPAM and cannot be served by the IPAM plugin", "cni.projectcalico.org/ipAddrsNoIpam")
	}
	res, release, err := p.assign(ctx, cmd.ContainerID, args, node, pod, req, sess)
	if sess != nil {
		sess.unlock()
	}
	if release != nil {
		undo.push(release)
	}
	if err != nil {
		return nil, err
	}
	out := &types100.Result{CNIVersion: types100.ImplementedSpecVersion, DNS: p.Conf.DNS}
	for _, pfx := range append(slices.Clone(res.IPv4), res.IPv6...) {
		if len(req.Specific) > 0 {
			// calico-ipam reports an address asked for by name as a host route (/32, /128).
			pfx = netip.PrefixFrom(pfx.Addr(), pfx.Addr().BitLen())
		}
		out.IPs = append(out.IPs, &types100.IPConfig{Address: *prefixToIPNet(pfx)})
		// calico-ipam returns one route per address, to the address as given in ips[] (address and
		// prefix length), for the delegating plugin to install.
		out.Routes = append(out.Routes, &cnitypes.Route{Dst: *prefixToIPNet(pfx)})
	}
	p.Log.Info("addresses assigned", "command", "ADD", "container_id", cmd.ContainerID, "handle", HandleID(p.Conf.Name, cmd.ContainerID),
		"addresses", fmt.Sprint(res.IPv4, res.IPv6))
	return out, nil
}

// IPAMDel releases the handle "<network>.<containerID>"; an unknown handle is success.
func (p *Plugin) IPAMDel(ctx context.Context, cmd *CmdArgs) (err error) {
	p.defaults()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	defer p.guard(ctx, "DEL", nil, &err)
	if err := p.releaseHandle(ctx, HandleID(p.Conf.Name, cmd.ContainerID)); err != nil {
		return AsError(err, CodeIPAMFailed)
	}
	return nil
}

// IPAMCheck verifies that the handle exists and still holds every address of prevResult (when given).
func (p *Plugin) IPAMCheck(ctx context.Context, cmd *CmdArgs) (err error) {
	p.defaults()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	defer p.guard(ctx, "CHECK", nil, &err)
	handle := HandleID(p.Conf.Name, cmd.ContainerID)
	have, err := p.IPAM.IPsByHandle(ctx, handle)
	if errors.Is(err, ipam.ErrHandleNotFound) {
		return Errorf(CodeCheckFailed, "IPAM handle %q does not exist: container %s has no addresses", handle, cmd.ContainerID)
	}
	if err != nil {
		return AsError(dsErr(fmt.Errorf("reading the allocations of IPAM handle %q: %w", handle, err)), CodeDatastoreFailed)
	}
	if p.Conf.PrevResult == nil {
		return nil
	}
	prev, err := p.prevResult()
	if err != nil {
		return err
	}
	var missing []string
	for _, ip := range prev.IPs {
		a, ok := netip.AddrFromSlice(ip.Address.IP)
		if ok && !slices.Contains(have, a.Unmap()) {
			missing = append(missing, a.Unmap().String())
		}
	}
	if len(missing) > 0 {
		return Errorf(CodeCheckFailed, "addresses %s are no longer allocated to IPAM handle %q (it holds %v)", strings.Join(missing, ", "), handle, have)
	}
	return nil
}

// IPAMGC is GC for the IPAM plugin: the in-process part of GC.
func (p *Plugin) IPAMGC(ctx context.Context, cmd *CmdArgs) error {
	return p.GC(ctx, cmd)
}

// IPAMStatus is STATUS for the IPAM plugin: the datastore answers.
func (p *Plugin) IPAMStatus(ctx context.Context, _ *CmdArgs) (err error) {
	p.defaults()
	defer p.guard(ctx, "STATUS", nil, &err)
	pctx, cancel := context.WithTimeout(ctx, p.StatusTimeout)
	defer cancel()
	if err := p.Backend.Ping(pctx); err != nil {
		return Errorf(CodePluginNotAvailable, "the %s datastore cannot be reached (within %s): %v", p.Conf.DatastoreType, p.StatusTimeout, err)
	}
	return nil
}
