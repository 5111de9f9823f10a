package cli

import (
	"fmt"

	"github.com/tortie-net/tortie/common/api"
)

// decodeInput decodes every document of one source with api.DecodeDocuments, so that each object keeps
// its position for later validation messages and every bad document is reported, not just the first.
// Decode errors name the source, the document, the kind/name and the field.
func decodeInput(data []byte, source string) ([]document, []error) {
	decoded, errs := api.DecodeDocuments(data, source)
	var docs []document
	for _, dec := range decoded {
		info, err := api.KindOf(dec.Object)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", source, dec.Document, err))
			continue
		}
		docs = append(docs, document{source: source, index: dec.Document, item: dec.Item, obj: dec.Object, info: info})
	}
	return docs, errs
}
