package dstest

import (
	"fmt"

	"github.com/tortie-net/tortie/common/api"
)

// Namespaces the suite puts namespaced objects in. A backend that needs namespaces to exist (the
// Kubernetes datastore) creates them in the newBackend function given to Run. NamespaceB starts with
// NamespaceA on purpose: a backend that selects a namespace by key prefix must not mix them up.
const (
	NamespaceA = "dstest-a"
	NamespaceB = "dstest-ab"
)

// IPPool returns a realistic cluster-scoped object: an IPv4 pool with VXLAN.
func IPPool(name, cidr string) *api.IPPool {
	p := api.NewIPPool()
	p.Name = name
	p.Labels = map[string]string{"dstest": "true"}
	p.Spec = api.IPPoolSpec{
		CIDR:         cidr,
		VXLANMode:    api.EncapCrossSubnet,
		IPIPMode:     api.EncapNever,
		NATOutgoing:  true,
		BlockSize:    26,
		NodeSelector: "all()",
		AllowedUses:  []api.IPPoolAllowedUse{api.IPPoolAllowedUseWorkload, api.IPPoolAllowedUseTunnel},
		// Set as SetDefaults sets it: the Kubernetes datastore's CRD schema defaults it too.
		AssignmentMode: ptr(api.AssignmentModeAutomatic),
	}
	return p
}

// NetworkPolicy returns a realistic namespaced object: a policy with an ingress and an egress rule.
func NetworkPolicy(namespace, name string) *api.NetworkPolicy {
	order := 100.0
	np := api.NewNetworkPolicy()
	np.Namespace = namespace
	np.Name = name
	np.Spec = api.NetworkPolicySpec{
		Tier:     "default",
		Order:    &order,
		Selector: fmt.Sprintf("app == '%s'", name),
		Types:    []api.PolicyType{api.PolicyTypeIngress, api.PolicyTypeEgress},
		Ingress: []api.Rule{{
			Action:   api.Allow,
			Protocol: api.NewProtocol(api.ProtocolTCP),
			Source:   api.EntityRule{Selector: "role == 'frontend'"},
			Destination: api.EntityRule{
				Ports: []api.Port{api.SinglePort(8080), api.NamedPort("metrics")},
			},
		}},
		Egress: []api.Rule{{
			Action:      api.Allow,
			Protocol:    api.NewProtocol(api.ProtocolUDP),
			Destination: api.EntityRule{Nets: []string{"10.96.0.10/32"}, Ports: []api.Port{api.SinglePort(53)}},
		}},
	}
	return np
}

// WorkloadEndpoint returns a realistic WorkloadEndpoint as the CNI plugin writes it, named the way
// Calico names them (<node>-k8s-<pod>-<iface>). i picks distinct addresses.
func WorkloadEndpoint(namespace, node, pod string, i int) *api.WorkloadEndpoint {
	w := api.NewWorkloadEndpoint()
	w.Namespace = namespace
	w.Name = fmt.Sprintf("%s-k8s-%s-eth0", node, pod)
	w.Labels = map[string]string{
		"app":                                  pod,
		"pod-template-hash":                    "5d4f8c7b9",
		"projectcalico.org/namespace":          namespace,
		"projectcalico.org/orchestrator":       "k8s",
		"projectcalico.org/serviceaccount":     "default",
		"app.kubernetes.io/name":               "dstest",
		"app.kubernetes.io/part-of":            "conformance",
		"topology.kubernetes.io/zone":          "zone-a",
		"security.tortie.dev/isolation-policy": "standard",
	}
	w.Spec = api.WorkloadEndpointSpec{
		Orchestrator:       "k8s",
		Node:               node,
		ContainerID:        fmt.Sprintf("%064x", i+1),
		Pod:                pod,
		Endpoint:           "eth0",
		ServiceAccountName: "default",
		IPNetworks:         []string{fmt.Sprintf("10.%d.%d.%d/32", 64+i>>16&63, i>>8&255, i&255)},
		Profiles:           []string{"kns." + namespace, "ksa." + namespace + ".default"},
		InterfaceName:      fmt.Sprintf("cali%011x", i),
		MAC:                fmt.Sprintf("ee:ee:ee:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255),
		Ports: []api.WorkloadEndpointPort{
			{Name: "http", Protocol: api.ProtocolFromString(api.ProtocolTCP), Port: 8080},
			{Name: "metrics", Protocol: api.ProtocolFromString(api.ProtocolTCP), Port: 9090},
		},
	}
	return w
}

func ptr[T any](v T) *T { return &v }
