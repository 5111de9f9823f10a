//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/datastore/kube"
)

// objects is how the lab tells the datastore about namespaces, pods and nodes. In etcd it writes what
// tortie-controllers would (namespace profiles, labels and ports on the CNI plugin's
// WorkloadEndpoints); in the Kubernetes datastore it writes what kubectl and the kubelet would
// (Namespace, Pod and Node objects) and the kube datastore derives the rest, as in a real cluster.
type objects interface {
	// putNamespace creates the namespace, or replaces its labels.
	putNamespace(ctx context.Context, name string, labels map[string]string, create bool) error
	// deleteNamespace deletes an empty namespace with its NetworkPolicies and NetworkSets.
	deleteNamespace(ctx context.Context, name string) error
	// podCNIArgsIP says whether a pod's --ip goes to the plugin as CNI_ARGS IP= (etcd: nothing else
	// carries it) rather than as the Pod's ipAddrs annotation.
	podCNIArgsIP() bool
	// createPod runs before CNI ADD; podStarted after it; deletePod after CNI DEL. undoCreate undoes
	// createPod when the pod cannot be completed.
	createPod(ctx context.Context, node *Node, p *Pod, ip netip.Addr) error
	undoCreate(ctx context.Context, p *Pod)
	podStarted(ctx context.Context, node *Node, p *Pod) error
	labelPod(ctx context.Context, node *Node, p *Pod) error
	deletePod(ctx context.Context, p *Pod) error
	// addNode registers a node brought back by `node add`.
	addNode(ctx context.Context, n *Node) error
}

// etcdObjects: the etcd datastore, through the lab's own writes (lab.go, pods.go).
type etcdObjects struct{ l *Lab }

func (o etcdObjects) putNamespace(ctx context.Context, name string, labels map[string]string, _ bool) error {
	return o.l.writeProfile(ctx, name, labels)
}
func (o etcdObjects) deleteNamespace(ctx context.Context, name string) error {
	return o.l.deleteEtcdNamespace(ctx, name)
}
func (etcdObjects) podCNIArgsIP() bool                                       { return true }
func (etcdObjects) createPod(context.Context, *Node, *Pod, netip.Addr) error { return nil }
func (etcdObjects) undoCreate(context.Context, *Pod)                         {}
func (o etcdObjects) podStarted(ctx context.Context, node *Node, p *Pod) error {
	return o.l.writeEndpoint(ctx, node, p)
}
func (o etcdObjects) labelPod(ctx context.Context, node *Node, p *Pod) error {
	return o.l.writeEndpoint(ctx, node, p)
}
func (etcdObjects) deletePod(context.Context, *Pod) error { return nil }
func (etcdObjects) addNode(context.Context, *Node) error  { return nil }

// kubeObjects: the Kubernetes datastore, through Kubernetes objects; the lab stands in for kubectl,
// the kubelet and the namespace controller.
type kubeObjects struct {
	cs kubernetes.Interface
	be datastore.Backend
}

func (o kubeObjects) putNamespace(ctx context.Context, name string, labels map[string]string, create bool) error {
	if create {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)}}
		if _, err := o.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Namespace %s: %w", name, err)
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		ns, err := o.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading Namespace %s: %w", name, err)
		}
		// The API server keeps kubernetes.io/metadata.name on every namespace.
		ns.Labels = maps.Clone(labels)
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = name
		_, err = o.cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
		if err == nil || attempt >= 5 || !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("labelling Namespace %s: %w", name, err)
			}
			return nil
		}
	}
}

// deleteNamespace deletes the namespace's policies and network sets, then the Namespace, and
// finalizes it as the namespace controller would (the lab runs no controller-manager).
func (o kubeObjects) deleteNamespace(ctx context.Context, name string) error {
	if err := o.cs.NetworkingV1().NetworkPolicies(name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the Kubernetes NetworkPolicies in %s: %w", name, err)
	}
	for _, kind := range []string{api.KindNetworkPolicy, api.KindNetworkSet} {
		objs, _, err := o.be.List(ctx, datastore.ListOptions{Kind: kind, Namespace: name})
		if err != nil {
			return fmt.Errorf("listing %ss in %s: %w", kind, name, err)
		}
		for _, obj := range objs {
			if strings.HasPrefix(obj.GetName(), api.K8sNetworkPolicyNamePrefix) {
				continue
			}
			if _, err := o.be.Delete(ctx, datastore.Key{Kind: kind, Namespace: name, Name: obj.GetName()}, ""); err != nil && !errors.Is(err, datastore.ErrNotFound) {
				return fmt.Errorf("deleting %s %s/%s: %w", kind, name, obj.GetName(), err)
			}
		}
	}
	if err := o.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Namespace %s: %w", name, err)
	}
	ns, err := o.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Namespace %s: %w", name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := o.cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing Namespace %s: %w", name, err)
	}
	return nil
}

func (kubeObjects) podCNIArgsIP() bool { return false }

// createPod creates the Pod as a scheduler and kubectl would leave it for the kubelet: bound to the
// node, with its labels, one container declaring the named ports, and --ip as Calico's ipAddrs
// annotation, which the CNI plugin reads.
func (o kubeObjects) createPod(ctx context.Context, node *Node, p *Pod, ip netip.Addr) error {
	c := corev1.Container{Name: "serve", Image: "tortie-lab/serve-pod"}
	for _, pt := range p.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: pt.Name, ContainerPort: int32(pt.Port), Protocol: corev1.Protocol(pt.Protocol)})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: maps.Clone(p.Labels)},
		Spec:       corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{c}, ServiceAccountName: p.ServiceAccount},
	}
	if ip.IsValid() {
		raw, _ := json.Marshal([]string{ip.String()})
		pod.Annotations = map[string]string{api.AnnotationIPAddrs: string(raw)}
	}
	created, err := o.cs.CoreV1().Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("pod %s: creating the Pod: %w", p.ID(), err)
	}
	p.UID = string(created.UID)
	return nil
}

func (o kubeObjects) undoCreate(ctx context.Context, p *Pod) {
	_ = o.deletePod(context.WithoutCancel(ctx), p)
}

// podStarted reports the pod running as the kubelet does once the sandbox has its address: phase
// Running, podIP(s), through the status subresource.
func (o kubeObjects) podStarted(ctx context.Context, node *Node, p *Pod) error {
	for attempt := 0; ; attempt++ {
		pod, err := o.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("pod %s: reading the Pod: %w", p.ID(), err)
		}
		now := metav1.Now()
		pod.Status = corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: node.IP.Addr().String(), HostIPs: []corev1.HostIP{{IP: node.IP.Addr().String()}},
			PodIP: p.IP.String(), PodIPs: []corev1.PodIP{{IP: p.IP.String()}}, StartTime: &now,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
		}
		_, err = o.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if attempt >= 5 || !apierrors.IsConflict(err) {
			return fmt.Errorf("pod %s: updating the Pod's status: %w", p.ID(), err)
		}
	}
}

// labelPod replaces the Pod's labels (a JSON merge patch of the whole label map, guarded by the
// resourceVersion it was computed from; retried when the CNI plugin's annotations moved it on).
func (o kubeObjects) labelPod(ctx context.Context, _ *Node, p *Pod) error {
	for attempt := 0; ; attempt++ {
		pod, err := o.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("pod %s: reading the Pod: %w", p.ID(), err)
		}
		labels := map[string]any{}
		for k := range pod.Labels {
			labels[k] = nil
		}
		for k, v := range p.Labels {
			labels[k] = v
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "resourceVersion": pod.ResourceVersion}})
		if err != nil {
			return err
		}
		_, err = o.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			return nil
		}
		if attempt >= 5 || !apierrors.IsConflict(err) {
			return fmt.Errorf("pod %s: labelling the Pod: %w", p.ID(), err)
		}
	}
}

// deletePod deletes the Pod at once (grace period 0), as the kubelet confirms a terminated pod.
func (o kubeObjects) deletePod(ctx context.Context, p *Pod) error {
	zero := int64(0)
	err := o.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s: deleting the Pod: %w", p.ID(), err)
	}
	return nil
}

func (o kubeObjects) addNode(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return createKubeNode(ctx, o.cs, n)
}

// openKube opens a lab on the Kubernetes datastore: the kube backend and a client for the
// Kubernetes objects, both through the lab's kubeconfig.
func openKube(dir string, s *State, unlock func()) (*Lab, error) {
	be, err := kube.New(kube.Config{Kubeconfig: s.Kubeconfig, RequestTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("the lab's kube-apiserver %s: %w", s.APIServerURL, err)
	}
	cs, err := kubeClient(s)
	if err != nil {
		_ = be.Close()
		return nil, err
	}
	return &Lab{dir: dir, s: s, be: be, obj: kubeObjects{cs: cs, be: be}, unlock: unlock}, nil
}

// kubeEnv is tortiectl's environment on the Kubernetes datastore.
func kubeEnv(s *State, k string) string {
	switch k {
	case "DATASTORE_TYPE":
		return "kubernetes"
	case "KUBECONFIG":
		return s.Kubeconfig
	}
	return ""
}

// datastoreEnv is the agents' datastore settings, as a calico-node DaemonSet sets them.
func datastoreEnv(s *State) []string {
	if s.Datastore == "kubernetes" {
		return []string{"DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + s.Kubeconfig}
	}
	return []string{"DATASTORE_TYPE=etcdv3", "ETCD_ENDPOINTS=" + s.EtcdURL}
}

// cniDatastore is the CNI configuration's datastore settings.
func cniDatastore(s *State) map[string]any {
	if s.Datastore == "kubernetes" {
		return map[string]any{"datastore_type": "kubernetes", "kubernetes": map[string]any{"kubeconfig": s.Kubeconfig}}
	}
	return map[string]any{"datastore_type": "etcdv3", "etcd_endpoints": s.EtcdURL}
}

func nodeNames(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		if !n.Removed {
			out = append(out, n.Name)
		}
	}
	return out
}

// printKubeStatus adds the kube-apiserver's line to `status`.
func printKubeStatus(ctx context.Context, w io.Writer, s *State) {
	health := "ready"
	if err := kubeHealthy(ctx, s); err != nil {
		health = "not ready: " + err.Error()
	}
	printf(w, "kube-apiserver %s (pid %d, %s, %s)  kubeconfig %s\n", s.APIServerURL, s.APIServer.PID, aliveWord(s.APIServer.Alive()), health, s.Kubeconfig)
}

// putServiceAccount creates or relabels a ServiceAccount; the kube datastore presents it as the
// profile ksa.<ns>.<name> with its labels to apply (sa add, sa label).
func (o kubeObjects) putServiceAccount(ctx context.Context, ns, name string, labels map[string]string) error {
	for attempt := 0; ; attempt++ {
		sa, err := o.cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			sa = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: maps.Clone(labels)}}
			_, err = o.cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
		case err == nil:
			sa.Labels = maps.Clone(labels)
			_, err = o.cs.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
		}
		if err == nil {
			return nil
		}
		if attempt >= 5 || !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("writing ServiceAccount %s/%s: %w", ns, name, err)
		}
	}
}

// deleteServiceAccount deletes a ServiceAccount (sa del; ns del, as the namespace controller would).
func (o kubeObjects) deleteServiceAccount(ctx context.Context, ns, name string) error {
	err := o.cs.CoreV1().ServiceAccounts(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ServiceAccount %s/%s: %w", ns, name, err)
	}
	return nil
}
