package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// world is what exists right now: the nodes, the pods and what they use.
type world struct {
	live ipam.Liveness
	// pods maps namespace/name to the pod's node ("" when not scheduled), for pods on live nodes.
	pods map[string]string
}

// observe lists Kubernetes nodes and pods and the datastore's nodes and workload endpoints. A node is
// live when Kubernetes has it (or, with the etcd datastore, the datastore still has it: hosts that are
// not Kubernetes nodes). A pod counts only while its node is live: a deleted node's pods are gone
// even before Kubernetes' pod garbage collector removes them.
func observe(ctx context.Context, kube kubernetes.Interface, be datastore.Backend, nodeIsDatastoreNode bool) (world, error) {
	w := world{pods: map[string]string{}}
	w.live.Nodes = map[string]bool{}
	knodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return w, fmt.Errorf("listing Kubernetes nodes: %w", err)
	}
	for _, n := range knodes.Items {
		w.live.AddNode(n.Name)
	}
	objs, _, err := be.List(ctx, datastore.ListOptions{Kind: api.KindNode})
	if err != nil {
		return w, fmt.Errorf("listing tortie nodes: %w", err)
	}
	for _, o := range objs {
		n, ok := o.(*api.Node)
		if !ok {
			continue
		}
		if !nodeIsDatastoreNode && !w.live.Nodes[n.Name] {
			// etcd: a tortie Node whose Kubernetes Node is gone is dead unless it is not a Kubernetes node.
			if orchestratedByKubernetes(n) {
				continue
			}
		}
		w.live.AddNode(n.Name)
		add := func(s, what string) {
			if p, ok := parseAddr(s); ok {
				w.live.AddIP(p, fmt.Sprintf("node %s %s", n.Name, what))
			}
		}
		if n.Spec.BGP != nil {
			add(n.Spec.BGP.IPv4IPIPTunnelAddr, "IPIP tunnel")
		}
		add(n.Spec.IPv4VXLANTunnelAddr, "VXLAN tunnel")
		add(n.Spec.IPv6VXLANTunnelAddr, "IPv6 VXLAN tunnel")
		if wg := n.Spec.Wireguard; wg != nil {
			add(wg.InterfaceIPv4Address, "WireGuard")
			add(wg.InterfaceIPv6Address, "IPv6 WireGuard")
		}
	}
	pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return w, fmt.Errorf("listing pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !podAlive(p, w.live.Nodes) {
			continue
		}
		w.pods[p.Namespace+"/"+p.Name] = p.Spec.NodeName
		for _, ip := range p.Status.PodIPs {
			if a, ok := parseAddr(ip.IP); ok {
				w.live.AddIP(a, "pod "+p.Namespace+"/"+p.Name)
			}
		}
	}
	weps, _, err := be.List(ctx, datastore.ListOptions{Kind: api.KindWorkloadEndpoint})
	if err != nil {
		return w, fmt.Errorf("listing workload endpoints: %w", err)
	}
	for _, o := range weps {
		wep, ok := o.(*api.WorkloadEndpoint)
		if !ok || (wep.Spec.Node != "" && !w.live.Nodes[wep.Spec.Node]) {
			continue
		}
		for _, s := range wep.Spec.IPNetworks {
			if a, ok := parseAddr(s); ok {
				w.live.AddIP(a, "workload endpoint "+wep.Namespace+"/"+wep.Name)
			}
		}
	}
	return w, nil
}

// podAlive: the pod is not finished and its node (if scheduled) exists.
func podAlive(p *corev1.Pod, nodes map[string]bool) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	return p.Spec.NodeName == "" || nodes[p.Spec.NodeName]
}

// owned reports whether an allocation belongs to a pod that is alive (it may not have its IP in its
// status yet: the CNI plugin allocates before the kubelet reports).
func (w world) owned(a ipam.Allocation) bool {
	ns, pod := a.Attrs[ipam.AttributeNamespace], a.Attrs[ipam.AttributePod]
	if ns == "" || pod == "" {
		return false
	}
	_, ok := w.pods[ns+"/"+pod]
	return ok
}

func orchestratedByKubernetes(n *api.Node) bool {
	if len(n.Spec.OrchRefs) == 0 {
		return true // Calico's etcd nodes made by calico-node in Kubernetes carry an orchRef; assume so
	}
	for _, r := range n.Spec.OrchRefs {
		if strings.EqualFold(r.Orchestrator, "k8s") || strings.EqualFold(r.Orchestrator, "kubernetes") {
			return true
		}
	}
	return false
}

func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
