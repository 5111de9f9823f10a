package api

import (
	"encoding/json"
	"maps"
)

// LabelTier names the tier of a policy. Calico stamps it on every NetworkPolicy, GlobalNetworkPolicy
// and staged policy when it is written (SetDefaults does the same) and reads a policy without it as
// tier "default".
const LabelTier = "projectcalico.org/tier"

// IsTieredPolicyKind reports whether objects of kind belong to a tier and are stored with the policy
// name in the projectcalico.org/metadata annotation: NetworkPolicy, GlobalNetworkPolicy,
// StagedNetworkPolicy and StagedGlobalNetworkPolicy.
func IsTieredPolicyKind(kind string) bool {
	switch kind {
	case KindNetworkPolicy, KindGlobalNetworkPolicy, KindStagedNetworkPolicy, KindStagedGlobalNetworkPolicy:
		return true
	}
	return false
}

// PolicyTier returns the tier of a tiered policy ("default" when unset) and whether obj is one.
func PolicyTier(obj Resource) (string, bool) {
	var tier string
	switch o := obj.(type) {
	case *NetworkPolicy:
		tier = o.Spec.Tier
	case *GlobalNetworkPolicy:
		tier = o.Spec.Tier
	case *StagedNetworkPolicy:
		tier = o.Spec.Tier
	case *StagedGlobalNetworkPolicy:
		tier = o.Spec.Tier
	default:
		return "", false
	}
	if tier == "" {
		tier = DefaultTierName
	}
	return tier, true
}

// PolicyNameAnnotation is the value of the projectcalico.org/metadata annotation that Calico's etcd
// datastore stores on a tiered policy: the policy's name, {"name":"<name>"}.
func PolicyNameAnnotation(name string) string {
	data, _ := json.Marshal(map[string]string{"name": name}) // a map of strings always marshals
	return string(data)
}

// WithStoredPolicyName returns obj's annotations with the projectcalico.org/metadata annotation that
// Calico's etcd datastore writes on tiered policies, or the annotations unchanged for other kinds.
func WithStoredPolicyName(obj Resource) map[string]string {
	ann := obj.GetAnnotations()
	if _, ok := PolicyTier(obj); !ok {
		return ann
	}
	ann = maps.Clone(ann)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationMetadata] = PolicyNameAnnotation(obj.GetName())
	return ann
}

// setTierLabel stamps the projectcalico.org/tier label with the policy's tier, as Calico's defaulting
// does.
func setTierLabel(obj Resource) {
	tier, ok := PolicyTier(obj)
	if !ok || obj.GetLabels()[LabelTier] == tier {
		return
	}
	labels := maps.Clone(obj.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelTier] = tier
	obj.SetLabels(labels)
}
