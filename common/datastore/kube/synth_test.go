package kube

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/testenv"
)

// ignoreServerSet leaves out what the API server assigns.
var ignoreServerSet = cmpopts.IgnoreFields(metav1.ObjectMeta{}, "UID", "CreationTimestamp", "ResourceVersion")

func mustGet(t *testing.T, b *Backend, key datastore.Key) api.Resource {
	t.Helper()
	obj, err := b.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return obj
}

func wantIs(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: got %v, want an error wrapping %q", what, err, target)
		}
	}
	if err != nil && !strings.Contains(err.Error(), "Kubernetes datastore") {
		t.Errorf("%s: error %q does not say where", what, err)
	}
}

func createNode(t *testing.T, cs kubernetes.Interface, n *corev1.Node) *corev1.Node {
	t.Helper()
	ctx := ctxFor(t)
	status := n.Status
	created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", n.Name, err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(ctxFor(t), n.Name, metav1.DeleteOptions{}) })
	created.Status = status
	if created, err = cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the status of node %s: %v", n.Name, err)
	}
	return created
}

func TestNodes(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cs := clientset(t, k)
	ctx := ctxFor(t)

	createNode(t, cs, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "node-a",
			Labels: map[string]string{"kubernetes.io/os": "linux", "zone": "a"},
			Annotations: map[string]string{
				api.NodeAnnotationIPv4Address: "10.0.0.5/24",
				api.NodeAnnotationASNumber:    "64513",
				"kubeadm.alpha/other":         "kept",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.5"},
			{Type: corev1.NodeHostName, Address: "node-a"},
		}},
	})
	createNode(t, cs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}})

	want := api.NewNode()
	want.Name = "node-a"
	want.Labels = map[string]string{"kubernetes.io/os": "linux", "zone": "a"}
	want.Annotations = map[string]string{api.NodeAnnotationKubeLabels: `{"kubernetes.io/os":"linux","zone":"a"}`}
	want.Spec = api.NodeSpec{
		BGP:      &api.NodeBGPSpec{IPv4Address: "10.0.0.5/24", ASNumber: api.NewASNumber(64513)},
		OrchRefs: []api.OrchRef{{NodeName: "node-a", Orchestrator: "k8s"}},
		Addresses: []api.NodeAddress{
			{Address: "10.0.0.5/24", Type: "CalicoNodeIP"},
			{Address: "10.0.0.5", Type: "InternalIP"},
		},
	}
	want.Status.PodCIDRs = []string{"10.244.1.0/24"}
	key := datastore.Key{Kind: api.KindNode, Name: "node-a"}
	got := mustGet(t, b, key).(*api.Node)
	if d := cmp.Diff(want, got, ignoreServerSet); d != "" {
		t.Errorf("Get node-a (-want +got):\n%s", d)
	}
	if got.UID == "" || got.ResourceVersion == "" {
		t.Errorf("uid %q / resourceVersion %q not set", got.UID, got.ResourceVersion)
	}

	objs, _, err := b.List(ctx, datastore.ListOptions{Kind: api.KindNode})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if !slices.Contains(names, "node-a") || !slices.Contains(names, "node-b") || !slices.IsSorted(names) {
		t.Errorf("List nodes = %v", names)
	}

	// Update writes the annotations (and only them), with the node's resourceVersion as CAS.
	upd := got.DeepCopy()
	upd.Spec.BGP.IPv4IPIPTunnelAddr = "10.65.0.1"
	upd.Spec.BGP.ASNumber = nil
	upd.Spec.IPv4VXLANTunnelAddr = "10.65.0.2"
	upd.Spec.VXLANTunnelMACAddr = "66:aa:bb:cc:dd:ee"
	upd.Status.WireguardPublicKey = "pubkey="
	upd.Labels["tortie-only"] = "kept" // kept in projectcalico.org/labels, as Calico keeps its node labels
	updated, err := b.Update(ctx, upd)
	if err != nil {
		t.Fatalf("Update node-a: %v", err)
	}
	if updated.GetResourceVersion() == got.ResourceVersion {
		t.Errorf("Update did not change the resourceVersion")
	}
	kn, err := cs.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAnn := map[string]string{
		api.NodeAnnotationIPv4Address:         "10.0.0.5/24",
		api.NodeAnnotationIPv4IPIPTunnelAddr:  "10.65.0.1",
		api.NodeAnnotationIPv4VXLANTunnelAddr: "10.65.0.2",
		api.NodeAnnotationVXLANTunnelMACAddr:  "66:aa:bb:cc:dd:ee",
		api.NodeAnnotationWireguardPublicKey:  "pubkey=",
		api.NodeAnnotationLabels:              `{"tortie-only":"kept"}`,
		"kubeadm.alpha/other":                 "kept",
	}
	if d := cmp.Diff(wantAnn, kn.Annotations); d != "" {
		t.Errorf("Kubernetes node annotations after Update (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"kubernetes.io/os": "linux", "zone": "a"}, kn.Labels); d != "" {
		t.Errorf("Update changed the Kubernetes node's labels (-want +got):\n%s", d)
	}
	wantUpd := upd.DeepCopy()
	if d := cmp.Diff(wantUpd, updated, ignoreServerSet); d != "" {
		t.Errorf("Update returned (-want +got):\n%s", d)
	}

	// CAS: the stale object is refused and changes nothing.
	stale := got.DeepCopy()
	stale.Spec.IPv4VXLANTunnelAddr = "10.99.99.99"
	_, err = b.Update(ctx, stale)
	wantIs(t, "Update with a stale resourceVersion", err, datastore.ErrConflict)
	if n := mustGet(t, b, key).(*api.Node); n.Spec.IPv4VXLANTunnelAddr != "10.65.0.2" {
		t.Errorf("a refused Update changed the node: %q", n.Spec.IPv4VXLANTunnelAddr)
	}
	// Unconditional update.
	uncond := updated.DeepCopyObject().(*api.Node)
	uncond.ResourceVersion = ""
	uncond.Spec.Wireguard = &api.NodeWireguardSpec{InterfaceIPv4Address: "10.66.0.1"}
	if _, err := b.Update(ctx, uncond); err != nil {
		t.Errorf("unconditional Update: %v", err)
	}
	if n := mustGet(t, b, key).(*api.Node); n.Spec.Wireguard == nil || n.Spec.Wireguard.InterfaceIPv4Address != "10.66.0.1" {
		t.Errorf("unconditional Update not applied: %+v", n.Spec.Wireguard)
	}

	// Nodes are Kubernetes' to create and delete.
	nn := api.NewNode()
	nn.Name = "node-new"
	_, err = b.Create(ctx, nn)
	wantIs(t, "Create node", err, datastore.ErrUnsupported)
	if err != nil && !strings.Contains(err.Error(), "Kubernetes Node") {
		t.Errorf("Create node: error %q does not explain", err)
	}
	_, err = b.Delete(ctx, key, "")
	wantIs(t, "Delete node", err, datastore.ErrUnsupported)
	_, err = b.Update(ctx, nn)
	wantIs(t, "Update missing node", err, datastore.ErrNotFound)
	_, err = b.Get(ctx, datastore.Key{Kind: api.KindNode, Name: "node-new"})
	wantIs(t, "Get missing node", err, datastore.ErrNotFound)
}

func createPod(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := ctxFor(t)
	status := pod.Status
	created, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	if status.Phase != "" || len(status.PodIPs) > 0 {
		created.Status = status
		if created, err = cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("setting the status of pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
	}
	return created
}

func testPod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "c", Image: "registry.invalid/app:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
}

func TestWorkloadEndpoints(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cs := clientset(t, k)
	ctx := ctxFor(t)
	const ns = "wep-test"
	ensureNamespace(t, cs, ns, nil)
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web-sa"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	web := testPod(ns, "web-0", "node-1")
	web.Spec.ServiceAccountName = "web-sa"
	createPod(t, cs, web)
	host := testPod(ns, "host", "node-1")
	host.Spec.HostNetwork = true
	createPod(t, cs, host)
	createPod(t, cs, testPod(ns, "pending", ""))
	done := testPod(ns, "done", "node-1")
	done.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, PodIP: "10.65.1.9", PodIPs: []corev1.PodIP{{IP: "10.65.1.9"}}}
	createPod(t, cs, done)
	running := testPod(ns, "running", "node-2")
	running.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.65.2.3", PodIPs: []corev1.PodIP{{IP: "10.65.2.3"}}}
	createPod(t, cs, running)

	wantWEP := func(pod, node, sa string, ips ...string) *api.WorkloadEndpoint {
		w := api.NewWorkloadEndpoint()
		w.Name = api.WorkloadEndpointName(node, "k8s", pod, "eth0")
		w.Namespace = ns
		w.Labels = map[string]string{"app": pod, api.LabelNamespace: ns, api.LabelOrchestrator: "k8s", api.LabelServiceAccount: sa}
		w.Spec = api.WorkloadEndpointSpec{
			Orchestrator: "k8s", Node: node, Pod: pod, Endpoint: "eth0", ServiceAccountName: sa,
			IPNetworks:    ips,
			Profiles:      []string{"kns." + ns, "ksa." + ns + "." + sa},
			InterfaceName: vethName(ns, pod),
			Ports:         []api.WorkloadEndpointPort{{Name: "http", Protocol: api.ProtocolFromString("TCP"), Port: 8080}},
		}
		return w
	}

	objs, rev, err := b.List(ctx, datastore.ListOptions{Kind: api.KindWorkloadEndpoint, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Resource{
		wantWEP("done", "node-1", "default"), // finished: no addresses
		wantWEP("web-0", "node-1", "web-sa"),
		wantWEP("running", "node-2", "default", "10.65.2.3/32"),
	}
	if d := cmp.Diff(want, objs, ignoreServerSet); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}

	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindWorkloadEndpoint, Namespace: ns}, rev)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// The CNI "creates" the endpoint: the pod's annotations are patched.
	webKey := datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: ns, Name: "node--1-k8s-web--0-eth0"}
	cur := mustGet(t, b, webKey).(*api.WorkloadEndpoint)
	cni := cur.DeepCopy()
	cni.ResourceVersion = ""
	cni.Spec.IPNetworks = []string{"10.65.0.5/32", "fd00::5/128"}
	cni.Spec.ContainerID = "c0ffee"
	created, err := b.Create(ctx, cni)
	if err != nil {
		t.Fatalf("Create endpoint: %v", err)
	}
	if d := cmp.Diff(api.Resource(cni), created, ignoreServerSet); d != "" {
		t.Errorf("Create returned (-want +got):\n%s", d)
	}
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAnn := map[string]string{
		api.AnnotationPodIP:       "10.65.0.5/32",
		api.AnnotationPodIPs:      "10.65.0.5/32,fd00::5/128",
		api.AnnotationContainerID: "c0ffee",
	}
	if d := cmp.Diff(wantAnn, pod.Annotations); d != "" {
		t.Errorf("pod annotations after Create (-want +got):\n%s", d)
	}
	if created.GetResourceVersion() != pod.ResourceVersion {
		t.Errorf("endpoint revision %s, pod's %s", created.GetResourceVersion(), pod.ResourceVersion)
	}

	// CAS on the pod's resourceVersion.
	stale := cur.DeepCopy()
	stale.Spec.IPNetworks = []string{"10.65.9.9/32"}
	_, err = b.Update(ctx, stale)
	wantIs(t, "Update with a stale revision", err, datastore.ErrConflict)
	_, err = b.Delete(ctx, webKey, cur.ResourceVersion)
	wantIs(t, "Delete with a stale revision", err, datastore.ErrConflict)

	// The kubelet's status wins once it has addresses.
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "10.65.0.5"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.65.0.5"}, {IP: "fd00::5"}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	withStatus := mustGet(t, b, webKey).(*api.WorkloadEndpoint)
	if d := cmp.Diff([]string{"10.65.0.5/32", "fd00::5/128"}, withStatus.Spec.IPNetworks); d != "" {
		t.Errorf("addresses from the status (-want +got):\n%s", d)
	}

	// Delete: the pod has lost its addresses; the endpoint stays without them.
	deleted, err := b.Delete(ctx, webKey, withStatus.ResourceVersion)
	if err != nil {
		t.Fatalf("Delete endpoint: %v", err)
	}
	if d := cmp.Diff(api.Resource(withStatus), deleted); d != "" {
		t.Errorf("Delete returned (-want +got):\n%s", d)
	}
	after := mustGet(t, b, webKey).(*api.WorkloadEndpoint)
	if len(after.Spec.IPNetworks) != 0 || after.Spec.ContainerID != "" {
		t.Errorf("after Delete: addresses %v, container %q", after.Spec.IPNetworks, after.Spec.ContainerID)
	}

	// The watch saw the writes, as Modified events of the pod's endpoint.
	var revs []string
	timeout := time.After(30 * time.Second)
	for len(revs) < 3 {
		select {
		case ev := <-w.Events():
			if ev.Type == datastore.Error {
				t.Fatalf("watch error: %v", ev.Err)
			}
			if ev.Key != webKey || ev.Type != datastore.Modified {
				t.Fatalf("unexpected event %s %s", ev.Type, ev.Key)
			}
			revs = append(revs, ev.Revision)
		case <-timeout:
			t.Fatalf("watch: only %d events", len(revs))
		}
	}
	if revs[0] != created.GetResourceVersion() || revs[2] != after.ResourceVersion {
		t.Errorf("event revisions %v, want %s … %s", revs, created.GetResourceVersion(), after.ResourceVersion)
	}

	// Missing pods, and pods that are not endpoints.
	missing := wantWEP("ghost", "node-1", "default", "10.65.0.6/32")
	_, err = b.Create(ctx, missing)
	wantIs(t, "Create for a missing pod", err, datastore.ErrNotFound, datastore.ErrUnsupported)
	_, err = b.Update(ctx, missing)
	wantIs(t, "Update for a missing pod", err, datastore.ErrNotFound)
	for _, name := range []string{
		api.WorkloadEndpointName("node-1", "k8s", "ghost", "eth0"),
		api.WorkloadEndpointName("node-1", "k8s", "host", "eth0"),    // host network
		api.WorkloadEndpointName("node-9", "k8s", "running", "eth0"), // wrong node
		api.WorkloadEndpointName("node-2", "k8s", "running", "eth1"), // other interface
		"not-a-workload-endpoint-name",
	} {
		_, err = b.Get(ctx, datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: ns, Name: name})
		wantIs(t, "Get "+name, err, datastore.ErrNotFound)
		_, err = b.Delete(ctx, datastore.Key{Kind: api.KindWorkloadEndpoint, Namespace: ns, Name: name}, "")
		wantIs(t, "Delete "+name, err, datastore.ErrNotFound)
	}
}

func TestProfiles(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cs := clientset(t, k)
	ctx := ctxFor(t)
	const ns = "prof-test"
	ensureNamespace(t, cs, ns, map[string]string{"team": "a"})
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "app-sa", Labels: map[string]string{"role": "app"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	nsProfile := api.NewProfile()
	nsProfile.Name = "kns." + ns
	nsProfile.Spec = api.ProfileSpec{
		Ingress: []api.Rule{{Action: api.Allow}},
		Egress:  []api.Rule{{Action: api.Allow}},
		LabelsToApply: map[string]string{
			"pcns.team": "a", "pcns.kubernetes.io/metadata.name": ns, "pcns.projectcalico.org/name": ns,
		},
	}
	saProfile := api.NewProfile()
	saProfile.Name = "ksa." + ns + ".app-sa"
	saProfile.Spec.LabelsToApply = map[string]string{"pcsa.role": "app", "pcsa.projectcalico.org/name": "app-sa"}

	for _, tc := range []struct {
		name string
		want api.Resource
	}{
		{"kns." + ns, nsProfile},
		{"ksa." + ns + ".app-sa", saProfile},
		{api.DefaultAllowProfile, defaultAllowProfile()},
	} {
		got := mustGet(t, b, datastore.Key{Kind: api.KindProfile, Name: tc.name})
		if d := cmp.Diff(tc.want, got, ignoreServerSet); d != "" {
			t.Errorf("Get %s (-want +got):\n%s", tc.name, d)
		}
	}
	for _, name := range []string{"kns.no-such-ns", "ksa." + ns + ".no-such-sa", "custom"} {
		_, err := b.Get(ctx, datastore.Key{Kind: api.KindProfile, Name: name})
		wantIs(t, "Get "+name, err, datastore.ErrNotFound)
	}

	objs, rev, err := b.List(ctx, datastore.ListOptions{Kind: api.KindProfile})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rev, "ns:") || !strings.Contains(rev, ";sa:") {
		t.Errorf("List revision %q is not composite", rev)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	for _, n := range []string{"kns." + ns, "ksa." + ns + ".app-sa", "ksa." + ns + ".default", api.DefaultAllowProfile, "kns.default"} {
		if !slices.Contains(names, n) {
			t.Errorf("List lacks %s: %v", n, names)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("List not sorted: %v", names)
	}

	_, err = b.Create(ctx, saProfile)
	wantIs(t, "Create profile", err, datastore.ErrUnsupported)
	_, err = b.Update(ctx, nsProfile)
	wantIs(t, "Update profile", err, datastore.ErrUnsupported)
	_, err = b.Delete(ctx, datastore.Key{Kind: api.KindProfile, Name: "kns." + ns}, "")
	wantIs(t, "Delete profile", err, datastore.ErrUnsupported)

	// Watch multiplexes namespaces and service accounts, from the composite revision.
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindProfile}, rev)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels["team"] = "b"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, w)
	if ev.Type != datastore.Modified || ev.Key.Name != "kns."+ns || ev.Object.(*api.Profile).Spec.LabelsToApply["pcns.team"] != "b" {
		t.Fatalf("event %s %s %+v, want Modified kns.%s with pcns.team=b", ev.Type, ev.Key, ev.Object, ns)
	}
	resume := ev.Revision
	if !strings.HasPrefix(resume, "ns:") {
		t.Errorf("event revision %q is not composite", resume)
	}
	if err := cs.CoreV1().ServiceAccounts(ns).Delete(ctx, "app-sa", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, w)
	if ev.Type != datastore.Deleted || ev.Key.Name != "ksa."+ns+".app-sa" {
		t.Fatalf("event %s %s, want Deleted ksa.%s.app-sa", ev.Type, ev.Key, ns)
	}

	// A watch resumed from the first event's revision sees only what came after it.
	w2, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindProfile}, resume)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	ev = nextEvent(t, w2)
	if ev.Type != datastore.Deleted || ev.Key.Name != "ksa."+ns+".app-sa" {
		t.Fatalf("resumed watch: event %s %s, want Deleted ksa.%s.app-sa", ev.Type, ev.Key, ns)
	}
}

func nextEvent(t *testing.T, w datastore.Watcher) datastore.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatal("watch ended")
		}
		if ev.Type == datastore.Error {
			t.Fatalf("watch error: %v", ev.Err)
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event in 30s")
	}
	panic("unreachable")
}

func TestKubernetesNetworkPolicies(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	b := newBackend(t, k)
	cs := clientset(t, k)
	ctx := ctxFor(t)
	const ns = "knp-test"
	ensureNamespace(t, cs, ns, nil)

	knp := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-web", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	created, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, knp, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.NetworkingV1().NetworkPolicies(ns).Delete(ctxFor(t), "allow-web", metav1.DeleteOptions{})
	})
	mine := api.NewNetworkPolicy()
	mine.Namespace = ns
	mine.Name = "mine"
	mine.Spec.Selector = "all()"
	mine.Spec.Types = []api.PolicyType{api.PolicyTypeIngress}
	if _, err := b.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = b.Delete(ctxFor(t), datastore.Key{Kind: api.KindNetworkPolicy, Namespace: ns, Name: "mine"}, "")
	})

	want, _, err := api.ConvertK8sNetworkPolicy(created)
	if err != nil {
		t.Fatal(err)
	}
	knpKey := datastore.Key{Kind: api.KindNetworkPolicy, Namespace: ns, Name: "knp.default.allow-web"}
	got := mustGet(t, b, knpKey)
	if d := cmp.Diff(api.Resource(want), got, ignoreServerSet); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}

	objs, rev, err := b.List(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if d := cmp.Diff([]string{"knp.default.allow-web", "mine"}, names); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(rev, "crd:") || !strings.Contains(rev, ";knp:") {
		t.Errorf("List revision %q is not composite", rev)
	}

	// Read-only.
	_, err = b.Update(ctx, got)
	wantIs(t, "Update knp", err, datastore.ErrUnsupported)
	_, err = b.Delete(ctx, knpKey, "")
	wantIs(t, "Delete knp", err, datastore.ErrUnsupported)
	fake := want.DeepCopy()
	fake.ResourceVersion = ""
	fake.Name = "knp.default.other"
	_, err = b.Create(ctx, fake)
	wantIs(t, "Create knp", err, datastore.ErrUnsupported)
	_, err = b.Get(ctx, datastore.Key{Kind: api.KindNetworkPolicy, Namespace: ns, Name: "knp.default.other"})
	wantIs(t, "Get missing knp", err, datastore.ErrNotFound)

	// Watch multiplexes both sources.
	w, err := b.Watch(ctx, datastore.ListOptions{Kind: api.KindNetworkPolicy, Namespace: ns}, rev)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created.Spec.PodSelector.MatchLabels["app"] = "web2"
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, w)
	if ev.Type != datastore.Modified || ev.Key != knpKey || !strings.Contains(ev.Object.(*api.NetworkPolicy).Spec.Selector, "web2") {
		t.Fatalf("event %s %s, want Modified %s with the new selector", ev.Type, ev.Key, knpKey)
	}
	other := mine.DeepCopy()
	other.Name = "other"
	if _, err := b.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, w)
	if ev.Type != datastore.Added || ev.Key.Name != "other" {
		t.Fatalf("event %s %s, want Added other", ev.Type, ev.Key)
	}
	if _, err := b.Delete(ctx, datastore.Key{Kind: api.KindNetworkPolicy, Namespace: ns, Name: "other"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "allow-web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]datastore.EventType{}
	for range 2 {
		ev = nextEvent(t, w)
		seen[ev.Key.Name] = ev.Type
	}
	if d := cmp.Diff(map[string]datastore.EventType{"other": datastore.Deleted, "knp.default.allow-web": datastore.Deleted}, seen); d != "" {
		t.Errorf("deletions (-want +got):\n%s", d)
	}
}
