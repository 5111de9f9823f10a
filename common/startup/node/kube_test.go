package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore/memory"
	"github.com/tortie-net/tortie/common/startup/autodetect"
)

func kubeadmConfigMap(podSubnet string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.0
networking:
  dnsDomain: cluster.local
  podSubnet: ` + podSubnet + `
  serviceSubnet: 10.96.0.0/12
`},
	}
}

func TestParseKubeadmConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cm      *corev1.ConfigMap
		want    kubeadmConfig
		warning string
	}{
		{"v4", kubeadmConfigMap("10.244.0.0/16"), kubeadmConfig{PodSubnetV4: "10.244.0.0/16"}, ""},
		{"dual stack, v6 first", kubeadmConfigMap("fd00:10:244::/56, 10.244.0.0/16,10.245.0.0/16"),
			kubeadmConfig{PodSubnetV4: "10.244.0.0/16", PodSubnetV6: "fd00:10:244::/56"}, ""},
		{"no podSubnet", kubeadmConfigMap(`""`), kubeadmConfig{}, ""},
		{"bad entry", kubeadmConfigMap("10.244.0.0/16,bogus"), kubeadmConfig{PodSubnetV4: "10.244.0.0/16"}, "bogus"},
		{"no ClusterConfiguration", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"}},
			kubeadmConfig{}, "no ClusterConfiguration key"},
		{"not YAML", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
			Data: map[string]string{"ClusterConfiguration": "networking: [unclosed"}}, kubeadmConfig{}, "not valid YAML"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, warning := parseKubeadmConfig(tt.cm)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (tt.warning == "") != (warning == "") || !strings.Contains(warning, tt.warning) {
				t.Errorf("warning %q, want one containing %q", warning, tt.warning)
			}
		})
	}
}

func TestKubeadmFallback(t *testing.T) {
	for _, tt := range []struct {
		name        string
		objects     []runtime.Object
		env         map[string]string
		reactErr    error // returned for ConfigMap gets
		wantCIDR    string
		wantType    string
		wantErrPart string
	}{
		{name: "kubeadm podSubnet", objects: []runtime.Object{kubeadmConfigMap("10.244.0.0/16,fd00:10:244::/56")},
			wantCIDR: "10.244.0.0/16", wantType: "kubeadm"},
		{name: "env wins over kubeadm", objects: []runtime.Object{kubeadmConfigMap("10.244.0.0/16")},
			env: map[string]string{"CALICO_IPV4POOL_CIDR": "10.99.0.0/16", "CLUSTER_TYPE": "k8s"}, wantCIDR: "10.99.0.0/16", wantType: "k8s,kubeadm"},
		{name: "no kubeadm ConfigMap", wantCIDR: "192.168.0.0/16", wantType: ""},
		{name: "rancher", objects: []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "full-cluster-state"}}},
			wantCIDR: "192.168.0.0/16", wantType: "rancher"},
		{name: "forbidden means not kubeadm", reactErr: apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "kubeadm-config", errors.New("rbac")),
			wantCIDR: "192.168.0.0/16"},
		{name: "other API errors are fatal", reactErr: apierrors.NewInternalError(errors.New("etcd is down")),
			wantErrPart: "reading ConfigMap kube-system/kubeadm-config"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(tt.objects...)
			if tt.reactErr != nil {
				cs.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, tt.reactErr
				})
			}
			be := memory.New()
			o := testOptions(t, be, tt.env)
			o.Kube = cs
			res, err := Run(t.Context(), o)
			if tt.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrPart) {
					t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErrPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := getObj[*api.IPPool](t, be, api.KindIPPool, DefaultIPv4PoolName)
			if p.Spec.CIDR != tt.wantCIDR {
				t.Errorf("default pool CIDR %s, want %s (pools %+v)", p.Spec.CIDR, tt.wantCIDR, res.Pools)
			}
			ci := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default")
			if ci.Spec.ClusterType != tt.wantType {
				t.Errorf("clusterType %q, want %q", ci.Spec.ClusterType, tt.wantType)
			}
		})
	}
}

func TestKubernetesInternalIPFromAPI(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "k8s-node-1"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
			{Type: corev1.NodeInternalIP, Address: "172.16.0.2"},
		}},
	})
	be := memory.New()
	o := testOptions(t, be, map[string]string{"IP_AUTODETECTION_METHOD": "kubernetes-internal-ip", "CALICO_K8S_NODE_REF": "k8s-node-1"})
	o.Kube = cs
	o.Interfaces = autodetect.StaticInterfaces{Interfaces: []autodetect.Interface{
		iface("eth0", 1500, "10.0.0.5/24"), iface("eth1", 1500, "172.16.0.2/20"),
	}}
	res := run(t, o)
	if got := getNode(t, be, "node-1").Spec.BGP.IPv4Address; got != "172.16.0.2/20" {
		t.Errorf("Node address %s (result %+v), want the InternalIP with its interface prefix", got, res.IPv4)
	}
}

func TestClusterInformationMerge(t *testing.T) {
	be := memory.New()
	ready := false
	ci := api.NewClusterInformation()
	ci.Name = "default"
	ci.Spec = api.ClusterInformationSpec{ClusterGUID: "abc", ClusterType: "k8s,bgp", CalicoVersion: "v3.30.0", DatastoreReady: &ready}
	if _, err := be.Create(t.Context(), ci); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t, be, map[string]string{"CLUSTER_TYPE": "k8s,typha"})
	o.GOOS = "windows"
	run(t, o)
	got := getObj[*api.ClusterInformation](t, be, api.KindClusterInformation, "default")
	want := api.ClusterInformationSpec{ClusterGUID: "abc", ClusterType: "k8s,bgp,typha,win", CalicoVersion: "v0.0.0-test", DatastoreReady: &ready}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("ClusterInformation (-want +got):\n%s", diff)
	}
}
