package cli

import (
	"bytes"
	"errors"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/api"
)

// decodeInput decodes every document of one source with api.Decode, one document at a time, so that each
// object keeps its position for later validation messages and every bad document is reported, not just
// the first. Decode errors name the source, the document, the kind/name and the field.
func decodeInput(data []byte, source string) ([]document, []error) {
	var docs []document
	var errs []error
	parts, isJSON := splitDocuments(data)
	for i, raw := range parts {
		index := i + 1
		one := raw
		if !isJSON {
			one = asYAML(raw)
		}
		objs, err := api.Decode(one, source)
		if err != nil {
			var de *api.DecodeError
			if errors.As(err, &de) {
				de.Document = index // Decode saw one document; put back its place in the file
			}
			errs = append(errs, err)
			continue
		}
		list := isList(raw)
		for j, obj := range objs {
			info, err := api.KindOf(obj)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: document %d: %w", source, index, err))
				continue
			}
			d := document{source: source, index: index, obj: obj, info: info}
			if list {
				d.item = j + 1
			}
			docs = append(docs, d)
		}
	}
	return docs, errs
}

// splitDocuments splits a YAML stream into its non-empty documents, by the rules api.Decode numbers
// documents with: "---" lines separate documents (text after "--- " starts the next one), "..." lines
// end one, and documents of only blanks and comments are not counted. A JSON input (starting with "{" or
// "[") is one document. TestSplitMatchesDecode keeps the two in step.
func splitDocuments(data []byte) (docs [][]byte, isJSON bool) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return [][]byte{data}, true
	}
	var cur []byte
	flush := func() {
		if !commentsOnly(cur) {
			docs = append(docs, cur)
		}
		cur = nil
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		t := bytes.TrimRight(line, " \t\r\n")
		if bytes.HasPrefix(t, []byte("---")) && (len(t) == 3 || t[3] == ' ' || t[3] == '\t') {
			flush()
			if rest := bytes.TrimLeft(t[3:], " \t"); len(rest) > 0 {
				cur = append(append(cur, rest...), '\n')
			}
			continue
		}
		if bytes.Equal(t, []byte("...")) {
			continue
		}
		cur = append(cur, line...)
	}
	flush()
	return docs, false
}

// asYAML makes api.Decode read one YAML document as YAML even when it starts with "{" or "[" (flow
// style), which Decode would take for JSON: a "---" separator in front does it. The separator goes on
// the first line when that line has content and on a line of its own when it is blank, so that YAML
// error line numbers stay those of the document.
func asYAML(doc []byte) []byte {
	t := bytes.TrimLeft(doc, " \t\r\n")
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return doc
	}
	first, _, _ := bytes.Cut(doc, []byte("\n"))
	if len(bytes.TrimSpace(first)) == 0 {
		return append([]byte("---\n"), doc...)
	}
	return append([]byte("--- "), doc...)
}

func commentsOnly(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

// isList reports whether a document is a list (a JSON array, or an object with items and a kind ending in
// "List"), whose objects are then numbered as items.
func isList(doc []byte) bool {
	if t := bytes.TrimLeft(doc, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '[' {
		return true
	}
	var h struct {
		Kind  string `json:"kind"`
		Items []any  `json:"items"`
	}
	if err := yaml.Unmarshal(doc, &h); err != nil {
		return false
	}
	return h.Items != nil && len(h.Kind) >= 4 && h.Kind[len(h.Kind)-4:] == "List"
}
