package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tortie-net/tortie/common/api"
)

// document is one decoded resource with where it came from.
type document struct {
	source string // file name, or "stdin"
	index  int    // 1-based position of the document among the non-empty documents of its source
	item   int    // 1-based position in a list document; 0 for a single object
	obj    api.Resource
	info   api.KindInfo
}

// where names the document for messages as api.DecodeError does: "pools.yaml: document 3" or
// "list.yaml: document 1, item 2".
func (d document) where() string {
	if d.item > 0 {
		return fmt.Sprintf("%s: document %d, item %d", d.source, d.index, d.item)
	}
	return fmt.Sprintf("%s: document %d", d.source, d.index)
}

// inputExts are the file extensions read from a directory.
var inputExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// input is one source's bytes.
type input struct {
	name string
	data []byte
}

// readInputs expands -f arguments: "-" is stdin, a directory is its .yaml, .yml and .json files (not
// recursive) sorted by name, anything else a file.
func readInputs(filenames []string, stdin io.Reader) ([]input, error) {
	var out []input
	stdinUsed := false
	for _, f := range filenames {
		if f == "-" {
			if stdinUsed {
				return nil, usagef("-f -: standard input can be read only once")
			}
			stdinUsed = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			out = append(out, input{"stdin", data})
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, unwrapPathError(err))
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", f, unwrapPathError(err))
			}
			out = append(out, input{f, data})
			continue
		}
		entries, err := os.ReadDir(f)
		if err != nil {
			return nil, fmt.Errorf("reading directory %s: %w", f, unwrapPathError(err))
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && inputExts[strings.ToLower(filepath.Ext(e.Name()))] {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("directory %s has no .yaml, .yml or .json files", f)
		}
		for _, n := range names {
			p := filepath.Join(f, n)
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", p, unwrapPathError(err))
			}
			out = append(out, input{p, data})
		}
	}
	return out, nil
}

// unwrapPathError drops the path from an *fs.PathError; the caller names the file itself.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadOptions says how documents are prepared for an operation.
type loadOptions struct {
	// validate runs defaulting and validation (not for delete, which needs only the key).
	validate bool
	// namespace fills metadata.namespace of namespaced resources that do not set it ("" means "default"),
	// and must match those that do when explicit is set.
	namespace         string
	namespaceExplicit bool
}

// loadDocuments decodes, defaults and validates every document of every input, and returns either all of
// them or an error listing every bad document. Nothing is written before this returns without error.
func loadDocuments(inputs []input, opts loadOptions) ([]document, error) {
	var docs []document
	type problem struct {
		input, doc, item int
		msg              string
	}
	var problems []problem
	for n, in := range inputs {
		ds, errs := decodeInput(in.data, in.name)
		for _, err := range errs {
			p := problem{input: n, msg: err.Error()}
			var de *api.DecodeError
			if errors.As(err, &de) {
				p.doc, p.item = de.Document, de.Item
			}
			problems = append(problems, p)
		}
		for _, d := range ds {
			if err := prepare(&d, opts); err != nil {
				problems = append(problems, problem{n, d.index, d.item, fmt.Sprintf("%s: %v", d.where(), err)})
				continue
			}
			docs = append(docs, d)
		}
	}
	if len(problems) > 0 {
		// In file order, whichever stage found the problem.
		sort.SliceStable(problems, func(i, j int) bool {
			a, b := problems[i], problems[j]
			if a.input != b.input {
				return a.input < b.input
			}
			if a.doc != b.doc {
				return a.doc < b.doc
			}
			return a.item < b.item
		})
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.msg
		}
		return nil, &invalidInputError{problems: msgs}
	}
	if len(docs) == 0 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.name
		}
		return nil, fmt.Errorf("no resources found in %s", strings.Join(names, ", "))
	}
	return docs, nil
}

// invalidInputError lists every document that failed to decode or validate.
type invalidInputError struct{ problems []string }

func (e *invalidInputError) Error() string { return strings.Join(e.problems, "\n") }

// prepare fills the namespace, checks the name and, for writes, defaults and validates.
func prepare(d *document, opts loadOptions) error {
	obj := d.obj
	if obj.GetName() == "" {
		return fmt.Errorf("%s: metadata.name: required", d.info.Kind)
	}
	if d.info.Namespaced {
		switch ns := obj.GetNamespace(); {
		case ns == "":
			obj.SetNamespace(defaultNamespace(opts.namespace))
		case opts.namespaceExplicit && ns != opts.namespace:
			return fmt.Errorf("%s: metadata.namespace: %q does not match --namespace %q", describeObj(d.info, obj), ns, opts.namespace)
		}
	} else if ns := obj.GetNamespace(); ns != "" {
		return fmt.Errorf("%s: metadata.namespace: must be empty, %s is not namespaced (got %q)", describeObj(d.info, obj), d.info.Kind, ns)
	}
	if !opts.validate {
		return nil
	}
	api.SetDefaults(obj)
	return api.Validate(obj)
}

func defaultNamespace(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// describeObj names an object as the api package's validation errors do: IPPool "pool-a".
func describeObj(info api.KindInfo, obj api.Resource) string {
	if info.Namespaced && obj.GetNamespace() != "" {
		return fmt.Sprintf("%s %q", info.Kind, obj.GetNamespace()+"/"+obj.GetName())
	}
	return fmt.Sprintf("%s %q", info.Kind, obj.GetName())
}
