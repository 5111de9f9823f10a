package cni

import (
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tortie-net/tortie/common/datastore/open"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseNetConfDefaults(t *testing.T) {
	c, err := ParseNetConf([]byte(`{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"calico"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &NetConf{
		CNIVersion:    "1.1.0",
		Name:          "k8s-pod-network",
		Type:          "calico",
		DatastoreType: DatastoreEtcdV3,
		EtcdEndpoints: []string{DefaultEtcdEndpoint},
		NodenameFile:  DefaultNodenameFile,
		IPAM:          IPAMConf{Type: IPAMTypeTortie, AssignIPv4: true},
		LogLevel:      slog.LevelInfo,
		IPAMLockFile:  DefaultIPAMLockFile,
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(NetConf{}, "Bytes")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// A Calico KDD conflist entry as calico's install-cni renders it, with keys tortie ignores.
const calicoKDD = `{
  "type": "calico",
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "log_level": "WARNING",
  "log_file_path": "/var/log/calico/cni/cni.log",
  "datastore_type": "kubernetes",
  "nodename": "node-1",
  "mtu": 1440,
  "ipam": {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true", "ipv4_pools": ["10.0.0.0/16", "pool-b"]},
  "policy": {"type": "k8s"},
  "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig", "k8s_api_root": "https://10.96.0.1:443"},
  "feature_control": {"ip_addrs_no_ipam": true},
  "num_queues": 4,
  "container_settings": {"allow_ip_forwarding": true},
  "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
  "some_future_key": {"x": [1, 2, 3]}
}`

func TestParseNetConfCalicoKDD(t *testing.T) {
	c, err := ParseNetConf([]byte(calicoKDD), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &NetConf{
		CNIVersion:     "1.0.0",
		Name:           "k8s-pod-network",
		Type:           "calico",
		DatastoreType:  DatastoreKubernetes,
		Kubeconfig:     "/etc/cni/net.d/calico-kubeconfig",
		Nodename:       "node-1",
		NodenameFile:   DefaultNodenameFile,
		MTU:            1440,
		IPAM:           IPAMConf{Type: IPAMTypeCalico, AssignIPv4: true, AssignIPv6: true, IPv4Pools: []string{"10.0.0.0/16", "pool-b"}},
		LogFilePath:    "/var/log/calico/cni/cni.log",
		LogLevel:       slog.LevelWarn,
		PolicyType:     "k8s",
		FeatureControl: FeatureControl{IPAddrsNoIPAM: true},
		IPAMLockFile:   DefaultIPAMLockFile,
		DNS:            types.DNS{Nameservers: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}},
		Ignored:        []string{"num_queues", "container_settings"},
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(NetConf{}, "Bytes")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !c.IPAM.InProcess() {
		t.Error("calico-ipam should run in-process")
	}
}

func TestParseNetConfEnvironment(t *testing.T) {
	env := envOf(map[string]string{"DATASTORE_TYPE": "kubernetes", "KUBECONFIG": "/k", "ETCD_ENDPOINTS": "http://a:2379, https://b:2379"})
	c, err := ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n"}`), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatastoreType != DatastoreKubernetes || c.Kubeconfig != "/k" {
		t.Errorf("datastore %q kubeconfig %q, want kubernetes /k", c.DatastoreType, c.Kubeconfig)
	}
	// The netconf wins over the environment.
	c, err = ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n","datastore_type":"etcdv3","etcd_endpoints":"http://c:2379"}`), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatastoreType != DatastoreEtcdV3 || !cmp.Equal(c.EtcdEndpoints, []string{"http://c:2379"}) {
		t.Errorf("got %q %q", c.DatastoreType, c.EtcdEndpoints)
	}
	c, err = ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n","datastore_type":"etcdv3"}`), env)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(c.EtcdEndpoints, []string{"http://a:2379", "https://b:2379"}) {
		t.Errorf("endpoints from ETCD_ENDPOINTS: %q", c.EtcdEndpoints)
	}
}

// TestParseNetConfEnvAliases: the environment fallbacks follow common/config's one rule, TORTIE_X over X
// over CALICO_X.
func TestParseNetConfEnvAliases(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantType  string
		wantKube  string
		wantEtcd0 string
	}{
		{"TORTIE_ wins", map[string]string{"TORTIE_DATASTORE_TYPE": "kubernetes", "DATASTORE_TYPE": "etcdv3", "TORTIE_KUBECONFIG": "/t", "KUBECONFIG": "/k"},
			DatastoreKubernetes, "/t", ""},
		{"bare over CALICO_", map[string]string{"DATASTORE_TYPE": "etcdv3", "CALICO_DATASTORE_TYPE": "kubernetes", "ETCD_ENDPOINTS": "http://bare:2379", "CALICO_ETCD_ENDPOINTS": "http://calico:2379"},
			DatastoreEtcdV3, "", "http://bare:2379"},
		{"CALICO_ alone", map[string]string{"CALICO_DATASTORE_TYPE": "kubernetes", "CALICO_KUBECONFIG": "/c"},
			DatastoreKubernetes, "/c", ""},
		{"no in-cluster fallback", map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
			DatastoreEtcdV3, "", DefaultEtcdEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n"}`), envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			var etcd0 string
			if c.DatastoreType == DatastoreEtcdV3 && len(c.EtcdEndpoints) > 0 {
				etcd0 = c.EtcdEndpoints[0]
			}
			if c.DatastoreType != tc.wantType || c.Kubeconfig != tc.wantKube || etcd0 != tc.wantEtcd0 {
				t.Errorf("datastore %q kubeconfig %q etcd %q; want %q %q %q", c.DatastoreType, c.Kubeconfig, etcd0, tc.wantType, tc.wantKube, tc.wantEtcd0)
			}
		})
	}
}

// TestDatastoreConfig: the CNI config's fields become the open.Config the plugin connects with, tuned
// for one short invocation.
func TestDatastoreConfig(t *testing.T) {
	etcdConf := &NetConf{DatastoreType: DatastoreEtcdV3, EtcdEndpoints: []string{"https://e:2379"}, EtcdCACertFile: "/ca",
		EtcdCertFile: "/c", EtcdKeyFile: "/k", EtcdKeyPrefix: "/cluster-a", Kubeconfig: "/kc"}
	got := DatastoreConfig(etcdConf)
	if got.Type != open.EtcdV3 || !cmp.Equal(got.EtcdEndpoints, etcdConf.EtcdEndpoints) || got.EtcdCACertFile != "/ca" ||
		got.EtcdCertFile != "/c" || got.EtcdKeyFile != "/k" || got.EtcdKeyPrefix != "/cluster-a" || got.Kubeconfig != "/kc" {
		t.Errorf("etcd config = %+v", got)
	}
	if tu := got.Tuning; !tu.Preconnect || tu.DialTimeout != dialTimeout || tu.RequestTimeout != requestTimeout || tu.UserAgent != "tortie-cni" {
		t.Errorf("tuning = %+v, want the short-invocation settings", tu)
	}
	got = DatastoreConfig(&NetConf{DatastoreType: DatastoreKubernetes, Kubeconfig: "/kc"})
	if got.Type != open.Kubernetes || got.Kubeconfig != "/kc" || got.InCluster {
		t.Errorf("kubernetes config = %+v", got)
	}
}

func TestParseNetConfErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		code       uint
		want       []string // substrings of the message
	}{
		{"not json", `{"name":`, CodeDecodingFailure, []string{"not valid JSON"}},
		{"version", `{"cniVersion":"9.9.9","name":"n"}`, CodeIncompatibleVersion, []string{`"9.9.9"`, "1.1.0"}},
		{"no name", `{"cniVersion":"1.0.0"}`, CodeInvalidConfig, []string{`"name"`, "k8s-pod-network"}},
		{"datastore", `{"cniVersion":"1.0.0","name":"n","datastore_type":"consul"}`, CodeInvalidConfig, []string{`"datastore_type"`, `"consul"`, "kubernetes", "etcdv3"}},
		{"mtu range", `{"cniVersion":"1.0.0","name":"n","mtu":20}`, CodeInvalidConfig, []string{`"mtu"`, "20", "68 and 65535"}},
		{"mtu type", `{"cniVersion":"1.0.0","name":"n","mtu":"1450"}`, CodeInvalidConfig, []string{`"mtu"`, "whole number"}},
		{"assign type", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"tortie-ipam","assign_ipv4":"yes"}}`, CodeInvalidConfig, []string{`"ipam.assign_ipv4"`, "true or false"}},
		{"nothing to assign", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"tortie-ipam","assign_ipv4":"false"}}`, CodeInvalidConfig, []string{"assign_ipv4", "assign_ipv6", "both false"}},
		{"v4 pool family", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"tortie-ipam","ipv4_pools":["fd00::/64"]}}`, CodeInvalidConfig, []string{`"ipam.ipv4_pools"`, "fd00::/64", "not an IPv4 CIDR"}},
		{"bad pool cidr", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"tortie-ipam","ipv6_pools":["fd00::/999"]}}`, CodeInvalidConfig, []string{`"ipam.ipv6_pools"`, "fd00::/999"}},
		{"pools type", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"tortie-ipam","ipv4_pools":"a"}}`, CodeInvalidConfig, []string{`"ipam.ipv4_pools"`, "a list"}},
		{"kube without kubeconfig", `{"cniVersion":"1.0.0","name":"n","datastore_type":"kubernetes"}`, CodeInvalidConfig, []string{`"kubernetes.kubeconfig"`, "is missing"}},
		{"etcd url", `{"cniVersion":"1.0.0","name":"n","etcd_endpoints":"127.0.0.1:2379"}`, CodeInvalidConfig, []string{`"etcd_endpoints"`, "http://host:2379"}},
		{"cert without key", `{"cniVersion":"1.0.0","name":"n","etcd_cert_file":"/c"}`, CodeInvalidConfig, []string{"etcd_cert_file", "etcd_key_file"}},
		{"key prefix", `{"cniVersion":"1.0.0","name":"n","etcd_key_prefix":"x/"}`, CodeInvalidConfig, []string{`"etcd_key_prefix"`}},
		{"log level", `{"cniVersion":"1.0.0","name":"n","log_level":"loud"}`, CodeInvalidConfig, []string{`"log_level"`, "debug, info, warning or error"}},
		{"policy", `{"cniVersion":"1.0.0","name":"n","policy":{"type":"calico"}}`, CodeInvalidConfig, []string{`"policy.type"`, `"k8s"`}},
		{"lock file", `{"cniVersion":"1.0.0","name":"n","ipam_lock_file":"ipam.lock"}`, CodeInvalidConfig, []string{`"ipam_lock_file"`, "absolute"}},
		{"nodename file", `{"cniVersion":"1.0.0","name":"n","nodename_file":"nodename"}`, CodeInvalidConfig, []string{`"nodename_file"`, "absolute"}},
		{"netkit", `{"cniVersion":"1.0.0","name":"n","device_type":"netkit"}`, CodeUnsupportedField, []string{`"device_type"`, `"netkit"`, "veth"}},
		{"discovery", `{"cniVersion":"1.0.0","name":"n","etcd_discovery_srv":"example.com"}`, CodeUnsupportedField, []string{"etcd_discovery_srv", "example.com"}},
		{"floating", `{"cniVersion":"1.0.0","name":"n","feature_control":{"floating_ips":true}}`, CodeUnsupportedField, []string{"floating_ips"}},
		{"dns type", `{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"8.8.8.8"}}`, CodeInvalidConfig, []string{`"dns.nameservers"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNetConf([]byte(tc.conf), nil)
			var te *types.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want a *types.Error", err, err)
			}
			if te.Code != tc.code {
				t.Errorf("code %d, want %d (%s)", te.Code, tc.code, te.Msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(te.Error(), w) {
					t.Errorf("message %q does not mention %q", te.Error(), w)
				}
			}
		})
	}
}

func TestParseNetConfValidAttachments(t *testing.T) {
	for _, tc := range []struct {
		conf    string
		present bool
		n       int
	}{
		{`{"cniVersion":"1.1.0","name":"n"}`, false, 0},
		{`{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":null}`, true, 0},
		{`{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[]}`, true, 0},
		{`{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`, true, 1},
		{`{"cniVersion":"1.1.0","name":"n","cni.dev/attachments":[{"containerID":"a","ifname":"eth0"}]}`, true, 1},
	} {
		c, err := ParseNetConf([]byte(tc.conf), nil)
		if err != nil {
			t.Fatal(err)
		}
		if (c.ValidAttachments != nil) != tc.present || len(c.ValidAttachments) != tc.n {
			t.Errorf("%s: attachments %v, want present=%v n=%d", tc.conf, c.ValidAttachments, tc.present, tc.n)
		}
	}
}

func TestParseNetConfPrevResult(t *testing.T) {
	c, err := ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"1.0.0",
	  "interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],"ips":[{"address":"10.0.0.5/32","interface":0}]}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PrevResult == nil {
		t.Fatal("no prevResult")
	}
	_, err = ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n","prevResult":{"ips":[{"address":"nonsense"}]}}`), nil)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != CodeInvalidConfig || !strings.Contains(te.Msg, "prevResult") {
		t.Errorf("bad prevResult: %v", err)
	}
}

type fakeFiles map[string]string

func (f fakeFiles) read(name string) ([]byte, error) {
	v, ok := f[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(v), nil
}

func TestResolveNodename(t *testing.T) {
	host := func(files fakeFiles) Host {
		return Host{ReadFile: files.read, Hostname: func() (string, error) { return "Host-A", nil }, MTUFile: "/mtu"}
	}
	for _, tc := range []struct {
		name     string
		conf     string
		files    fakeFiles
		require  bool
		want     string
		wantCode uint
	}{
		{"explicit with file", `"nodename":"n1"`, fakeFiles{DefaultNodenameFile: "file-node\n"}, true, "n1", 0},
		{"file", ``, fakeFiles{DefaultNodenameFile: "file-node\n"}, true, "file-node", 0},
		{"custom file", `"nodename_file":"/x"`, fakeFiles{"/x": "x-node"}, true, "x-node", 0},
		{"missing file required", `"nodename":"n1"`, fakeFiles{}, true, "", CodeTryAgainLater},
		{"missing file optional", `"nodename_file_optional":true`, fakeFiles{}, true, "host-a", 0},
		{"missing file optional explicit", `"nodename_file_optional":true,"nodename":"n1"`, fakeFiles{}, true, "n1", 0},
		{"missing file not required", ``, fakeFiles{}, false, "host-a", 0},
		{"empty file required", ``, fakeFiles{DefaultNodenameFile: "\n"}, true, "", CodeTryAgainLater},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := `{"cniVersion":"1.0.0","name":"n"`
			if tc.conf != "" {
				raw += "," + tc.conf
			}
			c, err := ParseNetConf([]byte(raw+"}"), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ResolveNodename(host(tc.files), tc.require)
			if tc.wantCode != 0 {
				var te *types.Error
				if !errors.As(err, &te) || te.Code != tc.wantCode {
					t.Fatalf("error %v, want code %d", err, tc.wantCode)
				}
				if !strings.Contains(te.Msg, "nodename_file_optional") {
					t.Errorf("message %q does not say how to fix it", te.Msg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolveMTU(t *testing.T) {
	c, _ := ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"n"}`), nil)
	for _, tc := range []struct {
		files fakeFiles
		want  int
		code  uint
	}{
		{fakeFiles{}, DefaultMTU, 0},
		{fakeFiles{"/mtu": "1450\n"}, 1450, 0},
		{fakeFiles{"/mtu": "big"}, 0, CodeInvalidConfig},
		{fakeFiles{"/mtu": "10"}, 0, CodeInvalidConfig},
	} {
		got, err := c.ResolveMTU(Host{ReadFile: tc.files.read, MTUFile: "/mtu"})
		if tc.code != 0 {
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(te.Msg, "/mtu") {
				t.Errorf("%v: error %v, want code %d naming the file", tc.files, err, tc.code)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: got %d, %v; want %d", tc.files, got, err, tc.want)
		}
	}
	c.MTU = 9000
	if got, _ := c.ResolveMTU(Host{ReadFile: fakeFiles{"/mtu": "1450"}.read, MTUFile: "/mtu"}); got != 9000 {
		t.Errorf("netconf mtu should win over the file, got %d", got)
	}
}

func TestParseArgs(t *testing.T) {
	a, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;IP=10.0.0.5, fd00::5;;X=a=b")
	if err != nil {
		t.Fatal(err)
	}
	want := Args{PodNamespace: "ns", PodName: "web-0", PodInfraContainerID: "abc", PodUID: "u-1", IPs: []string{"10.0.0.5", "fd00::5"},
		All: map[string]string{"IgnoreUnknown": "1", ArgPodNamespace: "ns", ArgPodName: "web-0", ArgPodInfraContainerID: "abc", ArgPodUID: "u-1", "IP": "10.0.0.5, fd00::5", "X": "a=b"}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"K8S_POD_NAME=x", "novalue", "=v"} {
		_, err := ParseArgs(bad)
		var te *types.Error
		if !errors.As(err, &te) || te.Code != CodeInvalidEnvironment {
			t.Errorf("ParseArgs(%q) = %v, want code 4", bad, err)
		}
	}
}
