package testenv

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
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeAPIServerEnv names the environment variable holding the path of the
// kube-apiserver binary (built by ci/build-kube-apiserver.sh).
const KubeAPIServerEnv = "TORTIE_KUBE_APISERVER"

// kubeReadyTimeout bounds how long a start waits for /readyz.
const kubeReadyTimeout = 60 * time.Second

// KubeAPI is a real kube-apiserver backed by its own etcd process, both on
// loopback, with an admin (system:masters) bearer token and RBAC
// authorization. Its methods are safe for concurrent use.
type KubeAPI struct {
	dir        string // everything: etcd data, certs, keys, logs, kubeconfig
	host       string // https://127.0.0.1:PORT
	token      string
	caPEM      []byte // CA that signed the serving certificate
	kubeconfig string
	etcd       *Process
	apiserver  *Process
}

var sharedKube struct {
	mu  sync.Mutex
	api *KubeAPI
	err error
}

// KubeAPIServer returns a running kube-apiserver. With Main it is started
// once per test binary and shared; if a previous test left its etcd or
// apiserver stopped, they are started again here. Without Main each call
// gets a private instance, as from NewKubeAPIServer. The binary comes from
// TORTIE_KUBE_APISERVER; when that is unset the test is skipped (failed under
// TORTIE_REQUIRE_SERVICES=1).
func KubeAPIServer(t testing.TB) *KubeAPI {
	t.Helper()
	if !shared() {
		return NewKubeAPIServer(t)
	}
	sharedKube.mu.Lock()
	defer sharedKube.mu.Unlock()
	if sharedKube.api == nil && sharedKube.err == nil {
		k, err := startKubeAPI(t)
		if err != nil {
			sharedKube.err = err
		} else {
			sharedKube.api = k
			register(func() {
				k.close()
				sharedKube.mu.Lock()
				sharedKube.api, sharedKube.err = nil, nil
				sharedKube.mu.Unlock()
			})
		}
	}
	if sharedKube.err != nil {
		t.Fatalf("starting kube-apiserver: %v", sharedKube.err)
	}
	k := sharedKube.api
	if err := k.StartEtcd(); err != nil {
		t.Fatalf("restarting shared kube-apiserver's etcd: %v", err)
	}
	if err := k.StartAPIServer(); err != nil {
		t.Fatalf("restarting shared kube-apiserver: %v", err)
	}
	if err := k.WaitReady(); err != nil {
		t.Fatalf("shared kube-apiserver: %v", err)
	}
	return k
}

// NewKubeAPIServer starts a private etcd and kube-apiserver for this test,
// stopped by t.Cleanup. Use it for tests that stop and restart them, so
// tests sharing KubeAPIServer are not disturbed.
func NewKubeAPIServer(t testing.TB) *KubeAPI {
	t.Helper()
	k, err := startKubeAPI(t)
	if err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(k.close)
	return k
}

// startKubeAPI skips t when a binary is missing, and returns an error when
// something fails to start.
func startKubeAPI(t testing.TB) (*KubeAPI, error) {
	t.Helper()
	bin, reason, ok := lookBinary(KubeAPIServerEnv, "")
	if !ok {
		Unavailable(t, "kube-apiserver binary: %s (build it with ci/build-kube-apiserver.sh)", reason)
	}
	etcdBin := etcdBinary(t)
	dir, err := tempDir("kube")
	if err != nil {
		return nil, err
	}
	k := &KubeAPI{dir: dir}
	if err := k.start(bin, etcdBin); err != nil {
		k.close()
		return nil, err
	}
	return k, nil
}

func (k *KubeAPI) start(bin, etcdBin string) error {
	if err := k.writeCredentials(); err != nil {
		return err
	}
	etcd, err := startEtcdProcess(etcdBin, k.dir)
	if err != nil {
		return err
	}
	k.etcd = etcd
	var errs []error
	for attempt := range startAttempts {
		port, err := freePort()
		if err != nil {
			return err
		}
		k.host = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		k.apiserver = k.newAPIServerProcess(bin, port, attempt)
		err = k.apiserver.Start()
		if err == nil {
			return k.writeKubeconfig()
		}
		errs = append(errs, err)
		if !portTaken(err) {
			break
		}
	}
	return errors.Join(errs...)
}

func (k *KubeAPI) path(name string) string { return filepath.Join(k.dir, name) }

func (k *KubeAPI) newAPIServerProcess(bin string, port, attempt int) *Process {
	args := []string{
		"--etcd-servers=" + k.etcd.Endpoints()[0],
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + k.path("certs"),
		"--tls-cert-file=" + k.path("certs/serving.crt"),
		"--tls-private-key-file=" + k.path("certs/serving.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + k.path("sa.pub"),
		"--service-account-signing-key-file=" + k.path("sa.key"),
		"--token-auth-file=" + k.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/12",
		// tortie's DaemonSets are privileged; manifests must be accepted.
		"--allow-privileged=true",
		"--v=1",
	}
	return &Process{
		name:         "kube-apiserver",
		path:         bin,
		args:         args,
		logPath:      k.path(fmt.Sprintf("kube-apiserver%d.log", attempt)),
		endpoints:    []string{k.host},
		ready:        k.ready,
		readyTimeout: kubeReadyTimeout,
	}
}

// ready reports whether /readyz answers ok and the "default" namespace,
// which a controller creates shortly after start, exists.
func (k *KubeAPI) ready(ctx context.Context) error {
	client, err := k.httpClient()
	if err != nil {
		return err
	}
	for _, p := range []string{"/readyz", "/api/v1/namespaces/default"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.host+p, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+k.token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", p, resp.Status, body)
		}
	}
	return nil
}

func (k *KubeAPI) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(k.caPEM) {
		return nil, errors.New("no CA certificate")
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DisableKeepAlives: true,
	}}, nil
}

// Host returns the API server's URL, https://127.0.0.1:PORT.
func (k *KubeAPI) Host() string { return k.host }

// Token returns the admin bearer token (group system:masters).
func (k *KubeAPI) Token() string { return k.token }

// CAData returns the PEM CA certificate that verifies the serving
// certificate (valid for 127.0.0.1 and localhost).
func (k *KubeAPI) CAData() []byte { return append([]byte(nil), k.caPEM...) }

// RestConfig returns a new admin client configuration: bearer token, TLS
// verified against the test CA, client-side rate limits high enough not to
// slow tests down, and no overall request timeout (watches run long; bound
// calls with a context instead).
func (k *KubeAPI) RestConfig() *rest.Config {
	return &rest.Config{
		Host:            k.host,
		BearerToken:     k.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: k.CAData()},
		QPS:             200,
		Burst:           400,
		// No Timeout: it would also cut long-running watches.
	}
}

// Kubeconfig returns the path of a kubeconfig file for the admin user, for
// client-go's loaders and for tools run with KUBECONFIG (tortiectl).
func (k *KubeAPI) Kubeconfig() string { return k.kubeconfig }

// Etcd returns the etcd process backing the API server.
func (k *KubeAPI) Etcd() *Process { return k.etcd }

// APIServer returns the kube-apiserver process, e.g. for its log.
func (k *KubeAPI) APIServer() *Process { return k.apiserver }

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL) and waits for it
// to exit. Watches from clients break.
func (k *KubeAPI) StopAPIServer() error { return k.apiserver.Stop() }

// StartAPIServer starts kube-apiserver again, on the same port with the same
// certificates, keys and etcd, and waits until it is ready. No-op if running.
func (k *KubeAPI) StartAPIServer() error { return k.apiserver.Start() }

// WaitReady waits until the running API server is ready again, e.g. after
// StartEtcd (bounded: 60 s).
func (k *KubeAPI) WaitReady() error { return k.apiserver.WaitReady() }

// StopEtcd stops the API server's etcd. The API server stays up but fails
// requests that need storage until StartEtcd.
func (k *KubeAPI) StopEtcd() error { return k.etcd.Stop() }

// StartEtcd starts the API server's etcd again with the same data and ports.
// No-op if running.
func (k *KubeAPI) StartEtcd() error { return k.etcd.Start() }

// close stops both processes and removes every file. Errors are ignored:
// it runs at teardown, when there is no one left to tell.
func (k *KubeAPI) close() {
	if k.apiserver != nil {
		_ = k.apiserver.Stop()
	}
	if k.etcd != nil {
		_ = k.etcd.Stop()
	}
	_ = os.RemoveAll(k.dir)
}

// writeCredentials writes a CA and serving certificate, the service-account
// key pair and the token file.
func (k *KubeAPI) writeCredentials() error {
	if err := os.MkdirAll(k.path("certs"), 0o700); err != nil {
		return err
	}
	caPEM, servingPEM, servingKeyPEM, err := servingCerts()
	if err != nil {
		return fmt.Errorf("generating serving certificate: %w", err)
	}
	k.caPEM = caPEM
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating service-account key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	k.token = hex.EncodeToString(tok)

	files := map[string][]byte{
		"certs/ca.crt":      caPEM,
		"certs/serving.crt": servingPEM,
		"certs/serving.key": servingKeyPEM,
		"sa.key":            pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"sa.pub":            pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		// token,user,uid,"group1,group2"
		"tokens.csv": fmt.Appendf(nil, "%s,admin,admin,system:masters\n", k.token),
	}
	for name, data := range files {
		if err := os.WriteFile(k.path(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (k *KubeAPI) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testenv"] = &clientcmdapi.Cluster{Server: k.host, CertificateAuthorityData: k.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: k.token}
	cfg.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "testenv"
	k.kubeconfig = k.path("kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, k.kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// servingCerts makes a throwaway CA and a serving certificate it signs, for
// 127.0.0.1, ::1, localhost and the in-cluster kubernetes service names.
func servingCerts() (caPEM, certPEM, keyPEM []byte, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tortie-testenv-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 96, 0, 1)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		nil
}
