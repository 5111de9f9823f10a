//go:build linux

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/cli"
)

// In the Kubernetes datastore a Kubernetes NetworkPolicy is a networking.k8s.io/v1 object, which
// tortiectl does not write (the kube datastore refuses knp.default.* policies: "change them with
// kubectl"). kubeApply plays kubectl for those documents and hands the rest to tortiectl, keeping
// tortiectl's rule that nothing is written when a document is bad.

// crudArgs is a parsed `apply|delete [flags] -f FILE`.
type crudArgs struct {
	verb, file string
	skip       bool // delete --skip-not-exists
	rest       []string
}

func parseCRUDArgs(args []string) (crudArgs, bool) {
	var c crudArgs
	if len(args) == 0 || (args[0] != "apply" && args[0] != "delete") {
		return c, false
	}
	c.verb = args[0]
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "-f" || a == "--filename") && i+1 < len(args) && c.file == "":
			c.file = args[i+1]
			i++
		case strings.HasPrefix(a, "--filename=") && c.file == "":
			c.file = strings.TrimPrefix(a, "--filename=")
		case a == "--skip-not-exists" && c.verb == "delete":
			c.skip = true
			c.rest = append(c.rest, a)
		default:
			return c, false // anything else: tortiectl's own handling
		}
	}
	return c, c.file != ""
}

// kubeTortiectl handles apply/delete -f on the Kubernetes datastore when the input holds Kubernetes
// NetworkPolicies; handled is false when tortiectl should run the command line unchanged (no such
// documents, a command it does not split, or input tortiectl will refuse as a whole).
func (l *Lab) kubeTortiectl(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, handled bool) {
	c, ok := parseCRUDArgs(args)
	if !ok {
		return 0, false
	}
	var data []byte
	var err error
	source := c.file
	if c.file == "-" {
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		data, err = io.ReadAll(stdin)
		source = "stdin"
	} else {
		data, err = os.ReadFile(c.file)
	}
	if err != nil {
		printf(stderr, "tortie-lab: reading %s: %v\n", source, err)
		return 1, true
	}
	// Whatever the stdin was, tortiectl reads the same bytes from here on.
	passThrough := func() (int, bool) {
		a := append([]string{c.verb}, c.rest...)
		a = append(a, "-f", "-")
		return cli.Main(ctx, append([]string{"tortiectl"}, a...), cli.Env{Stdin: bytes.NewReader(data), Stdout: stdout, Stderr: stderr, Getenv: l.Getenv}), true
	}
	decoded, errs := api.DecodeDocuments(data, source)
	if len(errs) > 0 {
		return passThrough()
	}
	var calico []api.Resource
	knps := 0
	for _, d := range decoded {
		if c.verb == "apply" {
			obj := d.Object.DeepCopyObject().(api.Resource)
			api.SetDefaults(obj)
			if api.Validate(obj) != nil {
				return passThrough() // tortiectl names the problem and writes nothing
			}
		}
		if _, isNP := d.Object.(*api.NetworkPolicy); isNP && strings.HasPrefix(d.Object.GetName(), api.K8sNetworkPolicyNamePrefix) {
			knps++
			continue
		}
		calico = append(calico, d.Object)
	}
	if knps == 0 {
		return passThrough()
	}
	nps, err := k8sNetworkPolicies(data)
	if err == nil && len(nps) != knps {
		err = fmt.Errorf("found %d Kubernetes NetworkPolicies, the decoder %d", len(nps), knps)
	}
	if err != nil {
		printf(stderr, "tortie-lab: %s: %v\n", source, err)
		return 1, true
	}
	cs, err := kubeClient(l.s)
	if err != nil {
		printf(stderr, "tortie-lab: %v\n", err)
		return 1, true
	}
	// Check the Kubernetes documents first (server-side dry run; for delete, that they exist), so a
	// refusal leaves everything as it was.
	if err := writeK8sNetworkPolicies(ctx, cs, c, nps, true, io.Discard); err != nil {
		printf(stderr, "%v\nnothing was %s\n", err, past(c.verb))
		return 1, true
	}
	if len(calico) > 0 {
		docs, err := api.EncodeYAML(calico...)
		if err != nil {
			printf(stderr, "tortie-lab: %v\n", err)
			return 1, true
		}
		a := append([]string{"tortiectl", c.verb}, c.rest...)
		a = append(a, "-f", "-")
		if code := cli.Main(ctx, a, cli.Env{Stdin: bytes.NewReader(docs), Stdout: stdout, Stderr: stderr, Getenv: l.Getenv}); code != 0 {
			return code, true
		}
	}
	if err := writeK8sNetworkPolicies(ctx, cs, c, nps, false, stdout); err != nil {
		printf(stderr, "%v\n", err)
		return 1, true
	}
	return 0, true
}

func past(verb string) string {
	if verb == "delete" {
		return "deleted"
	}
	return "applied"
}

// k8sNetworkPolicies reads the networking.k8s.io/v1 NetworkPolicies of a YAML or JSON stream (also
// inside lists), in input order; api.DecodeDocuments has already checked the input.
func k8sNetworkPolicies(data []byte) ([]*networkingv1.NetworkPolicy, error) {
	var out []*networkingv1.NetworkPolicy
	var visit func(raw json.RawMessage) error
	visit = func(raw json.RawMessage) error {
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 || string(trimmed) == "null" {
			return nil
		}
		if trimmed[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(trimmed, &items); err != nil {
				return err
			}
			for _, it := range items {
				if err := visit(it); err != nil {
					return err
				}
			}
			return nil
		}
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(trimmed, &head); err != nil {
			return err
		}
		if head.Items != nil && strings.HasSuffix(head.Kind, "List") {
			for _, it := range head.Items {
				if err := visit(it); err != nil {
					return err
				}
			}
			return nil
		}
		if head.APIVersion == api.K8sNetworkingAPIVersion && head.Kind == "NetworkPolicy" {
			var np networkingv1.NetworkPolicy
			if err := json.Unmarshal(trimmed, &np); err != nil {
				return err
			}
			if np.Namespace == "" {
				np.Namespace = metav1.NamespaceDefault
			}
			out = append(out, &np)
		}
		return nil
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if err := visit(raw); err != nil {
			return nil, err
		}
	}
}

// writeK8sNetworkPolicies creates or updates (apply) or deletes the policies; dryRun only checks.
func writeK8sNetworkPolicies(ctx context.Context, cs kubernetes.Interface, c crudArgs, nps []*networkingv1.NetworkPolicy, dryRun bool, out io.Writer) error {
	var dry []string
	if dryRun {
		dry = []string{metav1.DryRunAll}
	}
	n, skipped := 0, 0
	for _, np := range nps {
		client := cs.NetworkingV1().NetworkPolicies(np.Namespace)
		what := fmt.Sprintf("NetworkPolicy (networking.k8s.io/v1) %s/%s", np.Namespace, np.Name)
		cur, err := client.Get(ctx, np.Name, metav1.GetOptions{})
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		switch {
		case c.verb == "delete" && !exists && c.skip:
			skipped++
			continue
		case c.verb == "delete" && !exists:
			return fmt.Errorf("%s: it does not exist", what)
		case c.verb == "delete":
			err = client.Delete(ctx, np.Name, metav1.DeleteOptions{DryRun: dry})
		case exists:
			upd := np.DeepCopy()
			upd.ResourceVersion, upd.UID = cur.ResourceVersion, cur.UID
			_, err = client.Update(ctx, upd, metav1.UpdateOptions{DryRun: dry})
		default:
			_, err = client.Create(ctx, np, metav1.CreateOptions{DryRun: dry})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n++
	}
	if n > 0 {
		printf(out, "Successfully %s %d 'NetworkPolicy' resource(s) (networking.k8s.io/v1)\n", past(c.verb), n)
	}
	if skipped > 0 {
		printf(out, "Skipped %d 'NetworkPolicy' resource(s) (networking.k8s.io/v1): they do not exist\n", skipped)
	}
	return nil
}
