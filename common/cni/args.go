package cni

import (
	"fmt"
	"strings"
)

// CNI_ARGS keys the container runtime passes for Kubernetes pods.
const (
	ArgPodNamespace        = "K8S_POD_NAMESPACE"
	ArgPodName             = "K8S_POD_NAME"
	ArgPodInfraContainerID = "K8S_POD_INFRA_CONTAINER_ID"
	ArgPodUID              = "K8S_POD_UID"
	// ArgIP asks the IPAM plugin for specific addresses (comma-separated), Calico's and host-local's
	// convention.
	ArgIP = "IP"
)

// Args is CNI_ARGS, parsed.
type Args struct {
	PodNamespace        string
	PodName             string
	PodInfraContainerID string
	PodUID              string
	// IPs are the addresses of the IP key, as given (validated by IPAM).
	IPs []string
	// All holds every key, including the ones above.
	All map[string]string
}

// IsPod reports whether the arguments name a Kubernetes pod.
func (a Args) IsPod() bool { return a.PodNamespace != "" && a.PodName != "" }

// ParseArgs parses CNI_ARGS ("K1=V1;K2=V2"). Unknown keys are kept in All and otherwise ignored, as if
// IgnoreUnknown were always set; empty segments are skipped. A segment without '=' is an error (code 4,
// invalid environment) naming it.
func ParseArgs(s string) (Args, error) {
	a := Args{All: map[string]string{}}
	for seg := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(seg) == "" {
			continue
		}
		k, v, ok := strings.Cut(seg, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return Args{}, Errorf(CodeInvalidEnvironment, "CNI_ARGS: %q is not a KEY=VALUE pair (CNI_ARGS is \"K1=V1;K2=V2\")", seg)
		}
		a.All[k] = v
		switch k {
		case ArgPodNamespace:
			a.PodNamespace = v
		case ArgPodName:
			a.PodName = v
		case ArgPodInfraContainerID:
			a.PodInfraContainerID = v
		case ArgPodUID:
			a.PodUID = v
		case ArgIP:
			for ip := range strings.SplitSeq(v, ",") {
				if ip = strings.TrimSpace(ip); ip != "" {
					a.IPs = append(a.IPs, ip)
				}
			}
		}
	}
	if (a.PodNamespace == "") != (a.PodName == "") {
		return Args{}, Errorf(CodeInvalidEnvironment, "CNI_ARGS: %s and %s must be given together (got %q)", ArgPodNamespace, ArgPodName, s)
	}
	return a, nil
}

// String renders the pod for messages.
func (a Args) String() string {
	if !a.IsPod() {
		return "(no pod)"
	}
	return fmt.Sprintf("pod %s/%s", a.PodNamespace, a.PodName)
}
