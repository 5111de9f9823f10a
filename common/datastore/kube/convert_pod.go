package kube

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tortie-net/tortie/common/api"
)

// Pod → WorkloadEndpoint (Calico: libcalico-go/lib/backend/k8s/conversion/workload_endpoint_default.go).

// annotationAllowedSourcePrefixes lists prefixes (JSON) a pod may send from besides its own addresses.
const annotationAllowedSourcePrefixes = "cni.projectcalico.org/allowedSourcePrefixes"

// endpointName is the only endpoint of a pod; multiple interfaces (Multus) are not modelled.
const endpointName = "eth0"

// isWorkloadPod reports whether a pod is a tortie endpoint: scheduled, and not on the host network.
func isWorkloadPod(pod *corev1.Pod) bool {
	return pod.Spec.NodeName != "" && !pod.Spec.HostNetwork
}

// podFinished reports whether the pod's containers will never run again, so its addresses may already
// belong to another pod.
func podFinished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podToWorkloadEndpoint converts a pod. It returns nil for a pod that is not an endpoint
// (unscheduled or host-network).
func podToWorkloadEndpoint(pod *corev1.Pod) (*api.WorkloadEndpoint, error) {
	if !isWorkloadPod(pod) {
		return nil, nil
	}
	ipNets, err := podIPNetworks(pod)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}

	labels := make(map[string]string, len(pod.Labels)+3)
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[api.LabelNamespace] = pod.Namespace
	labels[api.LabelOrchestrator] = api.OrchestratorKubernetes
	sa := pod.Spec.ServiceAccountName
	if sa != "" && len(validation.IsValidLabelValue(sa)) == 0 {
		labels[api.LabelServiceAccount] = sa
	}
	profiles := []string{api.ProfilePrefixNamespace + pod.Namespace}
	if sa != "" {
		profiles = append(profiles, api.ProfilePrefixServiceAccount+pod.Namespace+"."+sa)
	}

	var ports []api.WorkloadEndpointPort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.ContainerPort == 0 || (p.Name == "" && p.HostPort == 0) {
				continue
			}
			var proto string
			switch p.Protocol {
			case corev1.ProtocolTCP, "":
				proto = api.ProtocolTCP
			case corev1.ProtocolUDP:
				proto = api.ProtocolUDP
			case corev1.ProtocolSCTP:
				proto = api.ProtocolSCTP
			default:
				continue
			}
			ports = append(ports, api.WorkloadEndpointPort{
				Name:     p.Name,
				Protocol: api.ProtocolFromString(proto),
				Port:     uint16(p.ContainerPort),
				HostPort: uint16(p.HostPort),
				HostIP:   p.HostIP,
			})
		}
	}

	var spoof []string
	if raw := pod.Annotations[annotationAllowedSourcePrefixes]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &spoof); err != nil {
			return nil, fmt.Errorf("pod %s/%s: annotation %s: %w", pod.Namespace, pod.Name, annotationAllowedSourcePrefixes, err)
		}
	}

	wep := api.NewWorkloadEndpoint()
	wep.Name = api.WorkloadEndpointName(pod.Spec.NodeName, api.OrchestratorKubernetes, pod.Name, endpointName)
	wep.Namespace = pod.Namespace
	wep.UID = pod.UID
	wep.CreationTimestamp = pod.CreationTimestamp
	wep.ResourceVersion = pod.ResourceVersion
	wep.Labels = labels
	wep.Spec = api.WorkloadEndpointSpec{
		Orchestrator:               api.OrchestratorKubernetes,
		Node:                       pod.Spec.NodeName,
		Pod:                        pod.Name,
		ContainerID:                pod.Annotations[api.AnnotationContainerID],
		Endpoint:                   endpointName,
		ServiceAccountName:         sa,
		IPNetworks:                 ipNets,
		Profiles:                   profiles,
		InterfaceName:              vethName(pod.Namespace, pod.Name),
		Ports:                      ports,
		AllowSpoofedSourcePrefixes: spoof,
	}
	return wep, nil
}

// podIPNetworks returns the pod's addresses as host prefixes (/32, /128), first found of:
// status.podIPs, status.podIP, the CNI's cni.projectcalico.org/podIPs annotation, then its podIP
// annotation — Calico's precedence: the kubelet's view wins once it has one, and the CNI's
// annotations cover the window between ADD and the kubelet's status update.
//
// A pod has no addresses when it has finished (Succeeded/Failed: the IPAM has released them), or when
// the CNI has cleared the podIP annotation (it does so on DEL, and WorkloadEndpoint Delete does the
// same): the status may then still show addresses that are already released.
func podIPNetworks(pod *corev1.Pod) ([]string, error) {
	if podFinished(pod) {
		return nil, nil
	}
	if v, ok := pod.Annotations[api.AnnotationPodIP]; ok && v == "" {
		if pods, ok := pod.Annotations[api.AnnotationPodIPs]; !ok || pods == "" {
			return nil, nil
		}
	}
	var raw []string
	switch {
	case len(pod.Status.PodIPs) > 0:
		for _, ip := range pod.Status.PodIPs {
			raw = append(raw, ip.IP)
		}
	case pod.Status.PodIP != "":
		raw = []string{pod.Status.PodIP}
	case pod.Annotations[api.AnnotationPodIPs] != "":
		raw = strings.Split(pod.Annotations[api.AnnotationPodIPs], ",")
	case pod.Annotations[api.AnnotationPodIP] != "":
		raw = []string{pod.Annotations[api.AnnotationPodIP]}
	default:
		return nil, nil
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		p, err := hostPrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// hostPrefix parses an address or CIDR and returns the address as a host prefix ("10.0.0.5/32").
func hostPrefix(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("invalid pod address %q: %w", s, err)
		}
		a := p.Addr().Unmap()
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("invalid pod address %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()).String(), nil
}

// vethName is the host side of a pod's veth as Calico's CNI names it: "cali" and the first 11 hex
// digits of sha1("<namespace>.<pod>") (15 characters, the Linux limit).
func vethName(namespace, pod string) string {
	h := sha1.Sum([]byte(namespace + "." + pod))
	return "cali" + hex.EncodeToString(h[:])[:11]
}

// workloadEndpointAnnotations returns the pod annotations that record a WorkloadEndpoint's
// addresses and container (what Calico's CNI writes): the addresses as given (CIDRs), podIP being the
// first.
func workloadEndpointAnnotations(wep *api.WorkloadEndpoint) map[string]string {
	first := ""
	if len(wep.Spec.IPNetworks) > 0 {
		first = wep.Spec.IPNetworks[0]
	}
	return map[string]string{
		api.AnnotationPodIP:       first,
		api.AnnotationPodIPs:      strings.Join(wep.Spec.IPNetworks, ","),
		api.AnnotationContainerID: wep.Spec.ContainerID,
	}
}
