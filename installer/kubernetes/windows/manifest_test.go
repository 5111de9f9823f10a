package windowsmanifest

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const manifest = "tortie-node-windows.yaml"

// decodeStrict decodes the manifest's one document into a DaemonSet, refusing unknown fields.
func decodeStrict(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatalf("%s: %v", manifest, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var ds appsv1.DaemonSet
	if err := dec.Decode(&ds); err != nil {
		t.Fatalf("%s does not decode strictly into a DaemonSet: %v", manifest, err)
	}
	if ds.APIVersion != "apps/v1" || ds.Kind != "DaemonSet" {
		t.Fatalf("%s: %s %s, want apps/v1 DaemonSet", manifest, ds.APIVersion, ds.Kind)
	}
	return &ds
}

func TestHostProcessDaemonSet(t *testing.T) {
	ds := decodeStrict(t)
	spec := ds.Spec.Template.Spec
	if diff := cmp.Diff(map[string]string{"kubernetes.io/os": "windows"}, spec.NodeSelector); diff != "" {
		t.Errorf("nodeSelector (-want +got):\n%s", diff)
	}
	if !spec.HostNetwork {
		t.Error("a HostProcess pod must set hostNetwork")
	}
	wo := spec.SecurityContext.WindowsOptions
	if wo == nil || wo.HostProcess == nil || !*wo.HostProcess || wo.RunAsUserName == nil || *wo.RunAsUserName != `NT AUTHORITY\SYSTEM` {
		t.Errorf("pod windowsOptions = %+v, want hostProcess true as NT AUTHORITY\\SYSTEM", wo)
	}
	if spec.PriorityClassName != "system-node-critical" || spec.ServiceAccountName != "tortie-node" {
		t.Errorf("priorityClassName %q serviceAccountName %q", spec.PriorityClassName, spec.ServiceAccountName)
	}
	exe := "%CONTAINER_SANDBOX_MOUNT_POINT%/tortie-node.exe"
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "install-cni" ||
		!slicesEqual(spec.InitContainers[0].Command[:2], []string{exe, "install-cni"}) {
		t.Errorf("init containers: want install-cni running %s install-cni, got %+v", exe, spec.InitContainers)
	}
	var node *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "tortie-node" {
			node = &spec.Containers[i]
		}
	}
	if node == nil {
		t.Fatal("no tortie-node container")
	}
	for name, p := range map[string]*corev1.Probe{"liveness": node.LivenessProbe, "readiness": node.ReadinessProbe} {
		flag := "--live"
		if name == "readiness" {
			flag = "--ready"
		}
		if p == nil || p.Exec == nil || !slicesEqual(p.Exec.Command, []string{exe, "health", flag}) {
			t.Errorf("%s probe = %+v, want exec %s health %s", name, p, exe, flag)
		}
	}
	// The init container and the watcher write the same CNI configuration.
	if diff := cmp.Diff(spec.InitContainers[0].Env, spec.Containers[1].Env); diff != "" {
		t.Errorf("install-cni and install-cni-watch differ in env (-init +watch):\n%s", diff)
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil {
			t.Errorf("container %s sets privileged, which Windows pods reject", c.Name)
		}
		for _, e := range c.Env {
			if e.Name == "CNI_NETWORK_CONFIG" {
				// With the placeholders filled the way install-cni fills them it must be JSON.
				filled := strings.NewReplacer("__CNI_MTU__", "0", "__LOG_LEVEL__", "info", "__DATASTORE_TYPE__", "kubernetes",
					"__KUBERNETES_NODE_NAME__", "win-1", "__KUBECONFIG_FILEPATH__", `C:\\etc\\cni\\net.d\\tortie-kubeconfig`).Replace(e.Value)
				if !json.Valid([]byte(filled)) {
					t.Errorf("container %s: CNI_NETWORK_CONFIG is not JSON once filled:\n%s", c.Name, filled)
				}
			}
		}
	}
}

func slicesEqual(a, b []string) bool { return cmp.Equal(a, b) }

// TestDaemonSetDryRun: the real kube-apiserver accepts the DaemonSet (its validation checks the
// HostProcess rules: hostNetwork, every container a host process, no privileged).
func TestDaemonSetDryRun(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	cs, err := kubernetes.NewForConfig(k.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	ds := decodeStrict(t)
	_, err = cs.AppsV1().DaemonSets(ds.Namespace).Create(t.Context(), ds, metav1.CreateOptions{
		DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict,
	})
	if err != nil {
		t.Fatalf("kube-apiserver rejects %s: %v", manifest, err)
	}

	// And the check is real: a container that is not a host process in a HostProcess pod is refused.
	bad := ds.DeepCopy()
	no := false
	bad.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: &no}}
	_, err = cs.AppsV1().DaemonSets(ds.Namespace).Create(t.Context(), bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil || !strings.Contains(err.Error(), "hostProcess") {
		t.Errorf("a mixed HostProcess pod was accepted or refused for another reason: %v", err)
	}
}
