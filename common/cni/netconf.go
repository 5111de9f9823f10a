package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/tortie-net/tortie/common/config"
	"github.com/tortie-net/tortie/common/config/kubeconfig"
)

// Datastore types, spelled as Calico's datastore_type.
const (
	DatastoreKubernetes = "kubernetes"
	DatastoreEtcdV3     = "etcdv3"
)

// IPAM plugin types handled in-process (Calico's name is accepted for drop-in compatibility).
const (
	IPAMTypeTortie = "tortie-ipam"
	IPAMTypeCalico = "calico-ipam"
)

// Defaults.
const (
	DefaultEtcdEndpoint = "http://127.0.0.1:2379"
	DefaultMTU          = 1500
	DefaultLogLevel     = "info"
	// DefaultNodenameFile, DefaultMTUFile and DefaultIPAMLockFile are Calico's paths, so a Calico
	// conflist keeps working (common/config owns them).
	DefaultNodenameFile = config.NodenameFile
	DefaultMTUFile      = config.MTUFile
	DefaultIPAMLockFile = config.IPAMLockFile
	// PolicyTypeK8s is the only policy.type: policy comes from Kubernetes and tortie resources.
	PolicyTypeK8s = "k8s"
	// DeviceTypeVeth is the only pod device type.
	DeviceTypeVeth = "veth"
)

// NetConf is a parsed, validated network configuration: Calico's keys (cni-plugin/pkg/types), with
// defaults applied. Keys tortie does not know are ignored, as Calico ignores them. The nodename and
// MTU, which may come from files on the host, are resolved separately (ResolveNodename, ResolveMTU)
// so that parsing stays pure and DEL never depends on those files.
type NetConf struct {
	CNIVersion string
	Name       string
	Type       string

	// DatastoreType is DatastoreKubernetes or DatastoreEtcdV3 (datastore_type, else DATASTORE_TYPE,
	// else etcdv3 as in Calico).
	DatastoreType string
	// EtcdEndpoints (etcd_endpoints, comma-separated; else ETCD_ENDPOINTS; else DefaultEtcdEndpoint).
	EtcdEndpoints                             []string
	EtcdCACertFile, EtcdCertFile, EtcdKeyFile string
	// EtcdKeyPrefix (etcd_key_prefix, a tortie extension) puts every key under a prefix; empty is
	// Calico's layout.
	EtcdKeyPrefix string
	// Kubeconfig (kubernetes.kubeconfig, else KUBECONFIG). Required for the kubernetes datastore; with
	// etcdv3 it is optional and, when set, pods are read from the Kubernetes API as Calico does.
	Kubeconfig string

	Nodename             string
	NodenameFile         string
	NodenameFileOptional bool
	// MTU is the configured MTU; 0 means "from the MTU file, else DefaultMTU" (ResolveMTU).
	MTU int

	IPAM IPAMConf

	LogFilePath string
	LogLevel    slog.Level

	PolicyType     string
	FeatureControl FeatureControl
	IPAMLockFile   string
	DNS            types.DNS

	// PrevResult is the parsed prevResult (CHECK, DEL), or nil.
	PrevResult types.Result
	// ValidAttachments is cni.dev/valid-attachments (GC); nil when absent.
	ValidAttachments []types.GCAttachment

	// Ignored lists recognised Calico keys whose settings tortie accepts but does not act on, for a
	// warning in the log.
	Ignored []string
	// Bytes is the configuration as received, passed on unchanged to a delegated IPAM plugin.
	Bytes []byte
}

// IPAMConf is the "ipam" section.
type IPAMConf struct {
	// Type is the IPAM plugin; tortie-ipam and calico-ipam run in-process (InProcess).
	Type       string
	AssignIPv4 bool
	AssignIPv6 bool
	// IPv4Pools and IPv6Pools are pool names or CIDRs to allocate from (empty: every pool that
	// qualifies).
	IPv4Pools []string
	IPv6Pools []string
}

// InProcess reports whether the IPAM type is tortie's own, which the plugin runs in its own process
// instead of executing a second binary.
func (c IPAMConf) InProcess() bool { return c.Type == IPAMTypeTortie || c.Type == IPAMTypeCalico }

// FeatureControl is the "feature_control" section.
type FeatureControl struct {
	// IPAddrsNoIPAM allows the cni.projectcalico.org/ipAddrsNoIpam annotation.
	IPAddrsNoIPAM bool
	// FloatingIPs allows the cni.projectcalico.org/floatingIPs annotation (not supported: rejected).
	FloatingIPs bool
}

// flexBool is a boolean that also accepts the strings "true" and "false": Calico's assign_ipv4 and
// assign_ipv6 are strings, and manifests write both forms.
type flexBool struct {
	set, v bool
}

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		return nil
	}
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	v, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		// An UnmarshalTypeError gets the key path filled in by encoding/json.
		return &json.UnmarshalTypeError{Value: string(data), Type: reflect.TypeFor[bool]()}
	}
	b.set, b.v = true, v
	return nil
}

func (b flexBool) or(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}

// rawConf mirrors the JSON. Unknown keys are ignored by encoding/json.
type rawConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`

	DatastoreType    string `json:"datastore_type"`
	EtcdEndpoints    string `json:"etcd_endpoints"`
	EtcdDiscoverySrv string `json:"etcd_discovery_srv"`
	EtcdCACertFile   string `json:"etcd_ca_cert_file"`
	EtcdCertFile     string `json:"etcd_cert_file"`
	EtcdKeyFile      string `json:"etcd_key_file"`
	EtcdKeyPrefix    string `json:"etcd_key_prefix"`
	Kubernetes       struct {
		Kubeconfig string `json:"kubeconfig"`
	} `json:"kubernetes"`

	Nodename             string   `json:"nodename"`
	NodenameFile         string   `json:"nodename_file"`
	NodenameFileOptional flexBool `json:"nodename_file_optional"`
	MTU                  *int     `json:"mtu"`

	IPAM struct {
		Type       string   `json:"type"`
		AssignIPv4 flexBool `json:"assign_ipv4"`
		AssignIPv6 flexBool `json:"assign_ipv6"`
		IPv4Pools  []string `json:"ipv4_pools"`
		IPv6Pools  []string `json:"ipv6_pools"`
	} `json:"ipam"`

	LogFilePath string `json:"log_file_path"`
	LogLevel    string `json:"log_level"`
	Policy      struct {
		Type string `json:"type"`
	} `json:"policy"`
	FeatureControl struct {
		IPAddrsNoIpam flexBool `json:"ip_addrs_no_ipam"`
		FloatingIPs   flexBool `json:"floating_ips"`
	} `json:"feature_control"`
	IPAMLockFile string    `json:"ipam_lock_file"`
	DNS          types.DNS `json:"dns"`
	DeviceType   string    `json:"device_type"`

	// Calico keys accepted and ignored (reported in NetConf.Ignored when set).
	NumQueues                 int             `json:"num_queues"`
	PolicySetupTimeoutSeconds int             `json:"policy_setup_timeout_seconds"`
	EndpointStatusDir         string          `json:"endpoint_status_dir"`
	ReadinessGates            json.RawMessage `json:"readiness_gates"`
	RequireMTUFile            flexBool        `json:"require_mtu_file"`
	ContainerSettings         json.RawMessage `json:"container_settings"`

	RawPrevResult map[string]any `json:"prevResult"`
	// ValidAttachments is kept raw to tell a null list (libcni's encoding of "no attachments") from an
	// absent key (no list given at all).
	ValidAttachments json.RawMessage `json:"cni.dev/valid-attachments"`
	// Attachments is the name an earlier spec draft used (libcni sends both).
	Attachments json.RawMessage `json:"cni.dev/attachments"`
}

// ParseNetConf parses and validates a network configuration (the plugin's stdin). getenv supplies
// the fallbacks Calico reads from the environment (DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG, each
// under common/config's alias rule: TORTIE_X over X over CALICO_X); nil means none. Every error is a *types.Error: code 6 for JSON that does not parse, 1 for an
// unsupported cniVersion, 2 for a setting tortie cannot honour, 7 for an invalid value; the message
// names the key and the fix.
func ParseNetConf(data []byte, getenv func(string) string) (*NetConf, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var raw rawConf
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, decodeError(err)
	}
	c := &NetConf{
		CNIVersion:           raw.CNIVersion,
		Name:                 raw.Name,
		Type:                 raw.Type,
		EtcdCACertFile:       raw.EtcdCACertFile,
		EtcdCertFile:         raw.EtcdCertFile,
		EtcdKeyFile:          raw.EtcdKeyFile,
		EtcdKeyPrefix:        raw.EtcdKeyPrefix,
		Nodename:             strings.TrimSpace(raw.Nodename),
		NodenameFile:         raw.NodenameFile,
		NodenameFileOptional: raw.NodenameFileOptional.or(false),
		LogFilePath:          raw.LogFilePath,
		PolicyType:           raw.Policy.Type,
		IPAMLockFile:         raw.IPAMLockFile,
		DNS:                  raw.DNS,
		FeatureControl: FeatureControl{
			IPAddrsNoIPAM: raw.FeatureControl.IPAddrsNoIpam.or(false),
			FloatingIPs:   raw.FeatureControl.FloatingIPs.or(false),
		},
		IPAM: IPAMConf{
			Type:       raw.IPAM.Type,
			AssignIPv4: raw.IPAM.AssignIPv4.or(true),
			AssignIPv6: raw.IPAM.AssignIPv6.or(false),
			IPv4Pools:  raw.IPAM.IPv4Pools,
			IPv6Pools:  raw.IPAM.IPv6Pools,
		},
		Bytes: data,
	}

	if c.CNIVersion == "" {
		c.CNIVersion = "0.1.0" // what libcni and skel assume for a missing version
	}
	if !slices.Contains(version.All.SupportedVersions(), c.CNIVersion) {
		return nil, &types.Error{Code: CodeIncompatibleVersion,
			Msg: fmt.Sprintf("incompatible CNI versions: \"cniVersion\" %q is not supported; use one of %s",
				c.CNIVersion, strings.Join(version.All.SupportedVersions(), ", "))}
	}
	if c.Name == "" {
		return nil, invalidConfig("name", "is missing: every network configuration needs a name (e.g. \"k8s-pod-network\")")
	}

	if err := c.parseDatastore(raw, getenv); err != nil {
		return nil, err
	}
	if err := c.parseIPAM(); err != nil {
		return nil, err
	}

	if raw.MTU != nil {
		if *raw.MTU != 0 && (*raw.MTU < 68 || *raw.MTU > 65535) {
			return nil, invalidConfig("mtu", "is %d: set a value between 68 and 65535, or remove the key to use %s (else %d)",
				*raw.MTU, DefaultMTUFile, DefaultMTU)
		}
		c.MTU = *raw.MTU
	}
	if c.NodenameFile == "" {
		c.NodenameFile = DefaultNodenameFile
	} else if !filepath.IsAbs(c.NodenameFile) && !strings.HasPrefix(c.NodenameFile, "/") {
		return nil, invalidConfig("nodename_file", "is %q: use an absolute path (default %s)", c.NodenameFile, DefaultNodenameFile)
	}
	if c.IPAMLockFile == "" {
		c.IPAMLockFile = DefaultIPAMLockFile
	} else if !filepath.IsAbs(c.IPAMLockFile) && !strings.HasPrefix(c.IPAMLockFile, "/") {
		return nil, invalidConfig("ipam_lock_file", "is %q: use an absolute path (default %s)", c.IPAMLockFile, DefaultIPAMLockFile)
	}
	if strings.ContainsRune(c.Nodename, '/') {
		return nil, invalidConfig("nodename", "is %q: a node name cannot contain '/'", c.Nodename)
	}

	lvl, err := parseLogLevel(raw.LogLevel)
	if err != nil {
		return nil, err
	}
	c.LogLevel = lvl

	switch c.PolicyType {
	case "", PolicyTypeK8s:
	default:
		return nil, invalidConfig("policy.type", "is %q: the only policy type is %q (policy from Kubernetes NetworkPolicy and tortie policy resources); set it to %q or remove it",
			c.PolicyType, PolicyTypeK8s, PolicyTypeK8s)
	}
	switch raw.DeviceType {
	case "", DeviceTypeVeth:
	default:
		return nil, unsupportedField("device_type", strconv.Quote(raw.DeviceType), "tortie creates veth pairs only; set \"device_type\": \"veth\" or remove the key")
	}
	if c.FeatureControl.FloatingIPs {
		return nil, unsupportedField("feature_control.floating_ips", true, "floating IPs are not supported yet; remove the key or set it to false")
	}

	if raw.NumQueues > 1 {
		c.Ignored = append(c.Ignored, "num_queues")
	}
	if raw.PolicySetupTimeoutSeconds > 0 {
		c.Ignored = append(c.Ignored, "policy_setup_timeout_seconds")
	}
	if raw.EndpointStatusDir != "" {
		c.Ignored = append(c.Ignored, "endpoint_status_dir")
	}
	if len(raw.ReadinessGates) > 0 && string(raw.ReadinessGates) != "null" && string(raw.ReadinessGates) != "[]" {
		c.Ignored = append(c.Ignored, "readiness_gates")
	}
	if raw.RequireMTUFile.or(false) {
		c.Ignored = append(c.Ignored, "require_mtu_file")
	}
	if len(raw.ContainerSettings) > 0 && string(raw.ContainerSettings) != "null" && string(raw.ContainerSettings) != "{}" {
		c.Ignored = append(c.Ignored, "container_settings")
	}

	for _, r := range []struct {
		key string
		raw json.RawMessage
	}{{"cni.dev/valid-attachments", raw.ValidAttachments}, {"cni.dev/attachments", raw.Attachments}} {
		if c.ValidAttachments != nil || r.raw == nil {
			continue
		}
		list := []types.GCAttachment{}
		if string(r.raw) != "null" {
			if err := json.Unmarshal(r.raw, &list); err != nil {
				return nil, invalidConfig(r.key, "must be a list of {\"containerID\", \"ifname\"} objects: %v", err)
			}
		}
		if list == nil {
			list = []types.GCAttachment{}
		}
		c.ValidAttachments = list
	}
	if raw.RawPrevResult != nil {
		pc := &types.PluginConf{CNIVersion: c.CNIVersion, RawPrevResult: raw.RawPrevResult}
		if err := version.ParsePrevResult(pc); err != nil {
			return nil, invalidConfig("prevResult", "cannot be read as a cniVersion %s result: %v", c.CNIVersion, err)
		}
		c.PrevResult = pc.PrevResult
	}
	return c, nil
}

func (c *NetConf) parseDatastore(raw rawConf, getenv func(string) string) error {
	c.DatastoreType = strings.TrimSpace(raw.DatastoreType)
	if c.DatastoreType == "" {
		c.DatastoreType, _ = config.Lookup(getenv, "DATASTORE_TYPE")
	}
	switch c.DatastoreType {
	case "":
		c.DatastoreType = DatastoreEtcdV3
	case DatastoreKubernetes, DatastoreEtcdV3:
	default:
		return invalidConfig("datastore_type", "is %q: set %q or %q", c.DatastoreType, DatastoreKubernetes, DatastoreEtcdV3)
	}
	if raw.EtcdDiscoverySrv != "" {
		return unsupportedField("etcd_discovery_srv", strconv.Quote(raw.EtcdDiscoverySrv), "list the etcd URLs in \"etcd_endpoints\" instead")
	}
	// The one kubeconfig rule, without the in-cluster fallback: the plugin runs on the host, not in a pod.
	if src, err := kubeconfig.Resolve(getenv, raw.Kubernetes.Kubeconfig, kubeconfig.Options{DisableCluster: true}); err == nil {
		c.Kubeconfig = src.Path
	}

	endpoints, key := raw.EtcdEndpoints, "etcd_endpoints"
	if endpoints == "" {
		endpoints, key = config.Lookup(getenv, "ETCD_ENDPOINTS")
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalidConfig(key, "has %q, which is not an etcd URL: write http://host:2379 or https://host:2379, comma-separated", e)
		}
		c.EtcdEndpoints = append(c.EtcdEndpoints, e)
	}
	if (c.EtcdCertFile == "") != (c.EtcdKeyFile == "") {
		return invalidConfig("etcd_cert_file", "and \"etcd_key_file\" must be set together (the client certificate and its key)")
	}
	if p := c.EtcdKeyPrefix; p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/")) {
		return invalidConfig("etcd_key_prefix", "is %q: it must start with '/' and not end with one (e.g. \"/cluster-a\")", p)
	}

	switch c.DatastoreType {
	case DatastoreEtcdV3:
		if len(c.EtcdEndpoints) == 0 {
			c.EtcdEndpoints = []string{DefaultEtcdEndpoint}
		}
	case DatastoreKubernetes:
		if c.Kubeconfig == "" {
			return invalidConfig("kubernetes.kubeconfig", "is missing: the kubernetes datastore needs the path of a kubeconfig file "+
				"(the installer writes one, e.g. \"kubernetes\": {\"kubeconfig\": \"/etc/cni/net.d/tortie-kubeconfig\"})")
		}
	}
	return nil
}

func (c *NetConf) parseIPAM() error {
	if c.IPAM.Type == "" {
		c.IPAM.Type = IPAMTypeTortie
	}
	if !c.IPAM.InProcess() {
		// Another IPAM plugin's section is that plugin's business.
		return nil
	}
	if !c.IPAM.AssignIPv4 && !c.IPAM.AssignIPv6 {
		return invalidConfig("ipam.assign_ipv4", "and \"ipam.assign_ipv6\" are both false: nothing would be assigned; set at least one to \"true\"")
	}
	check := func(key string, pools []string, want4 bool) error {
		for _, p := range pools {
			p = strings.TrimSpace(p)
			if p == "" {
				return invalidConfig(key, "has an empty entry: list pool names or CIDRs")
			}
			if !strings.Contains(p, "/") {
				continue // a pool name
			}
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				return invalidConfig(key, "has %q, which is neither a pool name nor a CIDR: %v", p, err)
			}
			if pfx.Addr().Is4() != want4 {
				fam := "IPv4"
				if !want4 {
					fam = "IPv6"
				}
				return invalidConfig(key, "has %q, which is not an %s CIDR: move it to the other family's list", p, fam)
			}
		}
		return nil
	}
	if err := check("ipam.ipv4_pools", c.IPAM.IPv4Pools, true); err != nil {
		return err
	}
	return check("ipam.ipv6_pools", c.IPAM.IPv6Pools, false)
}

// parseLogLevel accepts Calico's (logrus) level names.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return slog.LevelInfo, nil
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	}
	return 0, invalidConfig("log_level", "is %q: use debug, info, warning or error", s)
}

// decodeError explains a JSON error: a value of the wrong type names the key (code 7); anything else
// is a document that does not parse (code 6).
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		want := "a " + te.Type.String()
		switch te.Type.Kind() {
		case reflect.Bool:
			want = "true or false (or the strings \"true\", \"false\")"
		case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
			want = "a whole number"
		case reflect.String:
			want = "a string"
		case reflect.Slice:
			want = "a list"
		case reflect.Struct, reflect.Map:
			want = "an object"
		}
		return invalidConfig(te.Field, "has a value of the wrong type (%s): it must be %s", te.Value, want)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &types.Error{Code: CodeDecodingFailure, Msg: fmt.Sprintf("network configuration is not valid JSON (at byte %d): %v", se.Offset, err)}
	}
	return &types.Error{Code: CodeDecodingFailure, Msg: "network configuration cannot be decoded: " + err.Error()}
}

// Host is how the plugin reads the host's files; tests replace it.
type Host struct {
	// ReadFile reads a file (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Hostname returns the host's name (default os.Hostname).
	Hostname func() (string, error)
	// MTUFile is the file the node agent writes the pod MTU to (default DefaultMTUFile).
	MTUFile string
}

// OSHost reads the real host.
func OSHost() Host {
	return Host{ReadFile: os.ReadFile, Hostname: os.Hostname, MTUFile: DefaultMTUFile}
}

func (h Host) withDefaults() Host {
	if h.ReadFile == nil {
		h.ReadFile = os.ReadFile
	}
	if h.Hostname == nil {
		h.Hostname = os.Hostname
	}
	if h.MTUFile == "" {
		h.MTUFile = DefaultMTUFile
	}
	return h
}

// ResolveNodename returns the node name: "nodename", else the first line of nodename_file, else the
// host name. With requireFile (ADD), a missing nodename_file is an error unless
// nodename_file_optional is set, as in Calico: the node agent writes the file when it has started,
// so its absence means the node is not ready for pods (code 11, try again later). This check applies
// even when "nodename" is set.
func (c *NetConf) ResolveNodename(h Host, requireFile bool) (string, error) {
	h = h.withDefaults()
	data, err := h.ReadFile(c.NodenameFile)
	fileName := strings.TrimSpace(firstLine(data))
	switch {
	case err == nil && fileName == "" && requireFile && !c.NodenameFileOptional && c.Nodename == "":
		return "", Errorf(CodeTryAgainLater, "%s is empty: the node agent (tortie-node) has not finished starting; set \"nodename\" or \"nodename_file_optional\": true if no agent writes it", c.NodenameFile)
	case err != nil && requireFile && !c.NodenameFileOptional:
		if errors.Is(err, fs.ErrNotExist) {
			return "", Errorf(CodeTryAgainLater, "%s does not exist: the node agent (tortie-node) is not running on this host or has not mounted %s; start it, or set \"nodename_file_optional\": true", c.NodenameFile, filepath.Dir(c.NodenameFile))
		}
		return "", Errorf(CodeTryAgainLater, "reading the node name from %s: %v", c.NodenameFile, err)
	}
	if c.Nodename != "" {
		return c.Nodename, nil
	}
	if fileName != "" {
		return fileName, nil
	}
	name, herr := h.Hostname()
	if herr != nil || strings.TrimSpace(name) == "" {
		return "", Errorf(CodeInvalidConfig, "cannot determine the node name: set \"nodename\" in the network configuration (no %s, and the host name is unavailable: %v)", c.NodenameFile, herr)
	}
	return strings.ToLower(strings.TrimSpace(name)), nil
}

// ResolveMTU returns the pod MTU: "mtu", else the MTU file the node agent writes, else DefaultMTU. A
// file that exists but does not hold a valid MTU is an error naming it.
func (c *NetConf) ResolveMTU(h Host) (int, error) {
	if c.MTU != 0 {
		return c.MTU, nil
	}
	h = h.withDefaults()
	data, err := h.ReadFile(h.MTUFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return DefaultMTU, nil
		}
		return 0, Errorf(CodeIOFailure, "reading the pod MTU from %s: %v (set \"mtu\" in the network configuration to skip the file)", h.MTUFile, err)
	}
	s := strings.TrimSpace(firstLine(data))
	mtu, err := strconv.Atoi(s)
	if err != nil || mtu < 68 || mtu > 65535 {
		return 0, Errorf(CodeInvalidConfig, "the MTU file %s holds %q, not an MTU between 68 and 65535: fix or delete the file, or set \"mtu\" in the network configuration", h.MTUFile, s)
	}
	return mtu, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
