package render

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const checkedIn = "../../../installer/kubernetes/tortie.yaml"

func mustChart(t *testing.T) *Chart {
	t.Helper()
	c, err := LoadChart()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRender(t *testing.T, v Values) []byte {
	t.Helper()
	out, err := mustChart(t).Render(v, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The checked-in manifest is rendered by Helm (ci/helmrender); our engine must produce the same bytes,
// so tortiectl, Helm and the file cannot drift apart.
func TestDefaultsMatchHelmRenderedManifest(t *testing.T) {
	want, err := os.ReadFile(checkedIn)
	if err != nil {
		t.Fatal(err)
	}
	got := mustRender(t, nil)
	if !bytes.Equal(got, want) {
		t.Errorf("rendering the chart's defaults differs from %s (run `make manifests`; if it still differs, a template uses a function the two engines treat differently):\n%s",
			checkedIn, cmp.Diff(string(want), string(got)))
	}
}

// The chart's crds/ must be the generated CRDs (make manifests copies them).
func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	gen, err := filepath.Glob("../../../installer/kubernetes/crds/*.yaml")
	if err != nil || len(gen) == 0 {
		t.Fatalf("no generated CRDs: %v", err)
	}
	for _, p := range gen {
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join("../../../installer/kubernetes/helm/tortie/crds", filepath.Base(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("chart crds/%s differs from %s (run `make manifests`): %v", filepath.Base(p), p, err)
		}
	}
}

// doc is one rendered document, strictly decoded into its k8s.io/api type.
type doc struct {
	source string
	raw    []byte
	obj    runtime.Object
	gvk    schema.GroupVersionKind
}

func decodeScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// decodeAll splits a manifest and decodes every document into its typed struct, rejecting unknown
// fields (a typo in a template is an error, not a silently dropped field).
func decodeAll(t *testing.T, manifest []byte) []doc {
	t.Helper()
	s := decodeScheme(t)
	var docs []doc
	for part := range strings.SplitSeq(string(manifest), "\n---\n") {
		src := ""
		if i := strings.Index(part, "# Source: "); i >= 0 {
			src = strings.SplitN(part[i+len("# Source: "):], "\n", 2)[0]
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(part), &tm); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if tm.Kind == "" {
			continue // the header
		}
		gvk := tm.GroupVersionKind()
		obj, err := s.New(gvk)
		if err != nil {
			t.Fatalf("%s: %s is not a k8s.io/api type: %v", src, gvk, err)
		}
		if err := yaml.UnmarshalStrict([]byte(part), obj); err != nil {
			t.Errorf("%s: strict decoding into %T: %v", src, obj, err)
			continue
		}
		docs = append(docs, doc{source: src, raw: []byte(part), obj: obj, gvk: gvk})
	}
	if len(docs) == 0 {
		t.Fatal("no documents")
	}
	return docs
}

func daemonSet(t *testing.T, docs []doc) *appsv1.DaemonSet {
	t.Helper()
	for _, d := range docs {
		if ds, ok := d.obj.(*appsv1.DaemonSet); ok && ds.Name == "tortie-node" {
			return ds
		}
	}
	t.Fatal("no tortie-node DaemonSet")
	return nil
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// envOf returns the container's literal env values (downward-API entries as "fieldRef:<path>").
func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			m[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			m[e.Name] = "configMap:" + e.ValueFrom.ConfigMapKeyRef.Key
		default:
			m[e.Name] = e.Value
		}
	}
	return m
}

func TestDaemonSetConventions(t *testing.T) {
	ds := daemonSet(t, decodeAll(t, mustRender(t, nil)))
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.PriorityClassName != "system-node-critical" || spec.ServiceAccountName != "tortie-node" {
		t.Errorf("hostNetwork %v priorityClass %q serviceAccount %q", spec.HostNetwork, spec.PriorityClassName, spec.ServiceAccountName)
	}
	if u := ds.Spec.UpdateStrategy; u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("update strategy %+v", u)
	}
	// Tolerates every taint: NoSchedule and NoExecute with operator Exists and no key.
	var effects []corev1.TaintEffect
	for _, tol := range spec.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Key == "" {
			effects = append(effects, tol.Effect)
		}
	}
	if !slices.Contains(effects, corev1.TaintEffectNoSchedule) || !slices.Contains(effects, corev1.TaintEffectNoExecute) {
		t.Errorf("tolerations %+v do not cover every taint", spec.Tolerations)
	}
	node := container(t, spec.Containers, "tortie-node")
	if node.SecurityContext == nil || node.SecurityContext.Privileged == nil || !*node.SecurityContext.Privileged {
		t.Error("tortie-node is not privileged")
	}
	env := envOf(node)
	if env["NODE_NAME"] != "fieldRef:spec.nodeName" {
		t.Errorf("NODE_NAME = %q", env["NODE_NAME"])
	}
	if diff := cmp.Diff([]string{"tortie-node", "run"}, node.Command); diff != "" {
		t.Errorf("command: %s", diff)
	}
	if diff := cmp.Diff([]string{"tortie-node", "health", "--live"}, node.LivenessProbe.Exec.Command); diff != "" {
		t.Errorf("liveness: %s", diff)
	}
	if diff := cmp.Diff([]string{"tortie-node", "health", "--ready"}, node.ReadinessProbe.Exec.Command); diff != "" {
		t.Errorf("readiness: %s", diff)
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounted := map[string]bool{}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, m := range c.VolumeMounts {
			mounted[hostPaths[m.Name]] = true
		}
	}
	for _, p := range []string{"/var/run/calico", "/var/lib/calico", "/run/xtables.lock", "/opt/cni/bin", "/etc/cni/net.d", "/lib/modules"} {
		if !mounted[p] {
			t.Errorf("host path %s is not mounted (mounted: %v)", p, mounted)
		}
	}
	inst := container(t, spec.InitContainers, "install-cni")
	if diff := cmp.Diff([]string{"tortie-node", "install-cni"}, inst.Command); diff != "" {
		t.Errorf("install-cni command: %s", diff)
	}
	if ie := envOf(inst); ie["CNI_NETWORK_CONFIG"] != "configMap:cni_network_config" || ie["CALICO_CNI_SERVICE_ACCOUNT"] != "tortie-cni-plugin" {
		t.Errorf("install-cni env %v", ie)
	}
	if ds.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation")
	}
}

// The seeds' Installation examples and what the agent must receive.
func TestInstallationRendering(t *testing.T) {
	for _, tc := range []struct {
		name         string
		installation string
		wantEnv      map[string]string
		wantMTU      string
		wantSelector map[string]string
	}{{
		name: "VXLAN pool 20.100.0.0/16 blockSize 26 natOutgoing",
		installation: `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  calicoNetwork:
    bgp: Disabled
    ipPools:
    - cidr: 20.100.0.0/16
      blockSize: 26
      encapsulation: VXLAN
      natOutgoing: Enabled
      nodeSelector: all()
`,
		wantEnv: map[string]string{"CALICO_IPV4POOL_CIDR": "20.100.0.0/16", "CALICO_IPV4POOL_BLOCK_SIZE": "26", "CALICO_IPV4POOL_VXLAN": "Always",
			"CALICO_IPV4POOL_IPIP": "Never", "CALICO_IPV4POOL_NAT_OUTGOING": "true", "CALICO_IPV4POOL_NODE_SELECTOR": "all()", "CALICO_NETWORKING_BACKEND": "vxlan"},
		wantMTU: "0",
	}, {
		name: "IPIP Always (the operator's default with BGP)",
		installation: `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  calicoNetwork:
    ipPools:
    - cidr: 192.168.0.0/16
      encapsulation: IPIP
`,
		wantEnv: map[string]string{"CALICO_IPV4POOL_CIDR": "192.168.0.0/16", "CALICO_IPV4POOL_IPIP": "Always", "CALICO_IPV4POOL_VXLAN": "Never",
			"CALICO_IPV4POOL_BLOCK_SIZE": "26", "CALICO_NETWORKING_BACKEND": "bird", "CALICO_IPV4POOL_NAT_OUTGOING": "true"},
		wantMTU: "0",
	}, {
		name: "CrossSubnet, dual stack, autodetection",
		installation: `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  calicoNetwork:
    bgp: Enabled
    nodeAddressAutodetectionV4:
      canReach: 8.8.8.8
    nodeAddressAutodetectionV6:
      firstFound: true
    ipPools:
    - cidr: 10.48.0.0/16
      blockSize: 24
      encapsulation: IPIPCrossSubnet
      natOutgoing: Disabled
    - cidr: fd00:10:48::/64
      encapsulation: VXLANCrossSubnet
`,
		wantEnv: map[string]string{"CALICO_IPV4POOL_CIDR": "10.48.0.0/16", "CALICO_IPV4POOL_IPIP": "CrossSubnet", "CALICO_IPV4POOL_VXLAN": "Never",
			"CALICO_IPV4POOL_BLOCK_SIZE": "24", "CALICO_IPV4POOL_NAT_OUTGOING": "false", "CALICO_IPV6POOL_CIDR": "fd00:10:48::/64",
			"CALICO_IPV6POOL_VXLAN": "CrossSubnet", "CALICO_IPV6POOL_BLOCK_SIZE": "122", "IP_AUTODETECTION_METHOD": "can-reach=8.8.8.8",
			"IP6_AUTODETECTION_METHOD": "first-found", "IP6": "autodetect", "FELIX_IPV6SUPPORT": "true"},
		wantMTU: "0",
	}, {
		name: "MTU",
		installation: `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  calicoNetwork:
    mtu: 1400
    bgp: Disabled
    ipPools:
    - cidr: 10.244.0.0/16
      encapsulation: VXLAN
`,
		wantEnv: map[string]string{"FELIX_VXLANMTU": "1400", "FELIX_IPINIPMTU": "1400", "CALICO_IPV4POOL_CIDR": "10.244.0.0/16"},
		wantMTU: "1400",
	}, {
		name: "nodeSelector on the pool and the control plane",
		installation: `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  controlPlaneNodeSelector:
    node-role.kubernetes.io/control-plane: ""
  calicoNetwork:
    bgp: Disabled
    ipPools:
    - cidr: 10.244.0.0/16
      nodeSelector: "kubernetes.io/os == 'linux'"
`,
		wantEnv: map[string]string{"CALICO_IPV4POOL_NODE_SELECTOR": "kubernetes.io/os == 'linux'", "CALICO_IPV4POOL_VXLAN": "Always"},
		wantMTU: "0",
		// The operator adds its selector to kubernetes.io/os: linux; so do the chart's values.
		wantSelector: map[string]string{"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := FromInstallation([]byte(tc.installation), "installation.yaml")
			if err != nil {
				t.Fatal(err)
			}
			docs := decodeAll(t, mustRender(t, vals))
			env := envOf(container(t, daemonSet(t, docs).Spec.Template.Spec.Containers, "tortie-node"))
			got := map[string]string{}
			for k := range tc.wantEnv {
				got[k] = env[k]
			}
			if diff := cmp.Diff(tc.wantEnv, got); diff != "" {
				t.Errorf("tortie-node env (-want +got):\n%s", diff)
			}
			for _, d := range docs {
				if cm, ok := d.obj.(*corev1.ConfigMap); ok && cm.Data["veth_mtu"] != tc.wantMTU {
					t.Errorf("veth_mtu = %q, want %q", cm.Data["veth_mtu"], tc.wantMTU)
				}
				if dep, ok := d.obj.(*appsv1.Deployment); ok && tc.wantSelector != nil {
					if diff := cmp.Diff(tc.wantSelector, dep.Spec.Template.Spec.NodeSelector); diff != "" {
						t.Errorf("controllers nodeSelector: %s", diff)
					}
				}
			}
		})
	}
}

func TestInstallationUnsupportedFieldsNamed(t *testing.T) {
	in := `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  variant: TigeraSecureEnterprise
  typhaDeployment: {spec: {}}
  frobnicate: true
  cni: {type: AmazonVPC, ipam: {type: HostLocal}}
  calicoNetwork:
    linuxDataplane: BPF
    ipPools:
    - cidr: 10.0.0.0/16
      encapsulation: IPIP
      allowedUses: [Tunnel]
    - cidr: 10.1.0.0/16
    nodeAddressAutodetectionV4: {firstFound: true, interface: eth0}
`
	_, err := FromInstallation([]byte(in), "install.yaml")
	var ue *UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UnsupportedError", err)
	}
	var paths []string
	for _, f := range ue.Fields {
		paths = append(paths, f.Path)
	}
	want := []string{"spec.variant", "spec.cni.type", "spec.cni.ipam.type", "spec.calicoNetwork.linuxDataplane", "spec.calicoNetwork.nodeAddressAutodetectionV4",
		"spec.calicoNetwork.ipPools[0].allowedUses", "spec.calicoNetwork.ipPools[1]", "spec.typhaDeployment", "spec.frobnicate"}
	for _, w := range want {
		if !slices.Contains(paths, w) {
			t.Errorf("%s not reported; reported: %v", w, paths)
		}
	}
	if !strings.Contains(err.Error(), "install.yaml") {
		t.Errorf("error does not name the file: %v", err)
	}
}

func TestCalicoEnvRendering(t *testing.T) {
	vals, err := FromEnv(map[string]string{
		"CALICO_IPV4POOL_CIDR": "172.16.0.0/16", "CALICO_IPV4POOL_VXLAN": "CrossSubnet", "CALICO_IPV4POOL_IPIP": "Never",
		"CALICO_IPV4POOL_BLOCK_SIZE": "27", "CALICO_IPV4POOL_NAT_OUTGOING": "false", "IP_AUTODETECTION_METHOD": "interface=eth.*",
		"CALICO_NETWORKING_BACKEND": "vxlan", "FELIX_LOGSEVERITYSCREEN": "warning", "CALICO_DISABLE_FILE_LOGGING": "true", "CNI_MTU": "1450",
	})
	if err != nil {
		t.Fatal(err)
	}
	docs := decodeAll(t, mustRender(t, vals))
	env := envOf(container(t, daemonSet(t, docs).Spec.Template.Spec.Containers, "tortie-node"))
	want := map[string]string{"CALICO_IPV4POOL_CIDR": "172.16.0.0/16", "CALICO_IPV4POOL_VXLAN": "CrossSubnet", "CALICO_IPV4POOL_IPIP": "Never",
		"CALICO_IPV4POOL_BLOCK_SIZE": "27", "CALICO_IPV4POOL_NAT_OUTGOING": "false", "IP_AUTODETECTION_METHOD": "interface=eth.*",
		"CALICO_NETWORKING_BACKEND": "vxlan", "FELIX_LOGSEVERITYSCREEN": "warning", "CALICO_DISABLE_FILE_LOGGING": "true", "FELIX_VXLANMTU": "1450"}
	got := map[string]string{}
	for k := range want {
		got[k] = env[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}

	if _, err := FromEnv(map[string]string{"CALICO_IPV4POOL_IPIP": "Always", "CALICO_IPV4POOL_VXLAN": "Always"}); err == nil || !strings.Contains(err.Error(), "CALICO_IPV4POOL_VXLAN") {
		t.Errorf("IPIP and VXLAN both Always: err = %v", err)
	}
	if _, err := FromEnv(map[string]string{"CALICO_IPV4POOL_BLOCK_SIZE": "big"}); err == nil || !strings.Contains(err.Error(), "CALICO_IPV4POOL_BLOCK_SIZE") {
		t.Errorf("bad block size: err = %v", err)
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals Values
		want string
	}{
		{"encapsulation", Values{"ipPools": map[string]any{"v4": map[string]any{"encapsulation": "GRE"}}}, "ipPools.v4.encapsulation"},
		{"unknown key", Values{"ipPool": map[string]any{}}, "ipPool"},
		{"block size", Values{"ipPools": map[string]any{"v4": map[string]any{"blockSize": 33}}}, "ipPools.v4.blockSize"},
		{"felix key", Values{"felix": map[string]any{"LOGSEVERITYSCREEN": "info"}}, "felix"},
		{"etcd without endpoints", Values{"datastore": map[string]any{"type": "etcdv3"}}, "datastore.etcd.endpoints is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustChart(t).Render(tc.vals, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want it to mention %q", err, tc.want)
			}
		})
	}
}

// Every rendered document is accepted by a real kube-apiserver (server-side dry-run).
func TestManifestsAcceptedByAPIServer(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	rc := k.RestConfig()
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	inst, err := FromInstallation([]byte(`
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  imagePullSecrets: [{name: regcred}]
  registry: registry.example.com
  calicoNetwork:
    mtu: 1400
    ipPools:
    - {cidr: 20.100.0.0/16, blockSize: 26, encapsulation: VXLAN, natOutgoing: Enabled}
    - {cidr: "fd00::/64", encapsulation: None}
  nodeUpdateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: "10%"}}
`), "installation")
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]Values{
		"defaults":     nil,
		"installation": inst,
		"etcd": {"datastore": map[string]any{"type": "etcdv3", "etcd": map[string]any{"endpoints": "https://10.0.0.1:2379", "tlsSecret": "tortie-etcd"}},
			"controllers": map[string]any{"replicas": 2}},
		"no controllers": {"controllers": map[string]any{"enabled": false}, "cni": map[string]any{"hostPorts": false}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, d := range decodeAll(t, mustRender(t, vals)) {
				m, err := mapper.RESTMapping(d.gvk.GroupKind(), d.gvk.Version)
				if err != nil {
					t.Fatalf("%s: %v", d.source, err)
				}
				var u unstructured.Unstructured
				if err := yaml.Unmarshal(d.raw, &u.Object); err != nil {
					t.Fatal(err)
				}
				var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
				if m.Scope.Name() == "namespace" {
					ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
				}
				if _, err := ri.Create(t.Context(), &u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
					t.Errorf("%s %s/%s: the API server refused it: %v", d.source, d.gvk.Kind, u.GetName(), err)
				}
			}
		})
	}
}
