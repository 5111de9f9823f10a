package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoadDocumentsPositions checks that objects and problems are named by the document and list item
// that api.DecodeDocuments gives them, and that every bad document is reported.
func TestLoadDocumentsPositions(t *testing.T) {
	p := func(name, cidr string) string {
		return fmt.Sprintf("{apiVersion: projectcalico.org/v3, kind: IPPool, metadata: {name: %s}, spec: {cidr: %s}}", name, cidr)
	}
	tests := []struct {
		name, in  string
		wantDocs  []string
		wantProbs []string
	}{
		{
			name:     "documents and items",
			in:       "# not counted\n---\n" + p("a", "10.0.0.0/8") + "\n--- " + p("b", "10.1.0.0/16") + "\n---\n- " + p("c", "10.2.0.0/16") + "\n- " + p("d", "10.3.0.0/16") + "\n---\n[" + p("e", "10.4.0.0/16") + "]\n",
			wantDocs: []string{"in: document 1", "in: document 2", "in: document 3, item 1", "in: document 3, item 2", "in: document 4, item 1"},
		},
		{
			name:     "flow-style first document",
			in:       p("a", "10.0.0.0/8") + "\n---\n" + p("b", "10.1.0.0/16") + "\n",
			wantDocs: []string{"in: document 1", "in: document 2"},
		},
		{
			name: "every bad document, decoding and validation, in order",
			in:   p("a", "10.0.0.0/8") + "\n---\nhello\n---\n- " + p("b", "10.1.0.0/16") + "\n- " + p("c", "bad") + "\n---\nkind: Tier\n---\n" + p("d", "10.2.0.0/16") + "\n",
			wantProbs: []string{
				"in: document 2: expected an object with apiVersion, kind, metadata and spec",
				`in: document 3, item 2: IPPool "c": spec.cidr: "bad" is not a valid CIDR`,
				"in: document 4 (Tier): apiVersion is missing; set it to projectcalico.org/v3",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := loadDocuments([]input{{"in", []byte(tt.in)}}, loadOptions{validate: true})
			var got []string
			for _, d := range docs {
				got = append(got, d.where())
			}
			if diff := cmp.Diff(tt.wantDocs, got); diff != "" {
				t.Errorf("documents (-want +got):\n%s", diff)
			}
			var probs []string
			var ie *invalidInputError
			if errors.As(err, &ie) {
				probs = ie.problems
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantProbs, probs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
