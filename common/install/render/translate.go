package render

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/config"
)

// FieldError is one setting that cannot be carried over: its path in the input and why.
type FieldError struct {
	Path, Reason string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Reason }

// UnsupportedError lists every setting of an input that tortie cannot honour; nothing is rendered.
type UnsupportedError struct {
	Source string
	Fields []FieldError
}

func (e *UnsupportedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d setting(s) cannot be carried over (remove or change them):", e.Source, len(e.Fields))
	for _, f := range e.Fields {
		b.WriteString("\n  " + f.Error())
	}
	return b.String()
}

// IsInstallation reports whether a YAML document is an operator.tigera.io Installation.
func IsInstallation(doc []byte) bool {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	return yaml.Unmarshal(doc, &tm) == nil && tm.Kind == "Installation" && strings.HasPrefix(tm.APIVersion, "operator.tigera.io/")
}

// walker reads a decoded document and remembers every key it was not asked about.
type walker struct {
	errs []FieldError
}

type node struct {
	w    *walker
	path string
	m    map[string]any
	used map[string]bool
}

func (w *walker) obj(path string, v any) *node {
	n := &node{w: w, path: path, used: map[string]bool{}}
	if v == nil {
		return n
	}
	m, ok := v.(map[string]any)
	if !ok {
		w.fail(path, fmt.Sprintf("must be an object, not %T", v))
		return n
	}
	n.m = m
	return n
}

func (w *walker) fail(path, reason string) {
	w.errs = append(w.errs, FieldError{Path: path, Reason: reason})
}

func (n *node) p(key string) string {
	if n.path == "" {
		return key
	}
	return n.path + "." + key
}

func (n *node) get(key string) (any, bool) {
	n.used[key] = true
	v, ok := n.m[key]
	return v, ok && v != nil
}

func (n *node) str(key string) (string, bool) {
	v, ok := n.get(key)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		n.w.fail(n.p(key), fmt.Sprintf("must be a string, not %v", v))
		return "", false
	}
	return s, true
}

func (n *node) num(key string) (float64, bool) {
	v, ok := n.get(key)
	if !ok {
		return 0, false
	}
	f, isNum := v.(float64)
	if !isNum || f != float64(int64(f)) {
		n.w.fail(n.p(key), fmt.Sprintf("must be an integer, not %v", v))
		return 0, false
	}
	return f, true
}

func (n *node) enum(key string, allowed ...string) (string, bool) {
	s, ok := n.str(key)
	if ok && !slices.Contains(allowed, s) {
		n.w.fail(n.p(key), fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", ")))
		return "", false
	}
	return s, ok
}

func (n *node) child(key string) *node {
	v, _ := n.get(key)
	return n.w.obj(n.p(key), v)
}

// unsupported marks a key as read and, when set, reports it with reason.
func (n *node) unsupported(key, reason string) {
	if v, ok := n.get(key); ok && !empty(v) {
		n.w.fail(n.p(key), reason)
	}
}

// done reports every key nobody asked about.
func (n *node) done() {
	keys := make([]string, 0, len(n.m))
	for k := range n.m {
		if !n.used[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		n.w.fail(n.p(k), "not a field tortie knows in this document")
	}
}

// FromInstallation translates an operator.tigera.io/v1 Installation into chart values. Every field that
// cannot be honoured is reported by its path in an *UnsupportedError; nothing is silently dropped.
// Defaults follow the Tigera operator's: BGP Enabled, one IPv4 pool 192.168.0.0/16 with block size 26,
// natOutgoing Enabled, nodeSelector all(), and IPIP encapsulation with BGP (VXLAN without).
func FromInstallation(doc []byte, source string) (Values, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a YAML document: %w", source, err)
	}
	w := &walker{}
	top := w.obj("", raw)
	if av, _ := top.str("apiVersion"); av != "operator.tigera.io/v1" {
		return nil, fmt.Errorf("%s: apiVersion %q: want operator.tigera.io/v1", source, av)
	}
	if k, _ := top.str("kind"); k != "Installation" {
		return nil, fmt.Errorf("%s: kind %q: want Installation", source, k)
	}
	top.get("metadata")
	top.get("status")
	spec := top.child("spec")
	top.done()

	vals := Values{}
	set := func(v any, keys ...string) {
		m := vals
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}

	if v, ok := spec.str("variant"); ok && v != "Calico" {
		w.fail(spec.p("variant"), fmt.Sprintf("%q: tortie is the Calico variant only", v))
	}
	registry, hasReg := spec.str("registry")
	imagePath, hasPath := spec.str("imagePath")
	prefix, hasPrefix := spec.str("imagePrefix")
	if hasReg || hasPath || hasPrefix {
		if !hasReg {
			registry = "ghcr.io"
		}
		if !hasPath {
			imagePath = "tortie-net"
		}
		set(strings.TrimSuffix(registry, "/")+"/"+strings.Trim(imagePath, "/")+"/"+prefix+"tortie", "image", "repository")
	}
	if v, ok := spec.get("imagePullSecrets"); ok {
		list, isList := v.([]any)
		if !isList {
			w.fail(spec.p("imagePullSecrets"), "must be a list of {name: ...}")
		}
		var names []any
		for i, e := range list {
			s := w.obj(fmt.Sprintf("%s[%d]", spec.p("imagePullSecrets"), i), e)
			if n, ok := s.str("name"); ok {
				names = append(names, n)
			}
			s.done()
		}
		set(names, "imagePullSecrets")
	}
	spec.unsupported("kubernetesProvider", "tortie has no provider-specific settings; remove it")

	cni := spec.child("cni")
	if t, ok := cni.str("type"); ok && t != "Calico" {
		cni.w.fail(cni.p("type"), fmt.Sprintf("%q: only Calico (tortie's own plugin) is supported", t))
	}
	ipam := cni.child("ipam")
	if t, ok := ipam.str("type"); ok && t != "Calico" {
		ipam.w.fail(ipam.p("type"), fmt.Sprintf("%q: only Calico IPAM is supported", t))
	}
	ipam.done()
	cni.unsupported("binDir", "set the chart value cni.binDir instead (the host's directory)")
	cni.unsupported("confDir", "set the chart value cni.netDir instead (the host's directory)")
	cni.done()

	bgp := "Enabled"
	net := spec.child("calicoNetwork")
	if v, ok := net.enum("bgp", "Enabled", "Disabled"); ok {
		bgp = v
	}
	set(bgp, "bgp")
	if v, ok := net.enum("linuxDataplane", "Iptables", "BPF", "Nftables", "VPP"); ok && v != "Iptables" {
		w.fail(net.p("linuxDataplane"), fmt.Sprintf("%q: tortie's Linux dataplane is iptables; use Iptables", v))
	}
	if v, ok := net.num("mtu"); ok {
		set(v, "mtu")
	}
	if v, ok := net.enum("hostPorts", "Enabled", "Disabled"); ok {
		set(v == "Enabled", "cni", "hostPorts")
	}
	if m, ok := autodetection(net.child("nodeAddressAutodetectionV4")); ok {
		set(m, "ipAutodetectionMethod")
	}
	if m, ok := autodetection(net.child("nodeAddressAutodetectionV6")); ok {
		set(m, "ip6AutodetectionMethod")
	}
	net.unsupported("windowsDataplane", "Windows nodes are installed by installer/kubernetes/windows; remove it here")
	for _, k := range []string{"containerIPForwarding", "multiInterfaceMode", "linuxPolicySetupTimeoutSeconds", "bgpNodeSelector", "kubeProxyManagement", "sysctl"} {
		net.unsupported(k, "not supported by tortie")
	}

	pools, _ := net.get("ipPools")
	list, isList := pools.([]any)
	if pools != nil && !isList {
		w.fail(net.p("ipPools"), "must be a list")
	}
	seen := map[string]bool{}
	if pools == nil {
		enc := "VXLAN"
		if bgp == "Enabled" {
			enc = "IPIP"
		}
		set(map[string]any{"cidr": "192.168.0.0/16", "blockSize": 26, "encapsulation": enc, "natOutgoing": true, "nodeSelector": "all()"}, "ipPools", "v4")
	}
	for i, e := range list {
		p := w.obj(fmt.Sprintf("%s[%d]", net.p("ipPools"), i), e)
		pool, fam, ok := ipPool(p, bgp)
		p.done()
		if !ok {
			continue
		}
		if seen[fam] {
			w.fail(p.path, fmt.Sprintf("a second IP%s pool: tortie-node creates one default pool per family; create further pools with `tortiectl apply -f` after installing", fam))
			continue
		}
		seen[fam] = true
		set(pool, "ipPools", fam)
	}
	if !seen["v4"] && pools != nil {
		// The operator creates no IPv4 pool when the list has none; neither does tortie-node then.
		w.fail(net.p("ipPools"), "has no IPv4 pool: tortie-node always creates a default IPv4 pool (CALICO_IPV4POOL_CIDR); add one")
	}
	net.done()

	if sel := spec.child("controlPlaneNodeSelector"); sel.m != nil {
		m := map[string]any{}
		for k := range sel.m {
			if s, ok := sel.str(k); ok {
				m[k] = s
			}
		}
		set(m, "controllers", "nodeSelector")
	}
	if v, ok := spec.get("controlPlaneTolerations"); ok {
		set(v, "controllers", "tolerations")
	}
	if v, ok := spec.num("controlPlaneReplicas"); ok {
		set(v, "controllers", "replicas")
	}
	us := spec.child("nodeUpdateStrategy")
	if t, ok := us.str("type"); ok && t != "RollingUpdate" {
		w.fail(us.p("type"), fmt.Sprintf("%q: tortie-node always updates with RollingUpdate", t))
	}
	ru := us.child("rollingUpdate")
	if v, ok := ru.get("maxUnavailable"); ok {
		set(v, "node", "maxUnavailable")
	}
	ru.done()
	us.done()
	for _, k := range []string{"flexVolumePath", "componentResources", "calicoNodeDaemonSet", "calicoNodeWindowsDaemonSet", "typhaDeployment",
		"calicoKubeControllersDeployment", "calicoWindowsUpgradeDaemonSet", "certificateManagement", "nonPrivileged", "typhaAffinity", "fipsMode", "logging", "tlsCipherSuites", "serviceCIDRs", "csiNodeDriverDaemonSet", "proxy", "azure"} {
		spec.unsupported(k, "not supported by tortie's manifest; set the matching chart value instead")
	}
	spec.done()

	if len(w.errs) > 0 {
		return nil, &UnsupportedError{Source: source, Fields: w.errs}
	}
	return vals, nil
}

// ipPool translates one Installation pool.
func ipPool(p *node, bgp string) (map[string]any, string, bool) {
	cidr, ok := p.str("cidr")
	if !ok {
		p.w.fail(p.p("cidr"), "is required")
		return nil, "", false
	}
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil {
		p.w.fail(p.p("cidr"), fmt.Sprintf("%q is not a CIDR", cidr))
		return nil, "", false
	}
	fam, bs := "v4", 26
	if pfx.Addr().Is6() {
		fam, bs = "v6", 122
	}
	out := map[string]any{"cidr": pfx.Masked().String(), "blockSize": bs, "natOutgoing": true, "nodeSelector": "all()"}
	if fam == "v6" {
		out["natOutgoing"] = false
	}
	if v, ok := p.num("blockSize"); ok {
		out["blockSize"] = v
	}
	switch {
	case fam == "v4" && bgp == "Enabled":
		out["encapsulation"] = "IPIP"
	case fam == "v4":
		out["encapsulation"] = "VXLAN"
	default:
		out["encapsulation"] = "None"
	}
	if v, ok := p.enum("encapsulation", "IPIP", "VXLAN", "IPIPCrossSubnet", "VXLANCrossSubnet", "None"); ok {
		if fam == "v6" && strings.HasPrefix(v, "IPIP") {
			p.w.fail(p.p("encapsulation"), fmt.Sprintf("%q: IPIP carries IPv4 only; use VXLAN or None for %s", v, cidr))
		}
		out["encapsulation"] = v
	}
	if v, ok := p.enum("natOutgoing", "Enabled", "Disabled"); ok {
		out["natOutgoing"] = v == "Enabled"
	}
	if v, ok := p.str("nodeSelector"); ok {
		out["nodeSelector"] = v
	}
	if v, ok := p.get("disableBGPExport"); ok {
		b, isBool := v.(bool)
		if !isBool {
			p.w.fail(p.p("disableBGPExport"), "must be true or false")
		}
		out["disableBGPExport"] = b
	}
	if n, ok := p.str("name"); ok && n != "default-ipv4-ippool" && n != "default-ipv6-ippool" {
		p.w.fail(p.p("name"), fmt.Sprintf("%q: the pool tortie-node creates is named default-ip%s-ippool; remove the name or create this pool with tortiectl apply", n, fam[1:]))
	}
	for _, k := range []string{"allowedUses", "assignmentMode", "disableNewAllocations"} {
		p.unsupported(k, "not supported for the default pool; create the pool with `tortiectl apply -f` instead")
	}
	return out, fam, true
}

// autodetection turns a NodeAddressAutodetection into IP_AUTODETECTION_METHOD.
func autodetection(n *node) (string, bool) {
	if n.m == nil {
		return "", false
	}
	var methods []string
	if v, ok := n.get("firstFound"); ok {
		if b, _ := v.(bool); b {
			methods = append(methods, "first-found")
		}
	}
	if v, ok := n.enum("kubernetes", "NodeInternalIP"); ok && v != "" {
		methods = append(methods, "kubernetes-internal-ip")
	}
	for key, prefix := range map[string]string{"interface": "interface=", "skipInterface": "skip-interface=", "canReach": "can-reach="} {
		if v, ok := n.str(key); ok && v != "" {
			methods = append(methods, prefix+v)
		}
	}
	if v, ok := n.get("cidrs"); ok {
		list, _ := v.([]any)
		var cidrs []string
		for _, c := range list {
			if s, ok := c.(string); ok {
				cidrs = append(cidrs, s)
			}
		}
		if len(cidrs) == 0 {
			n.w.fail(n.p("cidrs"), "must be a non-empty list of CIDRs")
		} else {
			methods = append(methods, "cidr="+strings.Join(cidrs, ","))
		}
	}
	n.done()
	switch len(methods) {
	case 0:
		return "", false
	case 1:
		return methods[0], true
	default:
		sort.Strings(methods)
		n.w.fail(n.path, "sets more than one method ("+strings.Join(methods, ", ")+"); set exactly one")
		return "", false
	}
}

// FromEnv translates Calico manifest variables (the calico-node container's env) into chart values:
// the pool variables, autodetection, backend, datastore and MTU become their values; FELIX_* go to
// felix; every other variable is passed to tortie-node unchanged under env (the agent reads Calico's
// names). Values that do not parse are reported by variable name.
func FromEnv(vars map[string]string) (Values, error) {
	vals := Values{}
	sub := func(keys ...string) map[string]any {
		m := vals
		for _, k := range keys {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		return m
	}
	var errs []error
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := strings.TrimSpace(vars[name])
		base, _ := config.StripPrefix(name)
		switch {
		case strings.HasPrefix(base, "IPV4POOL_") || strings.HasPrefix(base, "IPV6POOL_"):
			fam := "v4"
			if strings.HasPrefix(base, "IPV6") {
				fam = "v6"
			}
			pool := sub("ipPools", fam)
			switch strings.TrimPrefix(strings.TrimPrefix(base, "IPV4POOL_"), "IPV6POOL_") {
			case "CIDR":
				pool["cidr"] = v
			case "BLOCK_SIZE":
				n, err := strconv.Atoi(v)
				if err != nil {
					errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "a prefix length", Err: err})
				}
				pool["blockSize"] = n
			case "IPIP", "VXLAN":
				mode := strings.TrimPrefix(strings.TrimPrefix(base, "IPV4POOL_"), "IPV6POOL_")
				kind := map[string]string{"IPIP": "IPIP", "VXLAN": "VXLAN"}[mode]
				prev, _ := pool["encapsulation"].(string)
				switch strings.ToLower(v) {
				case "always", "crosssubnet", "cross-subnet":
					if prev != "" && prev != "None" {
						errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "Never: the pool already uses " + prev + " (IPIP and VXLAN exclude each other)"})
					}
					pool["encapsulation"] = kind
					if strings.ToLower(v) != "always" {
						pool["encapsulation"] = kind + "CrossSubnet"
					}
				case "never", "off", "":
					if pool["encapsulation"] == nil {
						pool["encapsulation"] = "None"
					}
				default:
					errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "Always, CrossSubnet or Never"})
				}
			case "NAT_OUTGOING":
				b, err := config.ParseBool(v)
				if err != nil {
					errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "true or false", Err: err})
				}
				pool["natOutgoing"] = b
			case "NODE_SELECTOR":
				pool["nodeSelector"] = v
			case "DISABLE_BGP_EXPORT":
				b, err := config.ParseBool(v)
				if err != nil {
					errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "true or false", Err: err})
				}
				pool["disableBGPExport"] = b
			default:
				sub("env")[name] = v
			}
		case base == "IP_AUTODETECTION_METHOD":
			vals["ipAutodetectionMethod"] = v
		case base == "IP6_AUTODETECTION_METHOD":
			vals["ip6AutodetectionMethod"] = v
		case base == "NETWORKING_BACKEND":
			switch v {
			case "bird":
				vals["bgp"] = "Enabled"
			case "vxlan", "none":
				vals["bgp"] = "Disabled"
			default:
				errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "bird, vxlan or none"})
			}
		case base == "DATASTORE_TYPE":
			sub("datastore")["type"] = v
		case base == "ETCD_ENDPOINTS":
			sub("datastore", "etcd")["endpoints"] = v
		case base == "CNI_MTU" || name == "veth_mtu":
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, &config.EnvError{Var: name, Value: v, Want: "an MTU (0: detect)", Err: err})
			}
			vals["mtu"] = n
		case strings.HasPrefix(name, "FELIX_"):
			sub("felix")[name] = v
		case base == "NODENAME" || base == "NODE_NAME" || name == "KUBERNETES_NODE_NAME":
			// Set by the chart from the downward API.
		default:
			sub("env")[name] = v
		}
	}
	for _, fam := range []string{"v4", "v6"} {
		if p, ok := sub("ipPools")[fam].(map[string]any); ok && len(p) == 0 {
			delete(sub("ipPools"), fam)
		}
	}
	if len(sub("ipPools")) == 0 {
		delete(vals, "ipPools")
	}
	return vals, errors.Join(errs...)
}
