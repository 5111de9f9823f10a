package cli

import (
	"strings"
	"testing"
)

func TestInstallRender(t *testing.T) {
	s := newSession(t)
	inst := `apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
spec:
  calicoNetwork:
    bgp: Disabled
    ipPools:
    - {cidr: 20.100.0.0/16, blockSize: 26, encapsulation: VXLAN, natOutgoing: Enabled}
`
	code, out, errOut := s.run(inst, "install render -f - --env FELIX_LOGSEVERITYSCREEN=warning --namespace tortie-system")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"kind: DaemonSet", "namespace: tortie-system", `value: "20.100.0.0/16"`, "name: FELIX_LOGSEVERITYSCREEN", "kind: CustomResourceDefinition"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Unsupported fields are named, and nothing is printed.
	code, out, errOut = s.run("apiVersion: operator.tigera.io/v1\nkind: Installation\nspec:\n  calicoNetwork:\n    linuxDataplane: BPF\n", "install render -f -")
	if code != 1 || out != "" || !strings.Contains(errOut, "spec.calicoNetwork.linuxDataplane") {
		t.Errorf("exit %d, stdout %d bytes, stderr %q", code, len(out), errOut)
	}
	code, _, errOut = s.run("", "install render --env NOEQUALS")
	if code != 2 || !strings.Contains(errOut, "NAME=VALUE") {
		t.Errorf("bad --env: exit %d, stderr %q", code, errOut)
	}
}
