package cni

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// Timeouts.
const (
	// DefaultTimeout bounds one command (Calico's 90 s).
	DefaultTimeout = 90 * time.Second
	// DefaultLockTimeout bounds the wait for the host's IPAM lock; a busy lock is code 11.
	DefaultLockTimeout = 60 * time.Second
	// DefaultStatusTimeout bounds STATUS's datastore ping.
	DefaultStatusTimeout = 5 * time.Second
	// cleanupTimeout bounds the rollback of a failed ADD, which runs even after the command's own
	// deadline has passed.
	cleanupTimeout = 30 * time.Second
)

// Plugin is the platform-neutral core of the CNI plugin and of the IPAM plugin. The command
// wrappers (cmd/tortie-cni) parse the configuration, build a Plugin with the OS's PodNetwork and
// Locker, and call one method per CNI command. A Plugin serves one command; its methods are not
// meant to be called concurrently.
type Plugin struct {
	Conf *NetConf
	Host Host
	// Backend is the datastore (WorkloadEndpoints, ClusterInformation, IPAM blocks for GC).
	Backend datastore.Backend
	// IPAM is used when Conf.IPAM.InProcess(); Delegate runs any other IPAM plugin.
	IPAM     IPAM
	Delegate Delegate
	// PodNetwork plumbs interfaces; nil in the IPAM plugin.
	PodNetwork PodNetwork
	// Pods reads pods and namespaces; nil means CNI_ARGS only (etcd datastore without a kubeconfig).
	Pods PodSource
	// Lock serialises IPAM on the host.
	Lock Locker
	// Hints remembers the IPAM blocks of the node's last allocation (nil: none), so that ADD reads
	// its block with IPAM's other first reads.
	Hints BlockHints
	// HostReserved reserves addresses in every block this node claims, and MaxBlocksPerHost (> 0)
	// caps the node's blocks: Windows passes ipam.WindowsHostReserved() and 1, because its HNS
	// overlay network holds one block and keeps that block's first three and last addresses.
	HostReserved     *ipam.HostReservedAttr
	MaxBlocksPerHost int
	Log              *slog.Logger
	Now              func() time.Time

	Timeout, LockTimeout, StatusTimeout time.Duration
}

func (p *Plugin) defaults() {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.LockTimeout <= 0 {
		p.LockTimeout = DefaultLockTimeout
	}
	if p.StatusTimeout <= 0 {
		p.StatusTimeout = DefaultStatusTimeout
	}
	if p.Delegate == nil {
		p.Delegate = ExecDelegate{}
	}
	if p.Host.ReadFile == nil {
		p.Host = p.Host.withDefaults()
	}
}

// HandleID is the IPAM handle of a pod's addresses: "<network>.<containerID>", as Calico names it.
func HandleID(network, containerID string) string { return network + "." + containerID }

// endpointName is the WorkloadEndpoint a pod's interface is stored as. The Kubernetes datastore
// models one endpoint per pod, "eth0"; etcd stores one per interface.
func (p *Plugin) endpointName(node string, args Args, ifName string) string {
	if p.Conf.DatastoreType == DatastoreKubernetes {
		ifName = "eth0"
	}
	return api.WorkloadEndpointName(node, api.OrchestratorKubernetes, args.PodName, ifName)
}

// undoStack collects the rollback of a half-done ADD, run newest first.
type undoStack []func(context.Context) error

func (u *undoStack) push(f func(context.Context) error) { *u = append(*u, f) }

func (u undoStack) run(ctx context.Context) error {
	var errs []error
	for _, f := range slices.Backward(u) {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// guard turns a panic into a CNI error and, when the command failed, runs the rollback and appends
// its errors. It keeps the error's CNI code.
func (p *Plugin) guard(ctx context.Context, cmd string, undo *undoStack, errp *error) {
	if r := recover(); r != nil {
		p.Log.Error("panic", "command", cmd, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*errp = Errorf(CodeInternal, "internal error during %s (a bug in tortie; please report it): %v", cmd, r)
	}
	if *errp == nil || undo == nil || len(*undo) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if uerr := undo.run(cctx); uerr != nil {
		te := AsError(*errp, CodeInternal)
		*errp = &types.Error{Code: te.Code, Msg: te.Msg + "; rolling back also failed, something may be left behind: " + uerr.Error(), Details: te.Details}
	}
}

// podArgs parses CNI_ARGS and requires a pod.
func podArgs(cmd *CmdArgs) (Args, error) {
	args, err := ParseArgs(cmd.Args)
	if err != nil {
		return args, err
	}
	if !args.IsPod() {
		return args, Errorf(CodeInvalidEnvironment, "CNI_ARGS must name the pod with %s and %s (tortie networks Kubernetes pods); got %q",
			ArgPodNamespace, ArgPodName, cmd.Args)
	}
	return args, nil
}

// Add is CNI ADD: allocate addresses, build the interface, record the WorkloadEndpoint. Any failure
// after the allocation removes the interface and releases the addresses, so a failed ADD leaves
// nothing behind. The result is in the current spec version; the caller converts it.
func (p *Plugin) Add(ctx context.Context, cmd *CmdArgs) (_ *types100.Result, err error) {
	p.defaults()
	start := p.Now()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var undo undoStack
	defer p.guard(ctx, "ADD", &undo, &err)

	args, err := podArgs(cmd)
	if err != nil {
		return nil, err
	}
	node, err := p.Conf.ResolveNodename(p.Host, true)
	if err != nil {
		return nil, err
	}
	mtu, err := p.Conf.ResolveMTU(p.Host)
	if err != nil {
		return nil, err
	}
	log := p.Log.With("command", "ADD", "container_id", cmd.ContainerID, "pod", args.PodNamespace+"/"+args.PodName, "node", node)
	if owner, hostIf := p.joins(cmd.Netns); owner != "" {
		return p.addJoin(ctx, cmd, args, owner, hostIf, mtu, log)
	}
	if res, err := p.existing(ctx, cmd, args, mtu); err != nil || res != nil {
		if res != nil {
			log.Info("the sandbox is already set up: answering with its result (a repeated ADD)", "addresses", fmt.Sprint(res.IPs))
		}
		return res, err
	}
	ph := newPhases(p.Now)
	// The readiness check, the pod read and IPAM's first reads are independent: one round trip.
	// IPAM writes nothing before the readiness check has answered (allocate runs after it).
	sess, err := p.beginIPAM(ctx, node)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		defer sess.unlock() // before guard's rollback, which takes the lock again
	}
	ph.mark("lock")
	pod, err := p.readyAndPod(ctx, args)
	if err != nil {
		return nil, err
	}
	ph.mark("reads")
	if pod != nil && pod.NodeName != "" && pod.NodeName != node {
		return nil, Errorf(CodeInvalidConfig, "pod %s/%s is scheduled to node %q but this node is %q: set \"nodename\" (or %s) to the Kubernetes node name",
			args.PodNamespace, args.PodName, pod.NodeName, node, p.Conf.NodenameFile)
	}
	req, err := addrRequestFor(p.Conf, pod, args)
	if err != nil {
		return nil, AsError(err, CodeInvalidConfig)
	}

	// Addresses.
	addrs, release, err := p.allocate(ctx, cmd, args, node, pod, req, sess)
	if sess != nil {
		sess.unlock()
	}
	if release != nil {
		undo.push(release)
	}
	if err != nil {
		return nil, err
	}
	ph.mark("ipam")

	// Interface.
	hostIf := p.PodNetwork.HostIfName(args.PodNamespace, args.PodName)
	ifReq := InterfaceRequest{NetNS: cmd.Netns, ContainerIfName: cmd.IfName, HostIfName: hostIf, MTU: mtu, Addresses: addrs, ContainerMAC: req.MAC}
	ifRes, err := p.PodNetwork.Setup(ctx, ifReq)
	if err != nil {
		return nil, AsError(fmt.Errorf("setting up the interface of %s: %w", args, err), CodeDataplaneFailed)
	}
	undo.push(func(ctx context.Context) error {
		return p.PodNetwork.Teardown(ctx, cmd.Netns, cmd.IfName, hostIf)
	})
	ph.mark("dataplane")

	// WorkloadEndpoint.
	if err := p.writeEndpoint(ctx, node, cmd, args, pod, ifRes); err != nil {
		return nil, err
	}
	ph.mark("endpoint")

	res := buildResult(p.Conf, cmd.IfName, ifRes)
	log.Info("pod network set up", "host_interface", hostIf, "addresses", fmt.Sprint(ifRes.Addresses),
		"duration", p.Now().Sub(start).String(), "phases", ph.String())
	return res, nil
}

// joins returns the container whose network a container with CNI_NETNS netns joins, and its host
// interface (PodNetworkJoin); "" when it has its own.
func (p *Plugin) joins(netns string) (owner, hostIf string) {
	if j, ok := p.PodNetwork.(PodNetworkJoin); ok {
		return j.Joins(netns)
	}
	return "", ""
}

// addJoin is ADD for a container that joins container owner's network: the PodNetwork attaches it to
// owner's interface, whose addresses must still be allocated to owner. Nothing is allocated or written.
func (p *Plugin) addJoin(ctx context.Context, cmd *CmdArgs, args Args, owner, hostIf string, mtu int, log *slog.Logger) (*types100.Result, error) {
	var addrs []netip.Prefix
	if p.Conf.IPAM.InProcess() {
		have, err := p.IPAM.IPsByHandle(ctx, HandleID(p.Conf.Name, owner))
		switch {
		case errors.Is(err, ipam.ErrHandleNotFound) || (err == nil && len(have) == 0):
			return nil, Errorf(CodeUnknownContainer,
				"container %s of %s joins the network of container %s (CNI_NETNS %s), which has no addresses on network %s (its ADD failed, or the pod is being deleted): nothing was attached",
				cmd.ContainerID, args, owner, cmd.Netns, p.Conf.Name)
		case err != nil:
			return nil, AsError(dsErr(fmt.Errorf("reading the allocations of container %s, whose network container %s joins: %w", owner, cmd.ContainerID, err)), CodeDatastoreFailed)
		}
		addrs = hostPrefixes(have)
	}
	ifRes, err := p.PodNetwork.Setup(ctx, InterfaceRequest{NetNS: cmd.Netns, ContainerIfName: cmd.IfName, HostIfName: hostIf, MTU: mtu, Addresses: addrs})
	if err != nil {
		return nil, AsError(fmt.Errorf("attaching container %s of %s to the network of container %s: %w", cmd.ContainerID, args, owner, err), CodeDataplaneFailed)
	}
	log.Info("container joined its pod's network", "joins", owner, "host_interface", ifRes.HostIfName, "addresses", fmt.Sprint(ifRes.Addresses))
	return buildResult(p.Conf, cmd.IfName, ifRes), nil
}

// existing answers a repeated ADD for a sandbox the PodNetwork already set up (PodNetworkExisting), when
// its addresses are still allocated to the container; nil means a full ADD.
func (p *Plugin) existing(ctx context.Context, cmd *CmdArgs, args Args, mtu int) (*types100.Result, error) {
	ex, ok := p.PodNetwork.(PodNetworkExisting)
	if !ok {
		return nil, nil
	}
	hostIf := p.PodNetwork.HostIfName(args.PodNamespace, args.PodName)
	r, err := ex.Existing(ctx, InterfaceRequest{NetNS: cmd.Netns, ContainerIfName: cmd.IfName, HostIfName: hostIf, MTU: mtu})
	if err != nil {
		return nil, AsError(fmt.Errorf("looking for the interface of %s set up by an earlier ADD: %w", args, err), CodeDataplaneFailed)
	}
	if r == nil || len(r.Addresses) == 0 {
		return nil, nil
	}
	if p.Conf.IPAM.InProcess() {
		have, err := p.IPAM.IPsByHandle(ctx, HandleID(p.Conf.Name, cmd.ContainerID))
		if err != nil && !errors.Is(err, ipam.ErrHandleNotFound) {
			return nil, AsError(dsErr(fmt.Errorf("reading the allocations of container %s: %w", cmd.ContainerID, err)), CodeDatastoreFailed)
		}
		for _, a := range r.Addresses {
			if !slices.Contains(have, a.Addr()) {
				return nil, nil // not the container's any more: set it up again
			}
		}
	}
	return buildResult(p.Conf, cmd.IfName, r), nil
}

// readyAndPod checks the datastore's readiness and reads the pod concurrently: one round trip.
func (p *Plugin) readyAndPod(ctx context.Context, args Args) (*PodInfo, error) {
	readyErr := goSafe(func() error { return p.checkDatastoreReady(ctx) })
	pod, podErr := p.pod(ctx, args)
	if err := <-readyErr; err != nil {
		return nil, err
	}
	return pod, podErr
}

// goSafe runs f in a goroutine; a panic there becomes its error instead of killing the process.
func goSafe(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- Errorf(CodeInternal, "internal error (a bug in tortie; please report it): %v", r)
			}
		}()
		ch <- f()
	}()
	return ch
}

// checkDatastoreReady refuses new pods while ClusterInformation "default" says the datastore is not
// ready (a migration or restore is in progress). A missing object means ready.
func (p *Plugin) checkDatastoreReady(ctx context.Context) error {
	obj, err := p.Backend.Get(ctx, datastore.Key{Kind: api.KindClusterInformation, Name: api.DefaultConfigName})
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		return nil
	case err != nil:
		return AsError(dsErr(fmt.Errorf("reading ClusterInformation %q: %w", api.DefaultConfigName, err)), CodeDatastoreFailed)
	}
	if ci, ok := obj.(*api.ClusterInformation); ok && ci.Spec.DatastoreReady != nil && !*ci.Spec.DatastoreReady {
		return Errorf(CodeTryAgainLater, "the datastore is not ready (ClusterInformation %q has datastoreReady: false, e.g. during a migration); new pods wait until it is set to true",
			api.DefaultConfigName)
	}
	return nil
}

// answers are errors that mean the datastore (or IPAM over it) was reached and said no; retrying
// soon does not help. ErrConflict and ipam.ErrRetriesExhausted are transient, but need no marking.
var answers = []error{
	datastore.ErrNotFound, datastore.ErrAlreadyExists, datastore.ErrUnsupported, datastore.ErrConflict,
	ipam.ErrNoQualifiedPool, ipam.ErrBlockLimit, ipam.ErrPoolNotFound, ipam.ErrPoolDisabled, ipam.ErrNotInPool,
	ipam.ErrUseNotAllowed, ipam.ErrAlreadyAllocated, ipam.ErrBadSequenceNumber,
	ipam.ErrHandleMismatch, ipam.ErrHandleNotFound, ipam.ErrNotAllocated, ipam.ErrInvalidBlock,
	ipam.ErrInvalidArgument, ipam.ErrInvalidAnnotation, ipam.ErrRetriesExhausted,
}

// dsErr marks datastore errors other than the datastore's answers as unreachable (transient), so
// that the runtime is told to retry (code 11).
func dsErr(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range answers {
		if errors.Is(err, s) {
			return err
		}
	}
	var te *types.Error
	if errors.As(err, &te) {
		return err
	}
	return unreachable(err)
}

// pod reads the pod when a PodSource is configured.
func (p *Plugin) pod(ctx context.Context, args Args) (*PodInfo, error) {
	if p.Pods == nil || !args.IsPod() {
		return nil, nil
	}
	pod, err := p.Pods.Pod(ctx, args.PodNamespace, args.PodName)
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		return nil, Errorf(CodeUnknownContainer, "%s does not exist in the Kubernetes API (deleted before its sandbox was set up?): %v", args, err)
	case err != nil:
		return nil, AsError(err, CodeDatastoreFailed)
	}
	return pod, nil
}

// allocate gets the pod's addresses from the in-process IPAM or the delegated plugin. release undoes
// it (nil when nothing was allocated); it is returned even with an error, for what was allocated.
func (p *Plugin) allocate(ctx context.Context, cmd *CmdArgs, args Args, node string, pod *PodInfo, req addrRequest, sess *ipamSession) ([]netip.Prefix, func(context.Context) error, error) {
	if len(req.NoIPAM) > 0 {
		return hostPrefixes(req.NoIPAM), nil, nil
	}
	if !p.Conf.IPAM.InProcess() {
		if len(req.Specific) > 0 && req.SpecificFrom != "CNI_ARGS IP=" {
			return nil, nil, Errorf(CodeInvalidConfig, "%s needs IPAM type %q or %q; %q cannot honour it",
				req.SpecificFrom, IPAMTypeTortie, IPAMTypeCalico, p.Conf.IPAM.Type)
		}
		release := func(ctx context.Context) error {
			if err := p.Delegate.Del(ctx, p.Conf.IPAM.Type, p.Conf.Bytes); err != nil {
				return fmt.Errorf("releasing the addresses through IPAM plugin %s: %w", p.Conf.IPAM.Type, err)
			}
			return nil
		}
		r, err := p.Delegate.Add(ctx, p.Conf.IPAM.Type, p.Conf.Bytes)
		if err != nil {
			return nil, nil, AsError(fmt.Errorf("IPAM plugin %s: %w", p.Conf.IPAM.Type, err), CodeIPAMFailed)
		}
		cur, err := types100.NewResultFromResult(r)
		if err != nil {
			return nil, release, AsError(fmt.Errorf("IPAM plugin %s returned a result tortie cannot read: %w", p.Conf.IPAM.Type, err), CodeIPAMFailed)
		}
		var addrs []netip.Prefix
		for _, ip := range cur.IPs {
			a, ok := netip.AddrFromSlice(ip.Address.IP)
			if !ok {
				continue
			}
			a = a.Unmap()
			addrs = append(addrs, netip.PrefixFrom(a, a.BitLen()))
		}
		if len(addrs) == 0 {
			return nil, release, Errorf(CodeIPAMFailed, "IPAM plugin %s returned no addresses", p.Conf.IPAM.Type)
		}
		return addrs, release, nil
	}

	res, release, err := p.assign(ctx, cmd.ContainerID, args, node, pod, req, sess)
	if err != nil {
		return nil, release, err
	}
	var addrs []netip.Prefix
	for _, pfx := range append(slices.Clone(res.IPv4), res.IPv6...) {
		addrs = append(addrs, netip.PrefixFrom(pfx.Addr(), pfx.Addr().BitLen()))
	}
	return addrs, release, nil
}

func hostPrefixes(as []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// assign allocates from the in-process IPAM under the host lock: sess's, when the allocation was
// begun early (beginIPAM), else its own. release (non-nil once anything may have been allocated)
// releases the handle.
func (p *Plugin) assign(ctx context.Context, containerID string, args Args, node string, pod *PodInfo, req addrRequest, sess *ipamSession) (ipam.AssignResult, func(context.Context) error, error) {
	var res ipam.AssignResult
	handle := HandleID(p.Conf.Name, containerID)
	attrs := map[string]string{
		ipam.AttributeNode:      node,
		ipam.AttributeTimestamp: ipam.Timestamp(p.Now()),
	}
	if args.IsPod() {
		attrs[ipam.AttributePod] = args.PodName
		attrs[ipam.AttributeNamespace] = args.PodNamespace
	}
	var pre *ipam.Prefetch
	if sess != nil {
		pre = sess.prefetch
	} else {
		unlock, err := p.lock(ctx)
		if err != nil {
			return res, nil, err
		}
		defer unlock()
	}
	release := func(ctx context.Context) error { return p.releaseHandle(ctx, handle) }

	if len(req.Specific) > 0 {
		for _, a := range req.Specific {
			pfx, err := p.IPAM.AssignIP(ctx, ipam.AssignIPArgs{IP: a, HandleID: handle, Attrs: attrs, Hostname: node, Prefetch: pre})
			if err != nil {
				return res, release, AsError(fmt.Errorf("assigning %s requested by %s: %w", a, req.SpecificFrom, dsErr(err)), CodeIPAMFailed)
			}
			if pfx.Addr().Is4() {
				res.IPv4 = append(res.IPv4, pfx)
			} else {
				res.IPv6 = append(res.IPv6, pfx)
			}
		}
		return res, release, nil
	}

	aa := ipam.AutoAssignArgs{
		HandleID: handle, Attrs: attrs, Hostname: node,
		IPv4Pools: req.IPv4Pools, IPv6Pools: req.IPv6Pools,
		IntendedUse: api.IPPoolAllowedUseWorkload,
		Prefetch:    pre,

		HostReservedAttrIPv4s: p.HostReserved,
		MaxBlocksPerHost:      p.MaxBlocksPerHost,
	}
	if p.Conf.IPAM.AssignIPv4 {
		aa.Num4 = 1
	}
	if p.Conf.IPAM.AssignIPv6 {
		aa.Num6 = 1
	}
	if pod != nil {
		aa.NamespaceLabels = pod.NamespaceLabels
		if aa.NamespaceLabels == nil {
			aa.NamespaceLabels = map[string]string{}
		}
	}
	res, err := p.IPAM.AutoAssign(ctx, aa)
	if err != nil {
		hint := ""
		if errors.Is(err, ipam.ErrNoQualifiedPool) || errors.Is(err, ipam.ErrPoolNotFound) {
			hint = fmt.Sprintf(" (pools from %s: IPv4 %q, IPv6 %q; check that an enabled IPPool exists whose nodeSelector matches node %q and whose namespaceSelector matches the namespace)",
				req.PoolsFrom, req.IPv4Pools, req.IPv6Pools, node)
		}
		return res, release, AsError(fmt.Errorf("assigning addresses to %s: %w%s", args, dsErr(err), hint), CodeIPAMFailed)
	}
	if len(res.IPv4) < aa.Num4 || len(res.IPv6) < aa.Num6 {
		return res, release, Errorf(CodeIPAMFailed, "assigning addresses to %s: got %d IPv4 and %d IPv6 addresses, wanted %d and %d: %s",
			args, len(res.IPv4), len(res.IPv6), aa.Num4, aa.Num6, strings.Join(res.Msgs, "; "))
	}
	p.remember(sess, node, res)
	return res, release, nil
}

// lock takes the host's IPAM lock within LockTimeout.
func (p *Plugin) lock(ctx context.Context) (func(), error) {
	if p.Lock == nil {
		return func() {}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, p.LockTimeout)
	defer cancel()
	unlock, err := p.Lock.Lock(lctx)
	if err != nil {
		return nil, Errorf(CodeTryAgainLater, "waiting for the IPAM lock %s: %v (another plugin invocation holds it; retry later)", p.Conf.IPAMLockFile, err)
	}
	return unlock, nil
}

// releaseHandle releases a handle under the lock; an unknown handle is success.
func (p *Plugin) releaseHandle(ctx context.Context, handle string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.IPAM.ReleaseByHandle(ctx, handle); err != nil && !errors.Is(err, ipam.ErrHandleNotFound) {
		return dsErr(fmt.Errorf("releasing IPAM handle %q: %w", handle, err))
	}
	return nil
}

// writeEndpoint records the pod's WorkloadEndpoint: in etcd the object itself, in the Kubernetes
// datastore the pod's podIP/podIPs/containerID annotations (the kube backend's WorkloadEndpoint).
func (p *Plugin) writeEndpoint(ctx context.Context, node string, cmd *CmdArgs, args Args, pod *PodInfo, ifRes *InterfaceResult) error {
	wep := api.NewWorkloadEndpoint()
	wep.Name = p.endpointName(node, args, cmd.IfName)
	wep.Namespace = args.PodNamespace
	wep.Labels = map[string]string{}
	wep.Spec = api.WorkloadEndpointSpec{
		Orchestrator:  api.OrchestratorKubernetes,
		Node:          node,
		Pod:           args.PodName,
		ContainerID:   cmd.ContainerID,
		Endpoint:      cmd.IfName,
		InterfaceName: ifRes.HostIfName,
		Profiles:      []string{api.NamespaceProfileName(args.PodNamespace)},
	}
	if len(ifRes.ContainerMAC) > 0 {
		wep.Spec.MAC = ifRes.ContainerMAC.String()
	}
	for _, a := range ifRes.Addresses {
		wep.Spec.IPNetworks = append(wep.Spec.IPNetworks, a.String())
	}
	if pod != nil {
		for k, v := range pod.Labels {
			wep.Labels[k] = v
		}
		wep.Spec.Ports = pod.Ports
		if sa := pod.ServiceAccount; sa != "" {
			wep.Spec.ServiceAccountName = sa
			wep.Spec.Profiles = append(wep.Spec.Profiles, api.ServiceAccountProfileName(args.PodNamespace, sa))
			if len(sa) < 63 {
				wep.Labels[api.LabelServiceAccount] = sa
			}
		}
	}
	wep.Labels[api.LabelNamespace] = args.PodNamespace
	wep.Labels[api.LabelOrchestrator] = api.OrchestratorKubernetes

	op := fmt.Sprintf("writing WorkloadEndpoint %s/%s", wep.Namespace, wep.Name)
	for attempt := 0; ; attempt++ {
		_, err := p.Backend.Create(ctx, wep)
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrAlreadyExists) || attempt >= 5 {
			return AsError(dsErr(fmt.Errorf("%s: %w", op, err)), CodeDatastoreFailed)
		}
		// The pod's previous sandbox left it: the newest ADD wins.
		cur, gerr := p.Backend.Get(ctx, datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: wep.Namespace, Name: wep.Name})
		if errors.Is(gerr, datastore.ErrNotFound) {
			continue
		}
		if gerr != nil {
			return AsError(dsErr(fmt.Errorf("%s: %w", op, gerr)), CodeDatastoreFailed)
		}
		upd := wep.DeepCopy()
		upd.ResourceVersion = cur.GetResourceVersion()
		upd.UID = cur.GetUID()
		upd.CreationTimestamp = cur.GetCreationTimestamp()
		_, err = p.Backend.Update(ctx, upd)
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
			return AsError(dsErr(fmt.Errorf("%s: %w", op, err)), CodeDatastoreFailed)
		}
	}
}

// buildResult renders the CNI result: the host and container interfaces, the addresses on the
// container interface (index 1) and default routes through the dataplane's gateways.
func buildResult(conf *NetConf, ifName string, r *InterfaceResult) *types100.Result {
	res := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: r.HostIfName, Mac: r.HostMAC.String()},
			{Name: ifName, Mac: r.ContainerMAC.String(), Sandbox: r.SandboxPath},
		},
		DNS: conf.DNS,
	}
	var v4, v6 bool
	for _, a := range r.Addresses {
		ipc := &types100.IPConfig{Interface: types100.Int(1), Address: *prefixToIPNet(a)}
		if a.Addr().Is4() {
			v4 = true
			if r.GatewayV4.IsValid() {
				ipc.Gateway = r.GatewayV4.AsSlice()
			}
		} else {
			v6 = true
			if r.GatewayV6.IsValid() {
				ipc.Gateway = r.GatewayV6.AsSlice()
			}
		}
		res.IPs = append(res.IPs, ipc)
	}
	if v4 && r.GatewayV4.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: *prefixToIPNet(netip.MustParsePrefix("0.0.0.0/0")), GW: r.GatewayV4.AsSlice()})
	}
	if v6 && r.GatewayV6.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: *prefixToIPNet(netip.MustParsePrefix("::/0")), GW: r.GatewayV6.AsSlice()})
	}
	return res
}

// phases records how long each step of a command took, for the log.
type phases struct {
	now  func() time.Time
	last time.Time
	b    strings.Builder
}

func newPhases(now func() time.Time) *phases { return &phases{now: now, last: now()} }

func (p *phases) mark(name string) {
	t := p.now()
	if p.b.Len() > 0 {
		p.b.WriteByte(' ')
	}
	fmt.Fprintf(&p.b, "%s=%s", name, t.Sub(p.last).Round(10*time.Microsecond))
	p.last = t
}

func (p *phases) String() string { return p.b.String() }
