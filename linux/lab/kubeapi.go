//go:build linux

package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tortie-net/tortie/common/datastore/kube"
	"github.com/tortie-net/tortie/installer/kubernetes/helm"
)

// KubeAPIServerEnv names the kube-apiserver binary for --datastore kubernetes (ci/test-env.sh exports it).
const KubeAPIServerEnv = "TORTIE_KUBE_APISERVER"

// kubeAPIPort is the lab's kube-apiserver port on the bridge address (the usual secure port).
const kubeAPIPort = 6443

// FindKubeAPIServer returns the kube-apiserver binary: $TORTIE_KUBE_APISERVER, else the newest one
// ci/build-kube-apiserver.sh cached (TORTIE_CACHE, default ~/.cache/tortie), else "".
func FindKubeAPIServer(getenv func(string) string) string {
	if p := getenv(KubeAPIServerEnv); p != "" {
		return p
	}
	cache := getenv("TORTIE_CACHE")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			home = "/root"
		}
		cache = filepath.Join(home, ".cache", "tortie")
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "kube-apiserver-*"))
	var best string
	var bestTime time.Time
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		if best == "" || st.ModTime().After(bestTime) {
			best, bestTime = m, st.ModTime()
		}
	}
	return best
}

func kubeDir(dir string) string { return filepath.Join(dir, "kube") }

// KubeconfigPath is where `up --datastore kubernetes` writes the admin kubeconfig (kubectl and
// tortiectl work with KUBECONFIG set to it).
func KubeconfigPath(dir string) string { return filepath.Join(dir, "kubeconfig") }

// startKubeAPI starts the lab's kube-apiserver on the bridge address, over the lab's etcd, with a CA,
// serving certificate, service-account keys and an admin token of its own in DIR/kube, and writes
// DIR/kubeconfig. Every argument names a file in the state directory, so down finds the process.
func startKubeAPI(ctx context.Context, dir string, s *State) error {
	kd := kubeDir(dir)
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return fmt.Errorf("kube-apiserver directory: %w", err)
	}
	ip := bridgeIP(s.Underlay).Addr()
	caPEM, token, err := writeKubeCredentials(kd, ip)
	if err != nil {
		return fmt.Errorf("kube-apiserver credentials: %w", err)
	}
	s.APIServerURL = "https://" + netip.AddrPortFrom(ip, kubeAPIPort).String()
	if err := writeKubeconfig(KubeconfigPath(dir), s.APIServerURL, caPEM, token); err != nil {
		return err
	}
	s.Kubeconfig = KubeconfigPath(dir)
	return runKubeAPI(ctx, dir, s)
}

// runKubeAPI starts the kube-apiserver process on the credentials startKubeAPI wrote and waits until
// it is ready.
func runKubeAPI(ctx context.Context, dir string, s *State) error {
	kd := kubeDir(dir)
	ip := bridgeIP(s.Underlay).Addr().String()
	args := []string{
		"--etcd-servers=" + s.EtcdURL,
		"--bind-address=" + ip,
		"--advertise-address=" + ip,
		"--secure-port=" + strconv.Itoa(kubeAPIPort),
		"--cert-dir=" + filepath.Join(kd, "certs"),
		"--tls-cert-file=" + filepath.Join(kd, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(kd, "serving.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(kd, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(kd, "sa.key"),
		"--token-auth-file=" + filepath.Join(kd, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		// No controller-manager runs in the lab to create each namespace's "default" ServiceAccount,
		// which this admission plugin would require of every pod; lab pods have no service account.
		"--disable-admission-plugins=ServiceAccount",
		"--v=1",
	}
	logPath := filepath.Join(dir, "kube-apiserver.log")
	p, err := startDetached("", logPath, []string{"PATH=" + os.Getenv("PATH")}, nil, s.KubeAPIServerBin, args...)
	if err != nil {
		return err
	}
	s.APIServer = p
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kube-apiserver client: %w", err)
	}
	// Ready: /readyz answers, and the "default" namespace a built-in controller creates exists.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		if !p.Alive() {
			return fmt.Errorf("kube-apiserver exited; its log (%s):\n%s", logPath, logTail(logPath))
		}
		callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
		_, last = cs.CoreV1().Namespaces().Get(callCtx, metav1.NamespaceDefault, metav1.GetOptions{})
		if last == nil {
			last = readyz(callCtx, cs)
		}
		callCancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after 2m: %w; its log (%s):\n%s", last, logPath, logTail(logPath))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func readyz(ctx context.Context, cs *kubernetes.Clientset) error {
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w: %s", err, body)
	}
	return nil
}

// upKube starts the kube-apiserver over the lab's etcd and installs tortie's CRDs (the Helm chart's
// crds/, as `tortiectl install` applies them).
func upKube(ctx context.Context, dir string, s *State, progress func(string, ...any)) error {
	progress("kube-apiserver on %s (kubeconfig %s)", netip.AddrPortFrom(bridgeIP(s.Underlay).Addr(), kubeAPIPort), KubeconfigPath(dir))
	if err := startKubeAPI(ctx, dir, s); err != nil {
		return err
	}
	if err := s.save(dir); err != nil {
		return err
	}
	progress("tortie's CRDs")
	be, err := kube.New(kube.Config{Kubeconfig: s.Kubeconfig})
	if err != nil {
		return fmt.Errorf("kube-apiserver client: %w", err)
	}
	defer be.Close() //nolint:errcheck // nothing to flush
	crds, err := fs.Sub(helm.Chart, "tortie/crds")
	if err != nil {
		return err
	}
	if err := be.EnsureCRDs(ctx, crds); err != nil {
		return fmt.Errorf("installing tortie's CRDs: %w", err)
	}
	return nil
}

// installKubeNodes registers every node as its kubelet would, before the agents start (tortie-node
// waits for its Kubernetes Node in this datastore).
func installKubeNodes(ctx context.Context, s *State) error {
	cs, err := kubeClient(s)
	if err != nil {
		return err
	}
	for _, n := range s.liveNodes() {
		if err := createKubeNode(ctx, cs, n); err != nil {
			return err
		}
	}
	return nil
}

func kubeClient(s *State) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading the lab's kubeconfig %s: %w", s.Kubeconfig, err)
	}
	rc.QPS, rc.Burst = 100, 200
	rc.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("the lab's kube-apiserver %s: %w", s.APIServerURL, err)
	}
	return cs, nil
}

// createKubeNode registers a node as its kubelet would: the Node object with the usual labels, then
// its InternalIP through the status subresource. An existing Node (a node added back) is kept.
func createKubeNode(ctx context.Context, cs kubernetes.Interface, n *Node) error {
	kn := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
		"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}}
	created, err := cs.CoreV1().Nodes().Create(ctx, kn, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("node %s: creating the Kubernetes Node: %w", n.Name, err)
	}
	created.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: n.IP.Addr().String()},
		{Type: corev1.NodeHostName, Address: n.Name},
	}
	created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", Message: "tortie-lab stands in for the kubelet", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s: Kubernetes Node status: %w", n.Name, err)
	}
	return nil
}

// writeKubeCredentials writes the CA and serving certificate (for the bridge address), the
// service-account key pair and the token file of one admin user, and returns the CA and the token.
func writeKubeCredentials(kd string, ip netip.Addr) (caPEM []byte, token string, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tortie-lab-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{ip.AsSlice(), net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, "", err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, "", err
	}
	token = hex.EncodeToString(tok)
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"ca.crt":      caPEM,
		"serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"sa.pub":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		// token,user,uid,"groups": the admin is in system:masters.
		"tokens.csv": fmt.Appendf(nil, "%s,admin,admin,system:masters\n", token),
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(kd, name), files[name], 0o600); err != nil {
			return nil, "", err
		}
	}
	return caPEM, token, nil
}

func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["tortie-lab"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["tortie-lab"] = &clientcmdapi.Context{Cluster: "tortie-lab", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "tortie-lab"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing the lab's kubeconfig %s: %w", path, err)
	}
	return nil
}

// kubeHealthy reports whether the lab's kube-apiserver answers /readyz (for status).
func kubeHealthy(ctx context.Context, s *State) error {
	caPEM, err := os.ReadFile(filepath.Join(kubeDir(filepath.Dir(s.Kubeconfig)), "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate")
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIServerURL+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
