package kube

import (
	"log/slog"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tortie-net/tortie/common/api"
)

// k8sNetworkPolicyToPolicy converts a Kubernetes NetworkPolicy to the tortie NetworkPolicy
// knp.default.<name> in the default tier (api.ConvertK8sNetworkPolicy). Rules that cannot be converted
// are dropped by the conversion (which can only allow less) and logged.
func k8sNetworkPolicyToPolicy(log *slog.Logger, np *networkingv1.NetworkPolicy) (api.Resource, error) {
	out, warnings, err := api.ConvertK8sNetworkPolicy(np)
	if err != nil {
		return nil, err
	}
	if len(warnings) > 0 {
		log.Warn("Kubernetes NetworkPolicy converted with rules dropped",
			"namespace", np.Namespace, "name", np.Name, "warnings", strings.Join(warnings, "; "))
	}
	out.UID = np.UID
	out.CreationTimestamp = np.CreationTimestamp
	out.ResourceVersion = np.ResourceVersion
	return out, nil
}
