// Package render renders tortie's Kubernetes manifest from chart values, and translates the settings
// operators already have into those values: Calico manifest variables (CALICO_IPV4POOL_CIDR, FELIX_*,
// ...) and a Tigera operator.tigera.io/v1 Installation document.
//
// The templates are the Helm chart's (installer/kubernetes/helm/tortie, embedded), executed with Go's
// text/template and the handful of Helm and Sprig functions the chart may use, with Helm's semantics:
// values merge over values.yaml as Helm merges them and are checked against values.schema.json. CI
// renders the same chart with the Helm SDK (ci/helmrender) into installer/kubernetes/tortie.yaml, and a
// test renders the defaults here and requires the identical bytes, so Helm, the checked-in manifest and
// `tortiectl install render` cannot drift apart.
package render
