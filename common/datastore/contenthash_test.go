package datastore

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
)

// TestContentHashAgreesWithSameContent: the digest the syncer keeps instead of the object must give
// the same answer as SameContent for every kind of difference SameContent ignores or sees.
func TestContentHashAgreesWithSameContent(t *testing.T) {
	order := 100.0
	base := func() *api.WorkloadEndpoint {
		w := api.NewWorkloadEndpoint()
		w.Namespace, w.Name, w.ResourceVersion, w.Generation = "ns", "node-k8s-pod-eth0", "5", 1
		w.Labels = map[string]string{"app": "web", "tier": "front"}
		w.CreationTimestamp = metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
		w.Spec.Node, w.Spec.Pod = "node", "pod"
		w.Spec.IPNetworks = []string{"10.65.0.7/32"}
		return w
	}
	pol := func() *api.NetworkPolicy {
		p := api.NewNetworkPolicy()
		p.Namespace, p.Name = "ns", "np"
		p.Spec.Order = &order
		p.Spec.Selector = "app == 'web'"
		return p
	}
	for _, tc := range []struct {
		name string
		a, b api.Resource
	}{
		{"identical", base(), base()},
		{"revision, generation and managed fields", base(), func() api.Resource {
			w := base()
			w.ResourceVersion, w.Generation = "9", 4
			w.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
			return w
		}()},
		{"nil and empty labels", func() api.Resource { w := base(); w.Labels = nil; return w }(),
			func() api.Resource { w := base(); w.Labels = map[string]string{}; return w }()},
		{"nil and empty slice", func() api.Resource { w := base(); w.Spec.IPNetworks = nil; return w }(),
			func() api.Resource { w := base(); w.Spec.IPNetworks = []string{}; return w }()},
		{"same instant in another zone", base(), func() api.Resource {
			w := base()
			w.CreationTimestamp = metav1.NewTime(w.CreationTimestamp.In(time.FixedZone("x", 3600)))
			return w
		}()},
		{"label value", base(), func() api.Resource { w := base(); w.Labels["tier"] = "back"; return w }()},
		{"label moved between keys", base(), func() api.Resource {
			w := base()
			w.Labels = map[string]string{"app": "front", "tier": "web"}
			return w
		}()},
		{"address", base(), func() api.Resource { w := base(); w.Spec.IPNetworks = []string{"10.65.0.8/32"}; return w }()},
		{"nil and set pointer", pol(), func() api.Resource { p := pol(); p.Spec.Order = nil; return p }()},
		{"pointer target", pol(), func() api.Resource { o := 200.0; p := pol(); p.Spec.Order = &o; return p }()},
		{"rule added", pol(), func() api.Resource { p := pol(); p.Spec.Ingress = []api.Rule{{Action: "Allow"}}; return p }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			same := SameContent(tc.a, tc.b)
			if hashSame := contentHash(tc.a) == contentHash(tc.b); hashSame != same {
				t.Errorf("contentHash equal = %t, SameContent = %t", hashSame, same)
			}
		})
	}
}
