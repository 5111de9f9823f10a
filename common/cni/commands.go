package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// Del is CNI DEL. It is idempotent: it succeeds when called twice, when the network namespace is
// gone, and after an ADD that crashed half way. In order, it clears the WorkloadEndpoint (only when
// it belongs to this container: a DEL for a pod's old sandbox must not clear the new one's), removes
// the interface, and releases the handle "<network>.<containerID>". Every step runs even when an
// earlier one failed; the first failure decides the code (11 when the datastore could not be reached,
// so the runtime retries). A container that joined another's network (PodNetworkJoin) is only
// detached.
func (p *Plugin) Del(ctx context.Context, cmd *CmdArgs) (err error) {
	p.defaults()
	start := p.Now()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	defer p.guard(ctx, "DEL", nil, &err)

	args, err := ParseArgs(cmd.Args)
	if err != nil {
		return err
	}
	node, err := p.Conf.ResolveNodename(p.Host, false)
	if err != nil {
		return err
	}
	log := p.Log.With("command", "DEL", "container_id", cmd.ContainerID, "pod", args.PodNamespace+"/"+args.PodName, "node", node)

	if owner, hostIf := p.joins(cmd.Netns); owner != "" {
		// A container that joined another's network owns no endpoint and no address: detach it only.
		if err := p.PodNetwork.Teardown(ctx, cmd.Netns, cmd.IfName, hostIf); err != nil {
			return AsError(fmt.Errorf("detaching container %s from the network of container %s: %w", cmd.ContainerID, owner, err), CodeDataplaneFailed)
		}
		log.Info("container left its pod's network", "joined", owner, "duration", p.Now().Sub(start).String())
		return nil
	}

	var errs []error
	if args.IsPod() {
		if err := p.deleteEndpoint(ctx, node, cmd, args); err != nil {
			errs = append(errs, err)
		}
	}
	if p.PodNetwork != nil {
		hostIf := ""
		if args.IsPod() {
			hostIf = p.PodNetwork.HostIfName(args.PodNamespace, args.PodName)
		}
		if err := p.PodNetwork.Teardown(ctx, cmd.Netns, cmd.IfName, hostIf); err != nil {
			errs = append(errs, AsError(fmt.Errorf("removing the interface: %w", err), CodeDataplaneFailed))
		}
	}
	if err := p.release(ctx, cmd.ContainerID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return joinErrors(errs, CodeInternal)
	}
	log.Info("pod network removed", "duration", p.Now().Sub(start).String())
	return nil
}

// release frees the container's addresses, through the in-process IPAM or the delegated plugin.
func (p *Plugin) release(ctx context.Context, containerID string) error {
	if !p.Conf.IPAM.InProcess() {
		if err := p.Delegate.Del(ctx, p.Conf.IPAM.Type, p.Conf.Bytes); err != nil {
			return AsError(fmt.Errorf("IPAM plugin %s: %w", p.Conf.IPAM.Type, err), CodeIPAMFailed)
		}
		return nil
	}
	if err := p.releaseHandle(ctx, HandleID(p.Conf.Name, containerID)); err != nil {
		return AsError(err, CodeIPAMFailed)
	}
	return nil
}

// deleteEndpoint clears the WorkloadEndpoint when its containerID is this container's (or empty). A
// missing endpoint, or pod, is success.
func (p *Plugin) deleteEndpoint(ctx context.Context, node string, cmd *CmdArgs, args Args) error {
	key := datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: args.PodNamespace, Name: p.endpointName(node, args, cmd.IfName)}
	for attempt := 0; ; attempt++ {
		obj, err := p.Backend.Get(ctx, key)
		if errors.Is(err, datastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return AsError(dsErr(fmt.Errorf("reading WorkloadEndpoint %s/%s: %w", key.Namespace, key.Name, err)), CodeDatastoreFailed)
		}
		wep, ok := obj.(*api.WorkloadEndpoint)
		if !ok {
			return Errorf(CodeInternal, "WorkloadEndpoint %s/%s has unexpected type %T", key.Namespace, key.Name, obj)
		}
		cid := wep.Spec.ContainerID
		if cid != "" && cid != cmd.ContainerID {
			p.Log.Info("keeping the WorkloadEndpoint: it belongs to a newer sandbox", "endpoint", key.Name,
				"endpoint_container_id", cid, "container_id", cmd.ContainerID)
			return nil
		}
		if cid == "" && p.Conf.DatastoreType == DatastoreKubernetes {
			return nil // already cleared
		}
		_, err = p.Backend.Delete(ctx, key, obj.GetResourceVersion())
		switch {
		case err == nil, errors.Is(err, datastore.ErrNotFound):
			return nil
		case errors.Is(err, datastore.ErrConflict) && attempt < 5:
			continue
		}
		return AsError(dsErr(fmt.Errorf("deleting WorkloadEndpoint %s/%s: %w", key.Namespace, key.Name, err)), CodeDatastoreFailed)
	}
}

// Check is CNI CHECK: the interface, its addresses and routes are as ADD left them (per prevResult),
// and the addresses are still allocated to the container's handle (for a container that joined
// another's network, to that container's). The error lists every difference.
func (p *Plugin) Check(ctx context.Context, cmd *CmdArgs) (err error) {
	p.defaults()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	defer p.guard(ctx, "CHECK", nil, &err)

	args, err := podArgs(cmd)
	if err != nil {
		return err
	}
	prev, err := p.prevResult()
	if err != nil {
		return err
	}
	mtu, err := p.Conf.ResolveMTU(p.Host)
	if err != nil {
		return err
	}
	hostIf := p.PodNetwork.HostIfName(args.PodNamespace, args.PodName)
	owner := cmd.ContainerID // whose IPAM handle holds the addresses
	if o, h := p.joins(cmd.Netns); o != "" {
		owner, hostIf = o, h
	}

	var problems []string
	var contMAC net.HardwareAddr
	var hostSeen, contSeen bool
	contIdx := -1
	for i, ifc := range prev.Interfaces {
		switch {
		case ifc.Name == hostIf && ifc.Sandbox == "":
			hostSeen = true
		case ifc.Name == cmd.IfName && ifc.Sandbox != "":
			contSeen, contIdx = true, i
			if ifc.Sandbox != cmd.Netns {
				problems = append(problems, fmt.Sprintf("prevResult puts %s in %s, but CNI_NETNS is %s", ifc.Name, ifc.Sandbox, cmd.Netns))
			}
			if m, err := net.ParseMAC(ifc.Mac); err == nil {
				contMAC = m
			}
		}
	}
	if !hostSeen {
		problems = append(problems, fmt.Sprintf("prevResult has no host interface %s", hostIf))
	}
	if !contSeen {
		problems = append(problems, fmt.Sprintf("prevResult has no interface %s in a sandbox", cmd.IfName))
	}
	var addrs []netip.Prefix
	var plain []netip.Addr
	for _, ip := range prev.IPs {
		if ip.Interface != nil && contIdx >= 0 && *ip.Interface != contIdx {
			continue
		}
		a, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		plain = append(plain, a)
		addrs = append(addrs, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(addrs) == 0 {
		problems = append(problems, "prevResult has no addresses for "+cmd.IfName)
	} else {
		req := InterfaceRequest{NetNS: cmd.Netns, ContainerIfName: cmd.IfName, HostIfName: hostIf, MTU: mtu, Addresses: addrs, ContainerMAC: contMAC}
		if err := p.PodNetwork.Check(ctx, req); err != nil {
			problems = append(problems, err.Error())
		}
	}

	if p.Conf.IPAM.InProcess() {
		handle := HandleID(p.Conf.Name, owner)
		have, err := p.IPAM.IPsByHandle(ctx, handle)
		switch {
		case errors.Is(err, ipam.ErrHandleNotFound):
			problems = append(problems, fmt.Sprintf("IPAM handle %q does not exist: the addresses %v are no longer allocated to this container", handle, plain))
		case err != nil:
			return AsError(dsErr(fmt.Errorf("reading the allocations of IPAM handle %q: %w", handle, err)), CodeDatastoreFailed)
		default:
			for _, a := range plain {
				if !slices.Contains(have, a) {
					problems = append(problems, fmt.Sprintf("address %s is no longer allocated to IPAM handle %q (it holds %v)", a, handle, have))
				}
			}
		}
	} else if err := p.Delegate.Check(ctx, p.Conf.IPAM.Type, p.Conf.Bytes); err != nil {
		problems = append(problems, fmt.Sprintf("IPAM plugin %s: %v", p.Conf.IPAM.Type, err))
	}
	if len(problems) > 0 {
		return Errorf(CodeCheckFailed, "CHECK of %s (container %s) failed: %s", args, cmd.ContainerID, strings.Join(problems, "; "))
	}
	return nil
}

func (p *Plugin) prevResult() (*types100.Result, error) {
	if p.Conf.PrevResult == nil {
		return nil, invalidConfig("prevResult", "is missing: CHECK compares the attachment with the result of its ADD, which the runtime passes as prevResult")
	}
	prev, err := types100.NewResultFromResult(p.Conf.PrevResult)
	if err != nil {
		return nil, invalidConfig("prevResult", "cannot be converted to the current result format: %v", err)
	}
	return prev, nil
}

// GC is CNI GC: release this network's allocations on this node whose container is not among
// cni.dev/valid-attachments, then forward GC to a delegated IPAM plugin. Allocations are found by
// their handle ("<network>.<containerID>") and their node attribute, so another node's pods, other
// networks and tunnel addresses are never touched. It continues past failures and reports them all.
func (p *Plugin) GC(ctx context.Context, cmd *CmdArgs) (err error) {
	p.defaults()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	defer p.guard(ctx, "GC", nil, &err)

	var netErr error
	if g, ok := p.PodNetwork.(PodNetworkGC); ok && p.Conf.ValidAttachments != nil {
		if err := g.GC(ctx, p.Conf.ValidAttachments); err != nil {
			netErr = AsError(fmt.Errorf("removing the interfaces of containers that are gone: %w", err), CodeDataplaneFailed)
		}
	}
	if !p.Conf.IPAM.InProcess() {
		if err := p.Delegate.GC(ctx, p.Conf.IPAM.Type, p.Conf.Bytes); err != nil {
			return joinErrors(slices.DeleteFunc([]error{netErr, AsError(fmt.Errorf("IPAM plugin %s: %w", p.Conf.IPAM.Type, err), CodeIPAMFailed)},
				func(e error) bool { return e == nil }), CodeIPAMFailed)
		}
		return netErr
	}
	if p.Conf.ValidAttachments == nil {
		return invalidConfig("cni.dev/valid-attachments", "is missing: GC releases every allocation not in that list, so it refuses to run without one")
	}
	node, err := p.Conf.ResolveNodename(p.Host, false)
	if err != nil {
		return err
	}
	valid := map[string]bool{}
	for _, a := range p.Conf.ValidAttachments {
		valid[a.ContainerID] = true
	}
	prefix := p.Conf.Name + "."
	handles, err := p.nodeHandles(ctx, node, prefix)
	if err != nil {
		return AsError(err, CodeDatastoreFailed)
	}
	var errs []error
	var released []string
	for _, h := range handles {
		if valid[strings.TrimPrefix(h, prefix)] {
			continue
		}
		if err := p.releaseHandle(ctx, h); err != nil {
			errs = append(errs, err)
			continue
		}
		released = append(released, h)
	}
	p.Log.Info("garbage collected IPAM handles", "command", "GC", "node", node, "released", strings.Join(released, ","),
		"kept", len(handles)-len(released)-len(errs))
	if netErr != nil {
		errs = append([]error{netErr}, errs...)
	}
	if len(errs) > 0 {
		return joinErrors(errs, CodeIPAMFailed)
	}
	return nil
}

// nodeHandles lists the handles starting with prefix that own addresses allocated by node, read from
// the IPAM blocks (an IPAMHandle does not record its node).
func (p *Plugin) nodeHandles(ctx context.Context, node, prefix string) ([]string, error) {
	objs, _, err := p.Backend.List(ctx, datastore.ListOptions{Kind: api.KindIPAMBlock})
	if err != nil {
		return nil, dsErr(fmt.Errorf("listing IPAM blocks: %w", err))
	}
	seen := map[string]bool{}
	for _, o := range objs {
		b, ok := o.(*api.IPAMBlock)
		if !ok {
			continue
		}
		for _, idx := range b.Spec.Allocations {
			if idx == nil || *idx < 0 || *idx >= len(b.Spec.Attributes) {
				continue
			}
			at := b.Spec.Attributes[*idx]
			if at.HandleID == nil || !strings.HasPrefix(*at.HandleID, prefix) || at.Secondary[ipam.AttributeNode] != node {
				continue
			}
			seen[*at.HandleID] = true
		}
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	slices.Sort(out)
	return out, nil
}

// Status is CNI STATUS: code 50 when the plugin cannot serve ADD — the node agent has not written
// the nodename file (unless nodename_file_optional), or the datastore does not answer within
// StatusTimeout — and the delegated IPAM plugin's status.
func (p *Plugin) Status(ctx context.Context, _ *CmdArgs) (err error) {
	p.defaults()
	defer p.guard(ctx, "STATUS", nil, &err)
	if _, err := p.Conf.ResolveNodename(p.Host, true); err != nil {
		te := AsError(err, CodePluginNotAvailable)
		return Errorf(CodePluginNotAvailable, "not ready for pods: %s", te.Msg)
	}
	pctx, cancel := context.WithTimeout(ctx, p.StatusTimeout)
	defer cancel()
	if err := p.Backend.Ping(pctx); err != nil {
		return Errorf(CodePluginNotAvailable, "the %s datastore cannot be reached (within %s): %v", p.Conf.DatastoreType, p.StatusTimeout, err)
	}
	if s, ok := p.PodNetwork.(PodNetworkStatus); ok {
		if err := s.Status(pctx); err != nil {
			return Errorf(CodePluginNotAvailable, "not ready for pods: %v", err)
		}
	}
	if !p.Conf.IPAM.InProcess() {
		if err := p.Delegate.Status(ctx, p.Conf.IPAM.Type, p.Conf.Bytes); err != nil {
			return AsError(fmt.Errorf("IPAM plugin %s: %w", p.Conf.IPAM.Type, err), CodePluginNotAvailable)
		}
	}
	return nil
}

// joinErrors combines errors into one *types.Error whose code is the first error's (11 wins: the
// runtime should retry).
func joinErrors(errs []error, fallback uint) *types.Error {
	code := uint(0)
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		te := AsError(e, fallback)
		if code == 0 || te.Code == CodeTryAgainLater {
			code = te.Code
		}
		msgs = append(msgs, te.Msg)
	}
	return &types.Error{Code: code, Msg: strings.Join(msgs, "; ")}
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().Unmap()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
