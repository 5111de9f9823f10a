package kube

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/tortie-net/tortie/common/api"
)

// Kubernetes Node ⇄ tortie Node (Calico: libcalico-go/lib/backend/k8s/resources/node.go).

// Node address types besides Kubernetes' own (InternalIP, ExternalIP).
const nodeAddressCalicoNodeIP = "CalicoNodeIP"

// k8sNodeToNode converts a Kubernetes Node: labels are the node's labels; the tortie fields come from
// the projectcalico.org/* annotations; orchRefs, addresses and podCIDRs from the Kubernetes node.
// An unparsable annotation (AS number, interfaces) leaves its field empty, as in Calico, rather than
// hiding the whole node.
func k8sNodeToNode(n *corev1.Node) *api.Node {
	a := n.Annotations
	node := api.NewNode()
	node.Name = n.Name
	node.UID = n.UID
	node.CreationTimestamp = n.CreationTimestamp
	node.ResourceVersion = n.ResourceVersion
	node.Labels, node.Annotations = nodeMetadata(n)

	bgp := &api.NodeBGPSpec{
		IPv4Address:             a[api.NodeAnnotationIPv4Address],
		IPv6Address:             a[api.NodeAnnotationIPv6Address],
		IPv4IPIPTunnelAddr:      a[api.NodeAnnotationIPv4IPIPTunnelAddr],
		RouteReflectorClusterID: a[api.NodeAnnotationRouteReflectorClusterID],
	}
	if s := a[api.NodeAnnotationASNumber]; s != "" {
		if asn, err := api.ASNumberFromString(s); err == nil {
			bgp.ASNumber = &asn
		}
	}
	if *bgp != (api.NodeBGPSpec{}) {
		node.Spec.BGP = bgp
	}
	node.Spec.IPv4VXLANTunnelAddr = a[api.NodeAnnotationIPv4VXLANTunnelAddr]
	node.Spec.VXLANTunnelMACAddr = a[api.NodeAnnotationVXLANTunnelMACAddr]
	node.Spec.IPv6VXLANTunnelAddr = a[api.NodeAnnotationIPv6VXLANTunnelAddr]
	node.Spec.VXLANTunnelMACAddrV6 = a[api.NodeAnnotationVXLANTunnelMACAddrV6]
	wg := &api.NodeWireguardSpec{
		InterfaceIPv4Address: a[api.NodeAnnotationIPv4WireguardInterfaceAddr],
		InterfaceIPv6Address: a[api.NodeAnnotationIPv6WireguardInterfaceAddr],
	}
	if *wg != (api.NodeWireguardSpec{}) {
		node.Spec.Wireguard = wg
	}
	if s := a[api.NodeAnnotationInterfaces]; s != "" {
		var ifaces []api.NodeInterface
		if err := json.Unmarshal([]byte(s), &ifaces); err == nil {
			node.Spec.Interfaces = ifaces
		}
	}
	node.Spec.OrchRefs = []api.OrchRef{{NodeName: n.Name, Orchestrator: api.OrchestratorKubernetes}}
	if bgp.IPv4Address != "" {
		node.Spec.Addresses = append(node.Spec.Addresses, api.NodeAddress{Address: bgp.IPv4Address, Type: nodeAddressCalicoNodeIP})
	}
	if bgp.IPv6Address != "" {
		node.Spec.Addresses = append(node.Spec.Addresses, api.NodeAddress{Address: bgp.IPv6Address, Type: nodeAddressCalicoNodeIP})
	}
	for _, addr := range n.Status.Addresses {
		if addr.Type == corev1.NodeInternalIP || addr.Type == corev1.NodeExternalIP {
			node.Spec.Addresses = append(node.Spec.Addresses, api.NodeAddress{Address: addr.Address, Type: string(addr.Type)})
		}
	}

	node.Status.WireguardPublicKey = a[api.NodeAnnotationWireguardPublicKey]
	node.Status.WireguardPublicKeyV6 = a[api.NodeAnnotationWireguardPublicKeyV6]
	switch {
	case len(n.Spec.PodCIDRs) > 0:
		node.Status.PodCIDRs = append([]string(nil), n.Spec.PodCIDRs...)
	case n.Spec.PodCIDR != "":
		node.Status.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	return node
}

// nodeMetadata returns the labels and annotations of the tortie Node of n, as Calico builds them: the
// labels set through Calico (kept in the Node's projectcalico.org/labels annotation) under the
// Kubernetes labels, which win; the annotations set through Calico (projectcalico.org/annotations); and
// the projectcalico.org/kube-labels annotation recording the Kubernetes labels, so that a write can tell
// them from Calico's own. A malformed annotation is ignored, as in Calico.
func nodeMetadata(n *corev1.Node) (labels, annotations map[string]string) {
	labels = map[string]string{}
	if s := n.Annotations[api.NodeAnnotationLabels]; s != "" {
		_ = json.Unmarshal([]byte(s), &labels)
	}
	maps.Copy(labels, n.Labels)
	if len(labels) == 0 {
		labels = nil
	}
	annotations = map[string]string{}
	if s := n.Annotations[api.NodeAnnotationAnnotations]; s != "" {
		_ = json.Unmarshal([]byte(s), &annotations)
	}
	kube, _ := json.Marshal(n.Labels) // a map of strings always marshals
	annotations[api.NodeAnnotationKubeLabels] = string(kube)
	return labels, annotations
}

// nodeAnnotations returns the value of every annotation a tortie Node is written to; "" means the
// annotation is removed. Labels and annotations set through tortie go to projectcalico.org/labels and
// projectcalico.org/annotations as Calico writes them; labels that are the Kubernetes Node's own (listed
// in projectcalico.org/kube-labels) are left out. Everything else (labels, addresses, orchRefs,
// podCIDRs) belongs to Kubernetes.
func nodeAnnotations(node *api.Node) (map[string]string, error) {
	out := map[string]string{}
	var kube map[string]string
	if s := node.Annotations[api.NodeAnnotationKubeLabels]; s != "" {
		if err := json.Unmarshal([]byte(s), &kube); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", api.NodeAnnotationKubeLabels, err)
		}
	}
	own := map[string]string{}
	for k, v := range node.Labels {
		if _, inherited := kube[k]; !inherited {
			own[k] = v
		}
	}
	ann := maps.Clone(node.Annotations)
	delete(ann, api.NodeAnnotationKubeLabels)
	for name, m := range map[string]map[string]string{api.NodeAnnotationLabels: own, api.NodeAnnotationAnnotations: ann} {
		out[name] = ""
		if len(m) > 0 {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			out[name] = string(b)
		}
	}
	var bgp api.NodeBGPSpec
	if node.Spec.BGP != nil {
		bgp = *node.Spec.BGP
	}
	out[api.NodeAnnotationIPv4Address] = bgp.IPv4Address
	out[api.NodeAnnotationIPv6Address] = bgp.IPv6Address
	out[api.NodeAnnotationIPv4IPIPTunnelAddr] = bgp.IPv4IPIPTunnelAddr
	out[api.NodeAnnotationRouteReflectorClusterID] = bgp.RouteReflectorClusterID
	out[api.NodeAnnotationASNumber] = ""
	if bgp.ASNumber != nil {
		out[api.NodeAnnotationASNumber] = strconv.FormatUint(uint64(*bgp.ASNumber), 10)
	}
	out[api.NodeAnnotationIPv4VXLANTunnelAddr] = node.Spec.IPv4VXLANTunnelAddr
	out[api.NodeAnnotationVXLANTunnelMACAddr] = node.Spec.VXLANTunnelMACAddr
	out[api.NodeAnnotationIPv6VXLANTunnelAddr] = node.Spec.IPv6VXLANTunnelAddr
	out[api.NodeAnnotationVXLANTunnelMACAddrV6] = node.Spec.VXLANTunnelMACAddrV6
	var wg api.NodeWireguardSpec
	if node.Spec.Wireguard != nil {
		wg = *node.Spec.Wireguard
	}
	out[api.NodeAnnotationIPv4WireguardInterfaceAddr] = wg.InterfaceIPv4Address
	out[api.NodeAnnotationIPv6WireguardInterfaceAddr] = wg.InterfaceIPv6Address
	out[api.NodeAnnotationWireguardPublicKey] = node.Status.WireguardPublicKey
	out[api.NodeAnnotationWireguardPublicKeyV6] = node.Status.WireguardPublicKeyV6
	out[api.NodeAnnotationInterfaces] = ""
	if len(node.Spec.Interfaces) > 0 {
		b, err := json.Marshal(node.Spec.Interfaces)
		if err != nil {
			return nil, err
		}
		out[api.NodeAnnotationInterfaces] = string(b)
	}
	return out, nil
}
