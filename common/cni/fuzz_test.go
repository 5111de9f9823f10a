package cni

import (
	"errors"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/ipam"
)

// FuzzParseNetConf: any input gives a valid configuration or a *types.Error with a configuration
// code; never a panic.
func FuzzParseNetConf(f *testing.F) {
	for _, s := range []string{
		calicoKDD,
		`{"cniVersion":"1.1.0","name":"n"}`,
		`{"cniVersion":"1.0.0","name":"n","mtu":1450,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`,
		`{"cniVersion":"1.0.0","name":"n","ipam":{"assign_ipv6":"true","ipv6_pools":["fd00::/64"]}}`,
		`{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`,
		`{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.5/32"}]}}`,
		`{"cniVersion":"0.3.1","name":"n","etcd_endpoints":"http://a:2379,https://b:2379","etcd_key_prefix":"/x"}`,
		`{"name":"n","nodename_file_optional":"true","log_level":"debug","policy":{"type":"k8s"}}`,
		`null`, `[]`, `{}`, `{"mtu":1e400}`,
	} {
		f.Add([]byte(s))
	}
	codes := []uint{CodeIncompatibleVersion, CodeUnsupportedField, CodeDecodingFailure, CodeInvalidConfig}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseNetConf(data, nil)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is a %T, not a *types.Error", err, err)
			}
			if !slices.Contains(codes, te.Code) {
				t.Fatalf("error code %d (%s) is not a configuration code", te.Code, te.Msg)
			}
			if te.Msg == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if c.Name == "" || !slices.Contains(version.All.SupportedVersions(), c.CNIVersion) {
			t.Fatalf("accepted name %q version %q", c.Name, c.CNIVersion)
		}
		if c.DatastoreType != DatastoreEtcdV3 && c.DatastoreType != DatastoreKubernetes {
			t.Fatalf("datastore type %q", c.DatastoreType)
		}
		if c.DatastoreType == DatastoreEtcdV3 && len(c.EtcdEndpoints) == 0 {
			t.Fatal("etcd without endpoints")
		}
		if c.DatastoreType == DatastoreKubernetes && c.Kubeconfig == "" {
			t.Fatal("kubernetes without kubeconfig")
		}
		if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
			t.Fatalf("mtu %d", c.MTU)
		}
		if c.IPAM.Type == "" || (c.IPAM.InProcess() && !c.IPAM.AssignIPv4 && !c.IPAM.AssignIPv6) {
			t.Fatalf("ipam %+v", c.IPAM)
		}
		if c.IPAMLockFile == "" || c.NodenameFile == "" {
			t.Fatal("missing default paths")
		}
	})
}

// FuzzParseArgs: CNI_ARGS never panic; errors are code 4; a pod always has both names.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"", "IgnoreUnknown=1;K8S_POD_NAMESPACE=a;K8S_POD_NAME=b", "IP=10.0.0.1,fd00::1", ";;=;", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseArgs(s)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || te.Code != CodeInvalidEnvironment {
				t.Fatalf("error %v, want code 4", err)
			}
			return
		}
		if (a.PodName == "") != (a.PodNamespace == "") {
			t.Fatalf("half a pod: %+v", a)
		}
	})
}

// FuzzAnnotations: pod and namespace IPAM annotations never panic; errors name the annotation.
func FuzzAnnotations(f *testing.F) {
	f.Add(`["pool-a"]`, `["fd00::/64"]`, `["10.0.0.5"]`, "", "02:00:00:00:00:01", `["10.1.0.0/16"]`)
	f.Add(`[]`, `x`, `["10.0.0.5","10.0.0.6"]`, `["10.0.0.7"]`, "ff:ff:ff:ff:ff:ff", "")
	f.Add(`["10.0.0.0/8", ""]`, `[1]`, `["fe80::1%eth0"]`, `null`, "zz", `{}`)
	f.Fuzz(func(t *testing.T, v4, v6, addrs, noIPAM, mac, nsV4 string) {
		ann := map[string]string{}
		for k, v := range map[string]string{api.AnnotationIPv4Pools: v4, api.AnnotationIPv6Pools: v6, api.AnnotationIPAddrs: addrs,
			api.AnnotationIPAddrsNoIpam: noIPAM, api.AnnotationHwAddr: mac} {
			if v != "" {
				ann[k] = v
			}
		}
		pod := &PodInfo{Namespace: "ns", Name: "p", Annotations: ann, NamespaceAnnotations: map[string]string{api.AnnotationIPv4Pools: nsV4}}
		conf := &NetConf{IPAM: IPAMConf{Type: IPAMTypeTortie, AssignIPv4: true}, FeatureControl: FeatureControl{IPAddrsNoIPAM: true}}
		r, err := addrRequestFor(conf, pod, Args{})
		if err != nil {
			var ae *ipam.AnnotationError
			if !errors.As(err, &ae) || ae.Annotation == "" || ae.Reason == "" {
				t.Fatalf("error %v does not name the annotation", err)
			}
			return
		}
		for _, a := range append(r.Specific, r.NoIPAM...) {
			if !a.IsValid() || a.Zone() != "" {
				t.Fatalf("bad address %v", a)
			}
		}
		if len(r.Specific) > 0 && len(r.NoIPAM) > 0 {
			t.Fatal("both ipAddrs and ipAddrsNoIpam")
		}
		if r.MAC != nil && (len(r.MAC) != 6 || r.MAC[0]&1 != 0) {
			t.Fatalf("bad MAC %v", r.MAC)
		}
	})
}
