// Package helm embeds tortie's Helm chart, so that tortiectl renders exactly the templates Helm renders
// (see common/install/render). The chart itself is the directory tortie/.
package helm

import "embed"

// Chart is the chart directory tortie/ (Chart.yaml, values.yaml, values.schema.json, crds/, templates/).
//
//go:embed all:tortie
var Chart embed.FS
