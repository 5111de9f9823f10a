package kube

import (
	"time"

	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tortie-net/tortie/common/api"
)

func TestVethName(t *testing.T) {
	// Values from Calico's CNI: "cali" + sha1("<ns>.<pod>")[:11].
	for _, tc := range []struct{ ns, pod, want string }{
		{"default", "nginx", "calic440f455693"},
		{"kube-system", "coredns-abc", "cali3d5d6ab04b5"},
	} {
		if got := vethName(tc.ns, tc.pod); got != tc.want {
			t.Errorf("vethName(%q, %q) = %q, want %q", tc.ns, tc.pod, got, tc.want)
		}
	}
}

// basePod is a scheduled pod with a named port, a service account and the CNI's annotations.
func basePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-0", Namespace: "shop", UID: "uid-1", ResourceVersion: "42",
			Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{
				api.AnnotationContainerID: "abc123",
			},
		},
		Spec: corev1.PodSpec{
			NodeName:           "node-1",
			ServiceAccountName: "web-sa",
			Containers: []corev1.Container{{
				Name: "c",
				Ports: []corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080},
					{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
					{ContainerPort: 9000}, // unnamed, no host port: not a named port
					{ContainerPort: 9443, HostPort: 443, HostIP: "10.0.0.1", Protocol: corev1.ProtocolTCP},
				},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func baseWEP() *api.WorkloadEndpoint {
	w := api.NewWorkloadEndpoint()
	w.Name = "node--1-k8s-web--0-eth0"
	w.Namespace = "shop"
	w.UID = "uid-1"
	w.ResourceVersion = "42"
	w.Labels = map[string]string{
		"app":                   "web",
		api.LabelNamespace:      "shop",
		api.LabelOrchestrator:   "k8s",
		api.LabelServiceAccount: "web-sa",
	}
	w.Spec = api.WorkloadEndpointSpec{
		Orchestrator:       "k8s",
		Node:               "node-1",
		Pod:                "web-0",
		ContainerID:        "abc123",
		Endpoint:           "eth0",
		ServiceAccountName: "web-sa",
		Profiles:           []string{"kns.shop", "ksa.shop.web-sa"},
		InterfaceName:      vethName("shop", "web-0"),
		Ports: []api.WorkloadEndpointPort{
			{Name: "http", Protocol: api.ProtocolFromString("TCP"), Port: 8080},
			{Name: "dns", Protocol: api.ProtocolFromString("UDP"), Port: 53},
			{Protocol: api.ProtocolFromString("TCP"), Port: 9443, HostPort: 443, HostIP: "10.0.0.1"},
		},
	}
	return w
}

func TestPodToWorkloadEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*corev1.Pod)
		want   func(*api.WorkloadEndpoint) *api.WorkloadEndpoint // nil func: no endpoint
	}{{
		name:   "no addresses yet",
		modify: func(*corev1.Pod) {},
		want:   func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint { return w },
	}, {
		name: "status.podIPs, dual stack",
		modify: func(p *corev1.Pod) {
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.65.0.5"}, {IP: "fd00::5"}}
			p.Status.PodIP = "10.65.0.5"
			p.Annotations[api.AnnotationPodIPs] = "10.65.9.9/32" // the kubelet's view wins
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			w.Spec.IPNetworks = []string{"10.65.0.5/32", "fd00::5/128"}
			return w
		},
	}, {
		name:   "status.podIP only",
		modify: func(p *corev1.Pod) { p.Status.PodIP = "10.65.0.6" },
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			w.Spec.IPNetworks = []string{"10.65.0.6/32"}
			return w
		},
	}, {
		name: "CNI annotations when the status is empty: podIPs before podIP",
		modify: func(p *corev1.Pod) {
			p.Annotations[api.AnnotationPodIP] = "10.65.0.7/32"
			p.Annotations[api.AnnotationPodIPs] = "10.65.0.7/32,fd00::7/128"
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			w.Spec.IPNetworks = []string{"10.65.0.7/32", "fd00::7/128"}
			return w
		},
	}, {
		name:   "CNI podIP annotation alone",
		modify: func(p *corev1.Pod) { p.Annotations[api.AnnotationPodIP] = "10.65.0.8/32" },
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			w.Spec.IPNetworks = []string{"10.65.0.8/32"}
			return w
		},
	}, {
		name: "annotations cleared by the CNI's DEL: no addresses even if the status has some",
		modify: func(p *corev1.Pod) {
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.65.0.9"}}
			p.Annotations[api.AnnotationPodIP] = ""
			p.Annotations[api.AnnotationPodIPs] = ""
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint { return w },
	}, {
		name: "succeeded pod has no addresses",
		modify: func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodSucceeded
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.65.0.10"}}
			p.Annotations[api.AnnotationPodIP] = "10.65.0.10/32"
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint { return w },
	}, {
		name: "failed pod has no addresses",
		modify: func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.PodIP = "10.65.0.11"
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint { return w },
	}, {
		name:   "host-network pod is not an endpoint",
		modify: func(p *corev1.Pod) { p.Spec.HostNetwork = true; p.Status.PodIP = "10.0.0.1" },
	}, {
		name:   "unscheduled pod is not an endpoint",
		modify: func(p *corev1.Pod) { p.Spec.NodeName = "" },
	}, {
		name: "service account too long for a label value",
		modify: func(p *corev1.Pod) {
			p.Spec.ServiceAccountName = strings.Repeat("s", 64)
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			delete(w.Labels, api.LabelServiceAccount)
			w.Spec.ServiceAccountName = strings.Repeat("s", 64)
			w.Spec.Profiles = []string{"kns.shop", "ksa.shop." + strings.Repeat("s", 64)}
			return w
		},
	}, {
		name:   "no service account",
		modify: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "" },
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			delete(w.Labels, api.LabelServiceAccount)
			w.Spec.ServiceAccountName = ""
			w.Spec.Profiles = []string{"kns.shop"}
			return w
		},
	}, {
		name: "pod labels cannot override tortie's",
		modify: func(p *corev1.Pod) {
			p.Labels[api.LabelNamespace] = "other"
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint { return w },
	}, {
		name: "allowed source prefixes",
		modify: func(p *corev1.Pod) {
			p.Annotations[annotationAllowedSourcePrefixes] = `["192.168.0.0/16"]`
		},
		want: func(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
			w.Spec.AllowSpoofedSourcePrefixes = []string{"192.168.0.0/16"}
			return w
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod()
			tc.modify(pod)
			got, err := podToWorkloadEndpoint(pod)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if got != nil {
					t.Fatalf("got endpoint %s, want none", got.Name)
				}
				return
			}
			want := tc.want(baseWEP())
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("endpoint (-want +got):\n%s", d)
			}
		})
	}
}

func TestPodToWorkloadEndpointBadAddress(t *testing.T) {
	pod := basePod()
	pod.Annotations[api.AnnotationPodIP] = "not-an-ip"
	if _, err := podToWorkloadEndpoint(pod); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Errorf("got %v, want an error naming the bad address", err)
	}
}

func TestWorkloadEndpointAnnotations(t *testing.T) {
	w := baseWEP()
	w.Spec.IPNetworks = []string{"10.65.0.7/32", "fd00::7/128"}
	want := map[string]string{
		api.AnnotationPodIP:       "10.65.0.7/32",
		api.AnnotationPodIPs:      "10.65.0.7/32,fd00::7/128",
		api.AnnotationContainerID: "abc123",
	}
	if d := cmp.Diff(want, workloadEndpointAnnotations(w)); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	// The annotations read back give the same addresses.
	pod := basePod()
	for k, v := range want {
		pod.Annotations[k] = v
	}
	got, err := podToWorkloadEndpoint(pod)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(w.Spec.IPNetworks, got.Spec.IPNetworks); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func TestNamespaceAndServiceAccountProfiles(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "shop", UID: "ns-uid", ResourceVersion: "7",
		Labels: map[string]string{"team": "a", "kubernetes.io/metadata.name": "shop"},
	}}
	wantNS := api.NewProfile()
	wantNS.Name = "kns.shop"
	wantNS.UID = "ns-uid"
	wantNS.ResourceVersion = "7"
	wantNS.Spec = api.ProfileSpec{
		Ingress: []api.Rule{{Action: api.Allow}},
		Egress:  []api.Rule{{Action: api.Allow}},
		LabelsToApply: map[string]string{
			"pcns.team":                        "a",
			"pcns.kubernetes.io/metadata.name": "shop",
			"pcns.projectcalico.org/name":      "shop",
		},
	}
	if d := cmp.Diff(wantNS, namespaceToProfile(ns)); d != "" {
		t.Errorf("namespace profile (-want +got):\n%s", d)
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: "web-sa", Namespace: "shop", UID: "sa-uid", ResourceVersion: "8",
		Labels: map[string]string{"role": "web"},
	}}
	wantSA := api.NewProfile()
	wantSA.Name = "ksa.shop.web-sa"
	wantSA.UID = "sa-uid"
	wantSA.ResourceVersion = "8"
	wantSA.Spec = api.ProfileSpec{LabelsToApply: map[string]string{
		"pcsa.role":                   "web",
		"pcsa.projectcalico.org/name": "web-sa",
	}}
	if d := cmp.Diff(wantSA, serviceAccountToProfile(sa)); d != "" {
		t.Errorf("service account profile (-want +got):\n%s", d)
	}
}

func TestParseProfileName(t *testing.T) {
	for _, tc := range []struct {
		name, src, ns, sa string
		ok                bool
	}{
		{"kns.shop", "ns", "shop", "", true},
		{"ksa.shop.web-sa", "sa", "shop", "web-sa", true},
		{"ksa.shop.web.sa", "sa", "shop", "web.sa", true}, // SA names may contain dots
		{"ksa.shop", "sa", "", "", false},
		{"kns.", "ns", "", "", false},
		{"my-profile", "", "", "", false},
	} {
		src, ns, sa, ok := parseProfileName(tc.name)
		if ok != tc.ok || (ok && (src != tc.src || ns != tc.ns || sa != tc.sa)) {
			t.Errorf("parseProfileName(%q) = %q %q %q %v, want %q %q %q %v", tc.name, src, ns, sa, ok, tc.src, tc.ns, tc.sa, tc.ok)
		}
	}
}

func TestK8sNodeToNode(t *testing.T) {
	k := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "node-1", UID: "n-uid", ResourceVersion: "9",
			Labels: map[string]string{"kubernetes.io/os": "linux"},
			Annotations: map[string]string{
				api.NodeAnnotationIPv4Address:         "10.0.0.5/24",
				api.NodeAnnotationIPv6Address:         "fd00::5/64",
				api.NodeAnnotationASNumber:            "64513",
				api.NodeAnnotationIPv4IPIPTunnelAddr:  "10.65.0.1",
				api.NodeAnnotationIPv4VXLANTunnelAddr: "10.65.0.2",
				api.NodeAnnotationVXLANTunnelMACAddr:  "66:aa:bb:cc:dd:ee",
				api.NodeAnnotationWireguardPublicKey:  "key=",
				api.NodeAnnotationInterfaces:          `[{"name":"eth0","addresses":["10.0.0.5"]}]`,
				"unrelated":                           "x",
			},
		},
		Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.5"},
			{Type: corev1.NodeHostName, Address: "node-1"},
		}},
	}
	want := api.NewNode()
	want.Name = "node-1"
	want.UID = "n-uid"
	want.ResourceVersion = "9"
	want.Labels = map[string]string{"kubernetes.io/os": "linux"}
	want.Annotations = map[string]string{api.NodeAnnotationKubeLabels: `{"kubernetes.io/os":"linux"}`}
	want.Spec = api.NodeSpec{
		BGP: &api.NodeBGPSpec{
			IPv4Address: "10.0.0.5/24", IPv6Address: "fd00::5/64", ASNumber: api.NewASNumber(64513),
			IPv4IPIPTunnelAddr: "10.65.0.1",
		},
		IPv4VXLANTunnelAddr: "10.65.0.2",
		VXLANTunnelMACAddr:  "66:aa:bb:cc:dd:ee",
		OrchRefs:            []api.OrchRef{{NodeName: "node-1", Orchestrator: "k8s"}},
		Addresses: []api.NodeAddress{
			{Address: "10.0.0.5/24", Type: "CalicoNodeIP"},
			{Address: "fd00::5/64", Type: "CalicoNodeIP"},
			{Address: "10.0.0.5", Type: "InternalIP"},
		},
		Interfaces: []api.NodeInterface{{Name: "eth0", Addresses: []string{"10.0.0.5"}}},
	}
	want.Status = api.NodeStatus{WireguardPublicKey: "key=", PodCIDRs: []string{"10.244.1.0/24"}}
	got := k8sNodeToNode(k)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("node (-want +got):\n%s", d)
	}

	// Writing the node back produces the same annotations (and removes the ones left empty).
	ann, err := nodeAnnotations(got)
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range k.Annotations {
		if key == "unrelated" {
			if _, ok := ann[key]; ok {
				t.Errorf("nodeAnnotations touches %q", key)
			}
			continue
		}
		if ann[key] != v {
			t.Errorf("annotation %s = %q, want %q", key, ann[key], v)
		}
	}
	if v, ok := ann[api.NodeAnnotationRouteReflectorClusterID]; !ok || v != "" {
		t.Errorf("an unset field must remove its annotation: got %q, %v", v, ok)
	}
	if ann[api.NodeAnnotationLabels] != "" || ann[api.NodeAnnotationAnnotations] != "" {
		t.Errorf("the Kubernetes labels must not be copied into %s: %q, %q", api.NodeAnnotationLabels, ann[api.NodeAnnotationLabels], ann[api.NodeAnnotationAnnotations])
	}

	// Labels and annotations set through Calico live in the Node's annotations; Kubernetes labels win.
	k.Annotations[api.NodeAnnotationLabels] = `{"rack":"a1","kubernetes.io/os":"calico-value"}`
	k.Annotations[api.NodeAnnotationAnnotations] = `{"owner":"net-team"}`
	got = k8sNodeToNode(k)
	if d := cmp.Diff(map[string]string{"rack": "a1", "kubernetes.io/os": "linux"}, got.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"owner": "net-team", api.NodeAnnotationKubeLabels: `{"kubernetes.io/os":"linux"}`}, got.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	got.Labels["zone"] = "z1"
	if ann, err = nodeAnnotations(got); err != nil {
		t.Fatal(err)
	}
	if ann[api.NodeAnnotationLabels] != `{"rack":"a1","zone":"z1"}` || ann[api.NodeAnnotationAnnotations] != `{"owner":"net-team"}` {
		t.Errorf("written %s = %q, %s = %q", api.NodeAnnotationLabels, ann[api.NodeAnnotationLabels], api.NodeAnnotationAnnotations, ann[api.NodeAnnotationAnnotations])
	}

	// A bad AS number leaves the field empty instead of hiding the node.
	k.Annotations[api.NodeAnnotationASNumber] = "not-a-number"
	if got := k8sNodeToNode(k); got.Spec.BGP == nil || got.Spec.BGP.ASNumber != nil {
		t.Errorf("bad AS number: BGP = %+v", got.Spec.BGP)
	}
}

func TestCRMetadata(t *testing.T) {
	info, _ := api.LookupKind(api.KindIPPool)
	pool := api.NewIPPool()
	pool.Name = "p"
	pool.Labels = map[string]string{"a": "1"}
	pool.Annotations = map[string]string{"note": "x", api.AnnotationMetadata: "stale"}
	pool.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "o-uid"}}
	pool.UID = "ignored"
	pool.Spec.CIDR = "10.0.0.0/16"

	u, err := toCR(info, pool)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "crd.projectcalico.org/v1" || u.GetKind() != "IPPool" {
		t.Errorf("custom resource is %s %s", u.GetAPIVersion(), u.GetKind())
	}
	if len(u.GetOwnerReferences()) != 0 || u.GetUID() != "" {
		t.Errorf("owner references and uid must not be on the custom resource: %+v", u.Object["metadata"])
	}
	if l := u.GetLabels(); len(l) != 0 {
		t.Errorf("user labels must not be on the custom resource (Calico keeps them in %s): %v", api.AnnotationMetadata, l)
	}
	if d := cmp.Diff(map[string]string{api.AnnotationMetadata: `{"labels":{"a":"1"},"annotations":{"note":"x"},` +
		`"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"o-uid"}]}`}, u.GetAnnotations()); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	if !strings.Contains(u.GetAnnotations()[api.AnnotationMetadata], "o-uid") {
		t.Errorf("metadata annotation %q lacks the owner reference", u.GetAnnotations()[api.AnnotationMetadata])
	}

	// Round trip: what the API server returns reads back as the object.
	u.SetUID("cr-uid")
	u.SetResourceVersion("5")
	got, err := fromCR(info, u)
	if err != nil {
		t.Fatal(err)
	}
	want := pool.DeepCopy()
	want.UID = "cr-uid"
	want.ResourceVersion = "5"
	want.Annotations = map[string]string{"note": "x"}
	if d := cmp.Diff(api.Resource(want), got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

// TestCalicoWrittenCR reads custom resources as Calico's v1-CRD mode writes them.
func TestCalicoWrittenCR(t *testing.T) {
	info, _ := api.LookupKind(api.KindGlobalNetworkSet)
	for _, tc := range []struct {
		name            string
		labels, annots  map[string]string
		wantLabels      map[string]string
		wantAnnotations map[string]string
		wantCreated     metav1.Time
	}{{
		name:   "current Calico: labels and annotations on the CR, the rest in the annotation",
		labels: map[string]string{"role": "db"},
		annots: map[string]string{
			"user":                 "note",
			api.AnnotationMetadata: `{"creationTimestamp":"2024-01-01T00:00:00Z","uid":"6a2b0f2e-0000-0000-0000-000000000000"}`,
		},
		wantLabels:      map[string]string{"role": "db"},
		wantAnnotations: map[string]string{"user": "note"},
		wantCreated:     metav1.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}, {
		name: "older Calico: labels and annotations only inside the metadata annotation",
		annots: map[string]string{
			api.AnnotationMetadata: `{"labels":{"role":"db","tier":"x"},"annotations":{"user":"note"}}`,
		},
		wantLabels:      map[string]string{"role": "db", "tier": "x"},
		wantAnnotations: map[string]string{"user": "note"},
	}, {
		name:   "both: the metadata annotation's values win, as in Calico",
		labels: map[string]string{"role": "web"},
		annots: map[string]string{
			api.AnnotationMetadata: `{"labels":{"role":"db","tier":"x"}}`,
		},
		wantLabels: map[string]string{"role": "db", "tier": "x"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "crd.projectcalico.org/v1",
				"kind":       "GlobalNetworkSet",
				"metadata":   map[string]any{"name": "db-nets", "resourceVersion": "11", "uid": "cr-uid", "generation": int64(3)},
				"spec":       map[string]any{"nets": []any{"10.1.0.0/16"}},
			}}
			u.SetLabels(tc.labels)
			u.SetAnnotations(tc.annots)
			got, err := fromCR(info, u)
			if err != nil {
				t.Fatal(err)
			}
			want := api.NewGlobalNetworkSet()
			want.Name = "db-nets"
			want.ResourceVersion = "11"
			want.UID = types.UID("cr-uid")
			want.Labels = tc.wantLabels
			want.Annotations = tc.wantAnnotations
			want.Spec.Nets = []string{"10.1.0.0/16"}
			want.CreationTimestamp = tc.wantCreated
			if d := cmp.Diff(api.Resource(want), got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}

	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkSet",
		"metadata": map[string]any{"name": "bad", "annotations": map[string]any{api.AnnotationMetadata: "{not json"}},
	}}
	if _, err := fromCR(info, u); err == nil || !strings.Contains(err.Error(), api.AnnotationMetadata) {
		t.Errorf("a malformed metadata annotation: got %v, want an error naming it", err)
	}
}

func TestRevisions(t *testing.T) {
	srcs := []string{"crd", "knp"}
	rev := compositeRevision(map[string]string{"knp": "20", "crd": "10"})
	if rev != "crd:10;knp:20" {
		t.Errorf("compositeRevision = %q", rev)
	}
	for _, tc := range []struct {
		rev     string
		want    map[string]string
		wantErr string
	}{
		{rev: rev, want: map[string]string{"crd": "10", "knp": "20"}},
		{rev: "15", want: map[string]string{"crd": "15", "knp": "15"}},
		{rev: "", want: map[string]string{"crd": "", "knp": ""}},
		{rev: "crd:10", wantErr: `lacks source "knp"`},
		{rev: "crd:10;pod:3", wantErr: `source "pod"`},
		{rev: "crd:;knp:1", wantErr: "malformed"},
	} {
		got, err := parseRevision(tc.rev, srcs)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRevision(%q): got %v, want error containing %q", tc.rev, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRevision(%q): %v", tc.rev, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("parseRevision(%q) (-want +got):\n%s", tc.rev, d)
		}
	}
}

func TestReadCRDs(t *testing.T) {
	fsys := fstest.MapFS{
		"a.yaml": {Data: []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ippools.crd.projectcalico.org
---
# a comment-only document
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-a-crd
`)},
		"b.json":    {Data: []byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"tiers.crd.projectcalico.org"}}`)},
		"README.md": {Data: []byte("not a manifest")},
	}
	got, err := readCRDs(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range got {
		names = append(names, u.GetName())
	}
	if d := cmp.Diff([]string{"ippools.crd.projectcalico.org", "tiers.crd.projectcalico.org"}, names); d != "" {
		t.Errorf("CRDs (-want +got):\n%s", d)
	}

	fsys["c.yaml"] = &fstest.MapFile{Data: []byte("kind: [unclosed")}
	if _, err := readCRDs(fsys); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Errorf("bad manifest: got %v, want an error naming c.yaml", err)
	}
}
