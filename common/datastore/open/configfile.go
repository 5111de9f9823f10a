package open

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// fileSpec holds the CalicoAPIConfig spec fields tortie understands.
type fileSpec struct {
	DatastoreType  string
	EtcdEndpoints  string
	EtcdUsername   string
	EtcdPassword   string
	EtcdCACertFile string
	EtcdCertFile   string
	EtcdKeyFile    string
	Kubeconfig     string
}

// fileFields maps the spec's JSON field names (calicoctl's) to where they go.
var fileFields = map[string]func(*fileSpec) *string{
	"datastoreType":  func(s *fileSpec) *string { return &s.DatastoreType },
	"etcdEndpoints":  func(s *fileSpec) *string { return &s.EtcdEndpoints },
	"etcdUsername":   func(s *fileSpec) *string { return &s.EtcdUsername },
	"etcdPassword":   func(s *fileSpec) *string { return &s.EtcdPassword },
	"etcdCACertFile": func(s *fileSpec) *string { return &s.EtcdCACertFile },
	"etcdCertFile":   func(s *fileSpec) *string { return &s.EtcdCertFile },
	"etcdKeyFile":    func(s *fileSpec) *string { return &s.EtcdKeyFile },
	"kubeconfig":     func(s *fileSpec) *string { return &s.Kubeconfig },
}

// unsupportedFields are calicoctl settings tortie does not implement, with what to do instead.
var unsupportedFields = map[string]string{
	"etcdDiscoverySrv":         "list the endpoints in spec.etcdEndpoints",
	"etcdKey":                  "write the key to a file and set spec.etcdKeyFile",
	"etcdCert":                 "write the certificate to a file and set spec.etcdCertFile",
	"etcdCACert":               "write the CA certificate to a file and set spec.etcdCACertFile",
	"k8sAPIEndpoint":           "put the API server in a kubeconfig and set spec.kubeconfig",
	"k8sKeyFile":               "put the client key in a kubeconfig and set spec.kubeconfig",
	"k8sCertFile":              "put the client certificate in a kubeconfig and set spec.kubeconfig",
	"k8sCAFile":                "put the CA in a kubeconfig and set spec.kubeconfig",
	"k8sAPIToken":              "put the token in a kubeconfig and set spec.kubeconfig",
	"k8sInsecureSkipTLSVerify": "set insecure-skip-tls-verify in a kubeconfig and set spec.kubeconfig",
}

// readConfigFile reads a calicoctl-style config file:
//
//	apiVersion: projectcalico.org/v3
//	kind: CalicoAPIConfig
//	metadata: {}
//	spec:
//	  datastoreType: etcdv3
//	  etcdEndpoints: http://10.0.0.1:2379
//
// A missing file is an error only when required.
func readConfigFile(path string, required bool) (fileSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !required {
			return fileSpec{}, nil
		}
		return fileSpec{}, fmt.Errorf("reading config file: %w", err)
	}
	return parseConfigFile(data, path)
}

func parseConfigFile(data []byte, path string) (fileSpec, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fileSpec{}, fmt.Errorf("config file %s: %w", path, err)
	}
	var spec fileSpec
	if doc == nil {
		return spec, nil
	}
	for k, v := range doc {
		switch k {
		case "apiVersion":
			if s, _ := v.(string); s != "projectcalico.org/v3" && s != "v1" {
				return spec, fmt.Errorf("config file %s: apiVersion: %q is not supported; use projectcalico.org/v3", path, v)
			}
		case "kind":
			if s, _ := v.(string); s != "CalicoAPIConfig" {
				return spec, fmt.Errorf("config file %s: kind: %q is not supported; use CalicoAPIConfig", path, v)
			}
		case "metadata", "spec":
		default:
			return spec, fmt.Errorf("config file %s: unknown field %q", path, k)
		}
	}
	raw, ok := doc["spec"]
	if !ok || raw == nil {
		return spec, nil
	}
	fields, ok := raw.(map[string]any)
	if !ok {
		return spec, fmt.Errorf("config file %s: spec: must be a mapping", path)
	}
	for k, v := range fields {
		if fix, ok := unsupportedFields[k]; ok {
			return spec, fmt.Errorf("config file %s: spec.%s is not supported by tortie; %s", path, k, fix)
		}
		field, ok := fileFields[k]
		if !ok {
			return spec, fmt.Errorf("config file %s: spec.%s: unknown field (known: %s)", path, k, knownFields())
		}
		s, ok := v.(string)
		if !ok && v != nil {
			return spec, fmt.Errorf("config file %s: spec.%s: must be a string, not %v", path, k, v)
		}
		*field(&spec) = strings.TrimSpace(s)
	}
	return spec, nil
}

func knownFields() string {
	names := make([]string, 0, len(fileFields))
	for k := range fileFields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
