package cni

import (
	"context"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/ipam"
)

// PodNetwork plumbs a pod's interface: veth pairs on Linux (linux/cni), HNS endpoints on Windows
// (windows/cni). The plugin core calls it and knows nothing of the OS.
type PodNetwork interface {
	// HostIfName names the host side of a pod's interface. It is a pure function of the pod, so ADD
	// and DEL agree without storing anything.
	HostIfName(namespace, pod string) string
	// Setup creates the interface (CNI ADD). It is all-or-nothing: on error nothing it created
	// remains.
	Setup(ctx context.Context, req InterfaceRequest) (*InterfaceResult, error)
	// Teardown removes the interface (CNI DEL). It is idempotent: a missing namespace or interface,
	// or a second call, is success. It must not remove a newer sandbox's interface of the same name.
	// Any argument may be empty to skip that part.
	Teardown(ctx context.Context, netns, containerIfName, hostIfName string) error
	// Check reports every difference from what Setup would build (CNI CHECK), nil when there is none.
	Check(ctx context.Context, req InterfaceRequest) error
}

// PodNetworkGC is implemented by a PodNetwork that holds per-container state of its own (Windows: HNS
// endpoints): GC removes what belongs to containers not in valid, and is idempotent.
type PodNetworkGC interface {
	GC(ctx context.Context, valid []types.GCAttachment) error
}

// PodNetworkStatus is implemented by a PodNetwork that can tell whether the host is ready for pods
// (Windows: the HNS overlay network exists); a non-nil error says why not.
type PodNetworkStatus interface {
	Status(ctx context.Context) error
}

// PodNetworkExisting is implemented by a PodNetwork whose runtime repeats ADD for a sandbox that is
// already set up (dockershim and cri-dockerd on Windows run ADD again to learn a running pod's address).
// Existing returns what the earlier ADD built, or nil when there is nothing to reuse; Add then answers
// with it, without allocating or plumbing again, when the addresses are still the container's.
type PodNetworkExisting interface {
	Existing(ctx context.Context, req InterfaceRequest) (*InterfaceResult, error)
}

// PodNetworkJoin is implemented by a PodNetwork whose runtime also runs ADD for containers that join
// another container's network: dockershim and cri-dockerd on Windows call it with CNI_NETNS
// "container:<infra container ID>" for each application container of a pod. Such a container owns
// nothing. ADD attaches it to the other container's interface (Setup with the other container's host
// interface and the addresses allocated to it) and answers with those addresses: no allocation, no
// WorkloadEndpoint. CHECK checks the attachment and the other container's allocation. DEL only
// detaches it (Teardown with its netns and the other container's host interface); the other
// container's DEL removes the interface and releases the addresses.
type PodNetworkJoin interface {
	// Joins returns the container whose network a container with CNI_NETNS netns joins, and that
	// container's host interface; "" when the container has a network of its own.
	Joins(netns string) (containerID, hostIfName string)
}

// InterfaceRequest describes one pod interface.
type InterfaceRequest struct {
	NetNS           string
	ContainerIfName string
	HostIfName      string
	MTU             int
	// Addresses are programmed as host routes (/32, /128) whatever their prefix length.
	Addresses    []netip.Prefix
	ContainerMAC net.HardwareAddr
}

// InterfaceResult describes what Setup built.
type InterfaceResult struct {
	HostIfName   string
	HostMAC      net.HardwareAddr
	ContainerMAC net.HardwareAddr
	SandboxPath  string
	// Addresses as programmed (host prefixes).
	Addresses []netip.Prefix
	// Gateways are the pod's default gateways per family (Linux: 169.254.1.1 and
	// fe80::ecee:eeff:feee:eeee), reported in the CNI result's routes.
	GatewayV4, GatewayV6 netip.Addr
}

// IPAM is what the plugin needs from common/ipam; *ipam.Client implements it.
type IPAM interface {
	AutoAssign(ctx context.Context, args ipam.AutoAssignArgs) (ipam.AssignResult, error)
	AssignIP(ctx context.Context, args ipam.AssignIPArgs) (netip.Prefix, error)
	// ReleaseByHandle releases a handle's addresses; an unknown handle wraps ipam.ErrHandleNotFound.
	ReleaseByHandle(ctx context.Context, handleID string) error
	// IPsByHandle lists a handle's addresses; an unknown handle wraps ipam.ErrHandleNotFound.
	IPsByHandle(ctx context.Context, handleID string) ([]netip.Addr, error)
}

var _ IPAM = (*ipam.Client)(nil)

// PodSource reads pods and their namespaces from the orchestrator.
type PodSource interface {
	// Pod returns the pod and its namespace's labels and annotations. A missing pod wraps
	// datastore.ErrNotFound.
	Pod(ctx context.Context, namespace, name string) (*PodInfo, error)
}

// PodInfo is what the plugin uses of a pod.
type PodInfo struct {
	Namespace, Name, UID string
	NodeName             string
	HostNetwork          bool
	ServiceAccount       string
	Labels, Annotations  map[string]string
	// NamespaceLabels and NamespaceAnnotations are the pod's namespace's.
	NamespaceLabels, NamespaceAnnotations map[string]string
	// Ports are the pod's named container ports (WorkloadEndpoint ports).
	Ports []api.WorkloadEndpointPort
}

// Locker serialises IPAM on one host (Calico's ipam.lock).
type Locker interface {
	// Lock waits until the lock is held or ctx is done; unlock releases it.
	Lock(ctx context.Context) (unlock func(), err error)
}

// Delegate runs another IPAM plugin binary (host-local, dhcp, ...), found in CNI_PATH, with the
// CNI_* environment of this process.
type Delegate interface {
	Add(ctx context.Context, plugin string, netconf []byte) (types.Result, error)
	Check(ctx context.Context, plugin string, netconf []byte) error
	Del(ctx context.Context, plugin string, netconf []byte) error
	GC(ctx context.Context, plugin string, netconf []byte) error
	Status(ctx context.Context, plugin string, netconf []byte) error
}

// ExecDelegate is the Delegate that executes plugins, as libcni's invoke.Delegate* do.
type ExecDelegate struct{}

func (ExecDelegate) Add(ctx context.Context, plugin string, netconf []byte) (types.Result, error) {
	return invoke.DelegateAdd(ctx, plugin, netconf, nil)
}

func (ExecDelegate) Check(ctx context.Context, plugin string, netconf []byte) error {
	return invoke.DelegateCheck(ctx, plugin, netconf, nil)
}

func (ExecDelegate) Del(ctx context.Context, plugin string, netconf []byte) error {
	return invoke.DelegateDel(ctx, plugin, netconf, nil)
}

func (ExecDelegate) GC(ctx context.Context, plugin string, netconf []byte) error {
	return invoke.DelegateGC(ctx, plugin, netconf, nil)
}

func (ExecDelegate) Status(ctx context.Context, plugin string, netconf []byte) error {
	return invoke.DelegateStatus(ctx, plugin, netconf, nil)
}

// CmdArgs is one invocation's arguments, as skel.CmdArgs (which common/ cannot import: it pulls in a
// Linux namespace library).
type CmdArgs struct {
	ContainerID string
	Netns       string
	IfName      string
	Args        string
	Path        string
	StdinData   []byte
}
