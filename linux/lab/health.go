//go:build linux

package lab

import (
	"context"
	"net"
	"net/http"
	"time"
)

// nodeHTTPClient reaches a node's agent over the node's own loopback, from a socket made inside the
// node's network namespace, as a kubelet probes a host-networked agent: host endpoint policy on the
// node's eth0 (which may deny everything outside the failsafe ports) never applies to loopback, so
// `sync` and `status` keep working whatever policy a user rehearses.
func nodeHTTPClient(n *Node) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetNS(n.NetNS, func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}
