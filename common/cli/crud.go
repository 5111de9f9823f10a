package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
)

// operation is one of the writing commands.
type operation struct {
	verb, past    string
	short, long   string
	skipFlag      string // "" when the command has none
	skipHelp      string
	skippedReason string
	byName        bool // accepts KIND NAME... instead of -f
}

var (
	opApply = operation{
		verb: "apply", past: "applied",
		short: "Create or update resources from files",
		long: `Create the resources in the files, or update them if they exist. When a resource sets
metadata.resourceVersion the update is a compare-and-swap against that version; otherwise the current
version is read and the update retried if the resource changes in between.`,
	}
	opCreate = operation{
		verb: "create", past: "created",
		short:    "Create resources from files; fails for resources that exist",
		long:     "Create the resources in the files. A resource that already exists is an error unless --skip-exists is given.",
		skipFlag: "skip-exists", skipHelp: "skip resources that already exist instead of failing",
		skippedReason: "they already exist",
	}
	opReplace = operation{
		verb: "replace", past: "replaced",
		short: "Replace existing resources from files; fails for resources that do not exist",
		long: `Replace the resources in the files, which must exist. When a resource sets
metadata.resourceVersion the replace is a compare-and-swap against that version.`,
	}
	opDelete = operation{
		verb: "delete", past: "deleted",
		short: "Delete resources named in files or on the command line",
		long: `Delete the resources named in the files (only kind, namespace and name are used; a
metadata.resourceVersion makes the delete a compare-and-delete), or given as KIND NAME... or KIND/NAME...`,
		skipFlag: "skip-not-exists", skipHelp: "skip resources that do not exist instead of failing",
		skippedReason: "they do not exist",
		byName:        true,
	}
)

type crudFlags struct {
	files     []string
	namespace string
	skip      bool
}

func newCRUDCommand(s *state, op operation) *cobra.Command {
	var f crudFlags
	use := op.verb + " -f FILENAME"
	args := argsRange(0, 0)
	example := fmt.Sprintf(`  # %[1]s every resource in a file, a directory (its .yaml, .yml and .json files) or standard input
  %[2]s %[1]s -f pools.yaml
  %[2]s %[1]s -f manifests/
  cat pools.yaml | %[2]s %[1]s -f -`, op.verb, s.name)
	if op.byName {
		use = op.verb + " (-f FILENAME | KIND NAME... | KIND/NAME...)"
		args = argsRange(0, -1)
		example += fmt.Sprintf(`

  # delete by kind and name
  %[1]s delete ippool pool-a pool-b
  %[1]s delete networkpolicy allow-dns -n kube-system
  %[1]s delete ippool/pool-a`, s.name)
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   op.short,
		Long:    op.long,
		Example: example,
		Args:    args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.runCRUD(cmd, op, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "file, directory or - (standard input) holding the resources; repeatable")
	fl.StringVarP(&f.namespace, "namespace", "n", "", `namespace for namespaced resources that do not set one (default "default")`)
	if op.skipFlag != "" {
		fl.BoolVar(&f.skip, op.skipFlag, false, op.skipHelp)
	}
	return cmd
}

func (s *state) runCRUD(cmd *cobra.Command, op operation, f crudFlags, args []string) error {
	nsExplicit := cmd.Flags().Changed("namespace")
	var docs []document
	switch {
	case len(args) > 0 && len(f.files) > 0:
		return usagef("%s: give either -f or KIND NAME, not both", op.verb)
	case len(args) > 0:
		var err error
		if docs, err = docsFromArgs(args, f.namespace); err != nil {
			return err
		}
	case len(f.files) == 0:
		if op.byName {
			return usagef("%s: give -f FILENAME or KIND NAME", op.verb)
		}
		return usagef("%s: -f FILENAME is required", op.verb)
	default:
		inputs, err := readInputs(f.files, s.env.Stdin)
		if err != nil {
			return err
		}
		docs, err = loadDocuments(inputs, loadOptions{validate: op.verb != "delete", namespace: f.namespace, namespaceExplicit: nsExplicit})
		var bad *invalidInputError
		if errors.As(err, &bad) {
			for _, p := range bad.problems {
				printf(s.stderr(), "%s\n", p)
			}
			return &reportedError{fmt.Sprintf("%d invalid document(s); nothing was %s", len(bad.problems), op.past)}
		}
		if err != nil {
			return err
		}
	}

	be, err := s.backend(cmd)
	if err != nil {
		return err
	}
	if op.verb != "delete" {
		// As calicoctl: the cluster's built-in objects exist before the first write.
		if err := ensureInitialized(cmd.Context(), be); err != nil {
			return err
		}
	}
	var t tally
	for _, d := range docs {
		skipped, err := s.do(cmd.Context(), be, op, d, f.skip)
		switch {
		case err != nil:
			t.failed++
			printf(s.stderr(), "Failed to %s '%s' resource: %v\n", op.verb, d.info.Kind, err)
		case skipped:
			t.add(d.info.Kind, &t.skipped)
		default:
			t.add(d.info.Kind, &t.ok)
		}
	}
	for _, k := range t.kinds {
		if n := t.ok[k]; n > 0 {
			printf(s.stdout(), "Successfully %s %d '%s' resource(s)\n", op.past, n, k)
		}
		if n := t.skipped[k]; n > 0 {
			printf(s.stdout(), "Skipped %d '%s' resource(s): %s\n", n, k, op.skippedReason)
		}
	}
	if t.failed > 0 {
		return &reportedError{fmt.Sprintf("failed to %s %d of %d resource(s)", op.verb, t.failed, len(docs))}
	}
	return nil
}

// tally counts results per kind, keeping kinds in order of first appearance.
type tally struct {
	kinds       []string
	ok, skipped map[string]int
	failed      int
}

func (t *tally) add(kind string, m *map[string]int) {
	if *m == nil {
		*m = map[string]int{}
	}
	if t.ok[kind] == 0 && t.skipped[kind] == 0 {
		t.kinds = append(t.kinds, kind)
	}
	(*m)[kind]++
}

// do performs op on one document. skipped reports a resource left alone because of --skip-*.
func (s *state) do(ctx context.Context, be datastore.Backend, op operation, d document, skip bool) (skipped bool, err error) {
	key := datastore.Key{Kind: d.info.Kind, Namespace: d.obj.GetNamespace(), Name: d.obj.GetName()}
	if key.Kind == api.KindClusterInformation {
		return false, describeErr(key, errReadOnly)
	}
	if op.verb != "delete" {
		if err := checkTierExists(ctx, be, d.obj); err != nil {
			return false, describeErr(key, err)
		}
		if err := checkPoolOverlap(ctx, be, d.obj); err != nil {
			return false, describeErr(key, err)
		}
	}
	switch op.verb {
	case "apply":
		err = applyOne(ctx, be, key, d.obj)
	case "create":
		obj := clone(d.obj)
		clearServerFields(obj)
		_, err = be.Create(ctx, obj)
		if skip && errors.Is(err, datastore.ErrAlreadyExists) {
			return true, nil
		}
	case "replace":
		err = replaceOne(ctx, be, key, d.obj)
	case "delete":
		_, err = be.Delete(ctx, key, d.obj.GetResourceVersion())
		if skip && errors.Is(err, datastore.ErrNotFound) {
			return true, nil
		}
	default:
		panic("unknown operation " + op.verb)
	}
	if err != nil {
		return false, describeErr(key, err)
	}
	s.log.Debug("resource written", "operation", op.verb, "kind", key.Kind, "namespace", key.Namespace, "name", key.Name)
	return false, nil
}

// applyRetries bounds how often apply re-reads a resource that keeps changing under it.
const applyRetries = 5

// applyOne creates obj or updates the stored one. Without a resourceVersion in obj, the update is a
// compare-and-swap against the version just read, retried on conflict; with one, it is a single
// compare-and-swap against the user's version.
func applyOne(ctx context.Context, be datastore.Backend, key datastore.Key, obj api.Resource) error {
	userRV := obj.GetResourceVersion()
	var err error
	for range applyRetries {
		var cur api.Resource
		cur, err = be.Get(ctx, key)
		if errors.Is(err, datastore.ErrNotFound) {
			if userRV != "" {
				return err // the user's version cannot match a resource that does not exist
			}
			c := clone(obj)
			clearServerFields(c)
			_, err = be.Create(ctx, c)
			if errors.Is(err, datastore.ErrAlreadyExists) {
				continue // created by someone else meanwhile: update it instead
			}
			return err
		}
		if err != nil {
			return err
		}
		upd := clone(obj)
		carryServerFields(upd, cur)
		if userRV == "" {
			upd.SetResourceVersion(cur.GetResourceVersion())
		}
		_, err = be.Update(ctx, upd)
		if userRV == "" && (errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound)) {
			continue // changed or deleted since we read it: start again
		}
		return err
	}
	return fmt.Errorf("gave up after %d attempts: %w", applyRetries, err)
}

// replaceOne updates an existing resource; it fails with ErrNotFound if there is none.
func replaceOne(ctx context.Context, be datastore.Backend, key datastore.Key, obj api.Resource) error {
	cur, err := be.Get(ctx, key)
	if err != nil {
		return err
	}
	upd := clone(obj)
	carryServerFields(upd, cur)
	_, err = be.Update(ctx, upd)
	return err
}

func clone(obj api.Resource) api.Resource { return obj.DeepCopyObject().(api.Resource) }

// clearServerFields removes what the datastore assigns, so that a file saved with get -o yaml can be
// created again.
func clearServerFields(obj api.Resource) {
	obj.SetResourceVersion("")
	obj.SetUID("")
	obj.SetCreationTimestamp(metav1.Time{})
}

// carryServerFields keeps the stored object's identity across an update.
func carryServerFields(upd, cur api.Resource) {
	if upd.GetUID() == "" {
		upd.SetUID(cur.GetUID())
	}
	if ts := upd.GetCreationTimestamp(); ts.IsZero() {
		upd.SetCreationTimestamp(cur.GetCreationTimestamp())
	}
}

// keyString formats a key as calicoctl does: IPPool(pool-a), NetworkPolicy(ns/name).
func keyString(k datastore.Key) string {
	if k.Namespace != "" {
		return fmt.Sprintf("%s(%s/%s)", k.Kind, k.Namespace, k.Name)
	}
	return fmt.Sprintf("%s(%s)", k.Kind, k.Name)
}

// describeErr turns a datastore error into calicoctl's wording, naming the resource.
func describeErr(k datastore.Key, err error) error {
	for _, sentinel := range []error{datastore.ErrNotFound, datastore.ErrAlreadyExists, datastore.ErrConflict} {
		if errors.Is(err, sentinel) {
			return &keyedError{msg: fmt.Sprintf("%v: %s", sentinel, keyString(k)), err: err}
		}
	}
	return &keyedError{msg: fmt.Sprintf("%s: %v", keyString(k), err), err: err}
}

type keyedError struct {
	msg string
	err error
}

func (e *keyedError) Error() string { return e.msg }
func (e *keyedError) Unwrap() error { return e.err }

// lookupKind resolves a kind given on the command line, or explains which kinds exist.
func lookupKind(name string) (api.KindInfo, error) {
	if info, ok := api.LookupKind(name); ok {
		return info, nil
	}
	var kinds []string
	for _, k := range api.Kinds() {
		kinds = append(kinds, k.Kind)
	}
	sort.Strings(kinds)
	return api.KindInfo{}, fmt.Errorf("unknown resource type %q; valid types: %s (plurals and short names such as ippools or pool work too)",
		name, strings.Join(kinds, ", "))
}

// docsFromArgs turns "KIND NAME..." or "KIND/NAME..." into documents holding just the key.
func docsFromArgs(args []string, namespace string) ([]document, error) {
	type pair struct{ kind, name string }
	var pairs []pair
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			kind, name, ok := strings.Cut(a, "/")
			if !ok || kind == "" || name == "" {
				return nil, usagef("%q: expected KIND/NAME (do not mix KIND/NAME with KIND NAME)", a)
			}
			pairs = append(pairs, pair{kind, name})
		}
	} else {
		if len(args) < 2 {
			return nil, usagef("give the name(s) of the %s to delete: KIND NAME...", args[0])
		}
		for _, n := range args[1:] {
			pairs = append(pairs, pair{args[0], n})
		}
	}
	var docs []document
	for i, p := range pairs {
		info, err := lookupKind(p.kind)
		if err != nil {
			return nil, err
		}
		obj := info.New()
		obj.SetName(p.name)
		if info.Namespaced {
			obj.SetNamespace(defaultNamespace(namespace))
		}
		docs = append(docs, document{source: "command line", index: i + 1, obj: obj, info: info})
	}
	return docs, nil
}
