package node

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tortie-net/tortie/common/startup/autodetect"
)

// ConfigMaps startup reads from kube-system (Calico's names).
const (
	// KubeadmConfigMap holds kubeadm's ClusterConfiguration (networking.podSubnet).
	KubeadmConfigMap = "kubeadm-config"
	// RancherStateConfigMap marks a Rancher (RKE) cluster.
	RancherStateConfigMap = "full-cluster-state"
	// kubeadmClusterConfigKey is the ConfigMap key holding the ClusterConfiguration document.
	kubeadmClusterConfigKey = "ClusterConfiguration"
)

// kubeAPITimeout bounds each Kubernetes API call startup makes through Options.Kube.
const kubeAPITimeout = 30 * time.Second

// kubeadmConfig is what startup uses from kubeadm's ClusterConfiguration.
type kubeadmConfig struct {
	// PodSubnetV4 and PodSubnetV6 are the first IPv4 and IPv6 CIDRs of networking.podSubnet.
	PodSubnetV4, PodSubnetV6 string
}

// readClusterConfigMaps is step 2: kubeadm-config (default pool CIDRs, clusterType "kubeadm") and
// Rancher's full-cluster-state (clusterType "rancher"). A ConfigMap that is missing or that we may not
// read means "not that kind of cluster", as in Calico; any other API error stops startup, because
// guessing would create pools with the wrong CIDR.
func (s *starter) readClusterConfigMaps(ctx context.Context) error {
	if s.o.Kube == nil {
		return nil
	}
	cm, err := getConfigMap(ctx, s.o.Kube, KubeadmConfigMap)
	if err != nil {
		return err
	}
	if cm != nil {
		s.kubeadmSource = fmt.Sprintf("networking.podSubnet in ConfigMap %s/%s", metav1.NamespaceSystem, KubeadmConfigMap)
		kc, warning := parseKubeadmConfig(cm)
		if warning != "" {
			s.warn(warning)
		}
		s.kubeadm = &kc
		s.log.Info("kubeadm cluster detected", "pod_subnet_v4", kc.PodSubnetV4, "pod_subnet_v6", kc.PodSubnetV6)
	}
	cm, err = getConfigMap(ctx, s.o.Kube, RancherStateConfigMap)
	if err != nil {
		return err
	}
	s.rancher = cm != nil
	return nil
}

// getConfigMap reads kube-system/name; (nil, nil) when it is missing or forbidden.
func getConfigMap(ctx context.Context, k kubernetes.Interface, name string) (*corev1.ConfigMap, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeAPITimeout)
	defer cancel()
	cm, err := k.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return cm, nil
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return nil, nil
	}
	return nil, fmt.Errorf("reading ConfigMap %s/%s from the Kubernetes API: %w", metav1.NamespaceSystem, name, err)
}

// parseKubeadmConfig extracts networking.podSubnet from the ClusterConfiguration: a CIDR or, on a
// dual-stack cluster, a comma-separated list; the first IPv4 and the first IPv6 CIDR are used. A
// problem is returned as a warning: kubeadm's ConfigMap only supplies a default.
func parseKubeadmConfig(cm *corev1.ConfigMap) (kubeadmConfig, string) {
	var kc kubeadmConfig
	doc, ok := cm.Data[kubeadmClusterConfigKey]
	if !ok {
		return kc, fmt.Sprintf("ConfigMap %s/%s has no %s key; not using it for the default pool CIDRs",
			cm.Namespace, cm.Name, kubeadmClusterConfigKey)
	}
	var cfg struct {
		Networking struct {
			PodSubnet string `json:"podSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		return kc, fmt.Sprintf("ConfigMap %s/%s: %s is not valid YAML (%v); not using it for the default pool CIDRs",
			cm.Namespace, cm.Name, kubeadmClusterConfigKey, err)
	}
	var bad []string
	for _, c := range strings.Split(cfg.Networking.PodSubnet, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			bad = append(bad, c)
			continue
		}
		if p.Addr().Is4() && kc.PodSubnetV4 == "" {
			kc.PodSubnetV4 = c
		} else if p.Addr().Is6() && kc.PodSubnetV6 == "" {
			kc.PodSubnetV6 = c
		}
	}
	if len(bad) > 0 {
		return kc, fmt.Sprintf("ConfigMap %s/%s: networking.podSubnet %q has entries that are not CIDRs (%s); they are ignored",
			cm.Namespace, cm.Name, cfg.Networking.PodSubnet, strings.Join(bad, ", "))
	}
	return kc, ""
}

// nodeAddressSource returns what kubernetes-internal-ip autodetection reads: the Kubernetes Node's
// InternalIP addresses through Options.Kube, or else the InternalIP addresses the datastore reports on
// the Node (the Kubernetes datastore synthesises them from the Kubernetes Node). nil when neither is
// available.
func (s *starter) nodeAddressSource(stored []string) autodetect.NodeAddressSource {
	if s.o.Kube != nil {
		k, name := s.o.Kube, s.k8sName
		return autodetect.NodeAddressFunc(func(ctx context.Context) ([]string, error) {
			ctx, cancel := context.WithTimeout(ctx, kubeAPITimeout)
			defer cancel()
			n, err := k.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("reading Kubernetes Node %q for its InternalIP: %w", name, err)
			}
			var out []string
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					out = append(out, a.Address)
				}
			}
			return out, nil
		})
	}
	if len(stored) > 0 {
		return autodetect.NodeAddressFunc(func(context.Context) ([]string, error) { return stored, nil })
	}
	return nil
}
