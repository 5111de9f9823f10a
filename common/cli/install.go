package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/install/render"
)

type installRenderFlags struct {
	file, namespace string
	env, envFiles   []string
}

func newInstallCommand(s *state) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Produce tortie's Kubernetes manifest",
		Args:  argsRange(0, 0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newInstallRenderCommand(s))
	return cmd
}

func newInstallRenderCommand(s *state) *cobra.Command {
	var f installRenderFlags
	cmd := &cobra.Command{
		Use:   "render [-f installation.yaml|values.yaml] [--env NAME=VALUE]...",
		Short: "Render the manifest (CRDs, RBAC, DaemonSet, Deployment) from the settings you already have",
		Long: `Render tortie's manifest to stdout, from the same chart templates Helm uses
(installer/kubernetes/helm/tortie), for kubectl apply --server-side -f -.

Settings come from, lowest first:
  the chart's defaults (values.yaml);
  --env NAME=VALUE and --env-file FILE: Calico manifest variables (CALICO_IPV4POOL_CIDR,
    CALICO_IPV4POOL_VXLAN, CALICO_IPV4POOL_IPIP, CALICO_IPV4POOL_BLOCK_SIZE, CALICO_IPV4POOL_NAT_OUTGOING,
    CALICO_IPV4POOL_NODE_SELECTOR, the IPV6 ones, IP_AUTODETECTION_METHOD, CALICO_NETWORKING_BACKEND,
    DATASTORE_TYPE, ETCD_ENDPOINTS, CNI_MTU, FELIX_*; anything else is passed to tortie-node);
  -f FILE ("-" for stdin): an operator.tigera.io/v1 Installation, translated field by field (a field
    tortie cannot honour is an error naming it), or a Helm values file for the chart.
The result is checked against the chart's values.schema.json.`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstallRender(s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "filename", "f", "", "Installation or values file (- for stdin)")
	fl.StringArrayVar(&f.env, "env", nil, "a Calico manifest variable NAME=VALUE (repeatable)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "file of NAME=VALUE lines (# comments), e.g. calico-node's env")
	fl.StringVarP(&f.namespace, "namespace", "n", render.DefaultNamespace, "namespace of the components")
	return cmd
}

func runInstallRender(s *state, f installRenderFlags) error {
	vars := map[string]string{}
	for _, p := range f.envFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--env-file: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			if !ok || strings.TrimSpace(k) == "" {
				return usagef("%s:%d: want NAME=VALUE, got %q", p, n, line)
			}
			vars[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	for _, e := range f.env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return usagef("--env %q: want NAME=VALUE", e)
		}
		vars[strings.TrimSpace(k)] = v
	}
	vals := render.Values{}
	if len(vars) > 0 {
		ev, err := render.FromEnv(vars)
		if err != nil {
			return fmt.Errorf("the Calico variables: %w", err)
		}
		vals = ev
	}
	if f.file != "" {
		var b []byte
		var err error
		name := f.file
		if f.file == "-" {
			name = "stdin"
			b, err = io.ReadAll(s.env.Stdin)
		} else {
			b, err = os.ReadFile(f.file)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		var fv render.Values
		if render.IsInstallation(b) {
			fv, err = render.FromInstallation(b, name)
		} else {
			fv, err = render.ParseValues(b)
			if err != nil {
				err = fmt.Errorf("%s: neither an operator.tigera.io/v1 Installation nor a values file: %w", name, err)
			}
		}
		if err != nil {
			return err
		}
		vals = render.Merge(vals, fv)
	}
	c, err := render.LoadChart()
	if err != nil {
		return err
	}
	out, err := c.Render(vals, render.Options{Namespace: f.namespace})
	if err != nil {
		return err
	}
	_, err = s.stdout().Write(out)
	return err
}
