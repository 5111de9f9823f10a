package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// Annotations that the CNI plugin reads from or writes to pods. They keep Calico's names so that existing
// manifests work unchanged.
const (
	// AnnotationPodIP is the pod's primary address (CIDR form), written by the CNI plugin.
	AnnotationPodIP = "cni.projectcalico.org/podIP"
	// AnnotationPodIPs is every address of the pod, comma-separated, written by the CNI plugin.
	AnnotationPodIPs = "cni.projectcalico.org/podIPs"
	// AnnotationContainerID is the sandbox ID the addresses belong to, written by the CNI plugin.
	AnnotationContainerID = "cni.projectcalico.org/containerID"
	// AnnotationIPv4Pools is a JSON list of IPv4 pool names or CIDRs to allocate from.
	AnnotationIPv4Pools = "cni.projectcalico.org/ipv4pools"
	// AnnotationIPv6Pools is a JSON list of IPv6 pool names or CIDRs to allocate from.
	AnnotationIPv6Pools = "cni.projectcalico.org/ipv6pools"
	// AnnotationIPAddrs is a JSON list of specific addresses to assign through IPAM.
	AnnotationIPAddrs = "cni.projectcalico.org/ipAddrs"
	// AnnotationIPAddrsNoIpam is a JSON list of addresses to assign without IPAM.
	AnnotationIPAddrsNoIpam = "cni.projectcalico.org/ipAddrsNoIpam"
	// AnnotationFloatingIPs is a JSON list of floating IPs (1:1 NAT) for the pod.
	AnnotationFloatingIPs = "cni.projectcalico.org/floatingIPs"
	// AnnotationHwAddr is the MAC address to give the pod's interface.
	AnnotationHwAddr = "cni.projectcalico.org/hwAddr"

	// AnnotationMetadata holds the v3 object's metadata on a crd.projectcalico.org/v1 object.
	AnnotationMetadata = "projectcalico.org/metadata"
)

// Labels that tortie adds to endpoints so that selectors can match them.
const (
	// LabelNamespace is the namespace of a workload endpoint.
	LabelNamespace = "projectcalico.org/namespace"
	// LabelOrchestrator is the orchestrator of a workload endpoint ("k8s" for pods).
	LabelOrchestrator = "projectcalico.org/orchestrator"
	// LabelServiceAccount is the service account of a workload endpoint (when shorter than 63 characters).
	LabelServiceAccount = "projectcalico.org/serviceaccount"
	// LabelName is the name of a namespace or service account, under the pcns./pcsa. prefixes.
	LabelName = "projectcalico.org/name"
	// LabelHostnameHash marks host-scoped IPAM objects so that they can be listed per host.
	LabelHostnameHash = "projectcalico.org/hostname-hash"
)

// OrchestratorKubernetes is the orchestrator name of Kubernetes pods.
const OrchestratorKubernetes = "k8s"

// Annotations on Kubernetes Nodes that hold the tortie Node's fields in the Kubernetes datastore.
const (
	NodeAnnotationIPv4Address                = "projectcalico.org/IPv4Address"
	NodeAnnotationIPv6Address                = "projectcalico.org/IPv6Address"
	NodeAnnotationIPv4IPIPTunnelAddr         = "projectcalico.org/IPv4IPIPTunnelAddr"
	NodeAnnotationIPv4VXLANTunnelAddr        = "projectcalico.org/IPv4VXLANTunnelAddr"
	NodeAnnotationIPv6VXLANTunnelAddr        = "projectcalico.org/IPv6VXLANTunnelAddr"
	NodeAnnotationVXLANTunnelMACAddr         = "projectcalico.org/VXLANTunnelMACAddr"
	NodeAnnotationVXLANTunnelMACAddrV6       = "projectcalico.org/VXLANTunnelMACAddrV6"
	NodeAnnotationASNumber                   = "projectcalico.org/ASNumber"
	NodeAnnotationRouteReflectorClusterID    = "projectcalico.org/RouteReflectorClusterID"
	NodeAnnotationIPv4WireguardInterfaceAddr = "projectcalico.org/IPv4WireguardInterfaceAddr"
	NodeAnnotationIPv6WireguardInterfaceAddr = "projectcalico.org/IPv6WireguardInterfaceAddr"
	NodeAnnotationWireguardPublicKey         = "projectcalico.org/WireguardPublicKey"
	NodeAnnotationWireguardPublicKeyV6       = "projectcalico.org/WireguardPublicKeyV6"
	NodeAnnotationInterfaces                 = "projectcalico.org/Interfaces"
)

// Profile and label prefixes of the profiles synthesised from namespaces and service accounts.
const (
	// ProfilePrefixNamespace prefixes the profile of a namespace: kns.<namespace>.
	ProfilePrefixNamespace = "kns."
	// ProfilePrefixServiceAccount prefixes the profile of a service account: ksa.<namespace>.<name>.
	ProfilePrefixServiceAccount = "ksa."
	// LabelPrefixNamespace prefixes namespace labels applied to endpoints: pcns.<key>.
	LabelPrefixNamespace = "pcns."
	// LabelPrefixServiceAccount prefixes service-account labels applied to endpoints: pcsa.<key>.
	LabelPrefixServiceAccount = "pcsa."
	// DefaultAllowProfile is the built-in profile that allows everything.
	DefaultAllowProfile = "projectcalico-default-allow"
	// K8sNetworkPolicyNamePrefix prefixes the names of policies converted from Kubernetes NetworkPolicy.
	K8sNetworkPolicyNamePrefix = "knp.default."
)

// NamespaceProfileName is the profile name of a namespace, "kns.<namespace>".
func NamespaceProfileName(namespace string) string { return ProfilePrefixNamespace + namespace }

// ServiceAccountProfileName is the profile name of a service account, "ksa.<namespace>.<name>".
func ServiceAccountProfileName(namespace, name string) string {
	return ProfilePrefixServiceAccount + namespace + "." + name
}

// CIDRToName turns a CIDR into the form used in IPAM object names: '.', ':' and '/' become '-'
// ("10.0.0.0/26" → "10-0-0-0-26", "fd00::/122" → "fd00---122"). A parsable CIDR is first written in its
// canonical form (lower-case, compressed IPv6) so that one block always gets one name.
func CIDRToName(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		cidr = p.String()
	}
	return strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(cidr)
}

// maxNameLength is the longest Kubernetes object name (a DNS subdomain).
const maxNameLength = 253

// BlockAffinityName is the name of a BlockAffinity: "<host>-<CIDRToName(cidr)>", as Calico names them. A
// name of 253 characters or more is shortened the way Calico shortens it, so that both find the same
// object: the host is cut to leave room, and "-" plus 11 hex digits of the SHA-256 of "<host>+<cidr
// name>" is appended (252 characters in all).
func BlockAffinityName(host, cidr string) string {
	cidrName := CIDRToName(cidr)
	name := host + "-" + cidrName
	if len(name) < maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(host + "+" + cidrName))
	keep := max(maxNameLength-1-len(cidrName)-13, 0)
	return host[:min(keep, len(host))] + "-" + cidrName + "-" + hex.EncodeToString(sum[:])[:11]
}

// WorkloadEndpointName builds a workload endpoint's name from its identifiers:
// "<node>-<orchestrator>-<workload>-<endpoint>", with every '-' inside a part doubled so that the name can
// be split again (see ParseWorkloadEndpointName). For a pod, workload is the pod name:
// WorkloadEndpointName("node-1", "k8s", "web-0", "eth0") = "node--1-k8s-web--0-eth0".
func WorkloadEndpointName(node, orchestrator, workload, endpoint string) string {
	esc := func(s string) string { return strings.ReplaceAll(s, "-", "--") }
	return esc(node) + "-" + esc(orchestrator) + "-" + esc(workload) + "-" + esc(endpoint)
}

// ParseWorkloadEndpointName splits a name built by WorkloadEndpointName into its four parts.
func ParseWorkloadEndpointName(name string) (node, orchestrator, workload, endpoint string, err error) {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != '-' {
			cur.WriteByte(name[i])
			continue
		}
		if i+1 < len(name) && name[i+1] == '-' {
			cur.WriteByte('-')
			i++
			continue
		}
		parts = append(parts, cur.String())
		cur.Reset()
	}
	parts = append(parts, cur.String())
	if len(parts) != 4 {
		return "", "", "", "", fmt.Errorf("workload endpoint name %q does not have the form <node>-<orchestrator>-<workload>-<endpoint> (with '-' inside a part doubled)", name)
	}
	return parts[0], parts[1], parts[2], parts[3], nil
}
