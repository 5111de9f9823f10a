// Command helmrender renders tortie's Helm chart with the Helm Go SDK into the single manifest users
// apply without Helm (installer/kubernetes/tortie.yaml), and checks that the checked-in copies are
// current:
//
//	helmrender -chart DIR -crds DIR -o FILE          render (and refresh the chart's crds/ from -crds)
//	helmrender -chart DIR -crds DIR -o FILE -check   fail if FILE or the chart's crds/ would change
//
// The output lists the CRDs (chart crds/, sorted by name), then each template (sorted by name) with a
// "# Source:" line, exactly as common/install/render prints it; a test there compares the two.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// Header starts the rendered manifest (the same text as common/install/render.Header).
const header = `# tortie: CRDs, RBAC, ConfigMap, the tortie-node DaemonSet and the tortie-controllers Deployment.
# Generated from installer/kubernetes/helm/tortie with its default values by ` + "`make manifests`" + `; do not edit.
# Install: kubectl apply --server-side -f tortie.yaml   (settings: tortiectl install render, or the Helm chart)
`

func main() {
	chartDir := flag.String("chart", "installer/kubernetes/helm/tortie", "chart directory")
	crdDir := flag.String("crds", "installer/kubernetes/crds", "the generated CRDs the chart's crds/ must equal")
	out := flag.String("o", "installer/kubernetes/tortie.yaml", "output manifest")
	valuesFile := flag.String("values", "", "extra values file")
	namespace := flag.String("namespace", "kube-system", "release namespace")
	check := flag.Bool("check", false, "do not write; fail when the checked-in files differ")
	flag.Parse()
	if err := run(*chartDir, *crdDir, *out, *valuesFile, *namespace, *check); err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
}

func run(chartDir, crdDir, out, valuesFile, namespace string, check bool) error {
	stale, err := syncCRDs(crdDir, filepath.Join(chartDir, "crds"), check)
	if err != nil {
		return err
	}
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	user := map[string]interface{}{}
	if valuesFile != "" {
		if user, err = chartutil.ReadValuesFile(valuesFile); err != nil {
			return fmt.Errorf("reading %s: %w", valuesFile, err)
		}
	}
	vals, err := chartutil.ToRenderValues(chrt, user, chartutil.ReleaseOptions{Name: "tortie", Namespace: namespace, IsInstall: true}, nil)
	if err != nil {
		return err
	}
	rendered, err := engine.Render(chrt, vals)
	if err != nil {
		return fmt.Errorf("rendering: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(header)
	crds := chrt.CRDObjects()
	sort.Slice(crds, func(i, j int) bool { return crds[i].Filename < crds[j].Filename })
	for _, c := range crds {
		writeDoc(&b, c.Filename, string(c.File.Data))
	}
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		writeDoc(&b, n, rendered[n])
	}
	if check {
		have, err := os.ReadFile(out)
		if err != nil {
			return fmt.Errorf("%w; run `make manifests`", err)
		}
		if !bytes.Equal(have, b.Bytes()) {
			stale = append(stale, out)
		}
		if len(stale) > 0 {
			return fmt.Errorf("out of date: %s; run `make manifests` and commit the result", strings.Join(stale, ", "))
		}
		return nil
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// writeDoc appends one source file's documents, skipping files that render to nothing.
func writeDoc(b *bytes.Buffer, name, body string) {
	body = strings.TrimSpace(body)
	if body == "" {
		return
	}
	fmt.Fprintf(b, "---\n# Source: %s\n%s\n", name, body)
}

// syncCRDs makes dst's *.yaml equal src's (Helm only reads CRDs inside the chart). With check it
// changes nothing and returns what differs.
func syncCRDs(src, dst string, check bool) ([]string, error) {
	want, err := yamlFiles(src)
	if err != nil {
		return nil, err
	}
	have, err := yamlFiles(dst)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var stale []string
	for name, data := range want {
		if !bytes.Equal(have[name], data) {
			stale = append(stale, filepath.Join(dst, name))
			if !check {
				if err := os.MkdirAll(dst, 0o755); err != nil {
					return nil, err
				}
				if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
					return nil, err
				}
			}
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			stale = append(stale, filepath.Join(dst, name))
			if !check {
				if err := os.Remove(filepath.Join(dst, name)); err != nil {
					return nil, err
				}
			}
		}
	}
	sort.Strings(stale)
	if check {
		return stale, nil
	}
	return nil, nil
}

func yamlFiles(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}
