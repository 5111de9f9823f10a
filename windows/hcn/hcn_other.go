//go:build !windows

package hcn

import "context"

// New returns the HNS API of this host. Off Windows there is none: every call returns ErrUnsupported
// (tests use windows/hcnfake).
func New() API { return unsupported{} }

// NewContainerAPI returns the Docker flow's calls of this host; off Windows every call returns
// ErrUnsupported.
func NewContainerAPI() ContainerAPI { return unsupported{} }

type unsupported struct{}

func (unsupported) Version(context.Context) (Version, error)        { return Version{}, ErrUnsupported }
func (unsupported) ListNetworks(context.Context) ([]Network, error) { return nil, ErrUnsupported }
func (unsupported) GetNetworkByName(context.Context, string) (*Network, error) {
	return nil, ErrUnsupported
}
func (unsupported) CreateNetwork(context.Context, *Network) (*Network, error) {
	return nil, ErrUnsupported
}
func (unsupported) DeleteNetwork(context.Context, string) error { return ErrUnsupported }
func (unsupported) ModifyNetworkPolicies(context.Context, string, RequestType, []NetworkPolicy) error {
	return ErrUnsupported
}
func (unsupported) ListEndpoints(context.Context) ([]Endpoint, error) { return nil, ErrUnsupported }
func (unsupported) GetEndpointByID(context.Context, string) (*Endpoint, error) {
	return nil, ErrUnsupported
}
func (unsupported) CreateEndpoint(context.Context, *Endpoint) (*Endpoint, error) {
	return nil, ErrUnsupported
}
func (unsupported) DeleteEndpoint(context.Context, string) error { return ErrUnsupported }
func (unsupported) ApplyEndpointPolicy(context.Context, string, RequestType, []EndpointPolicy) error {
	return ErrUnsupported
}
func (unsupported) ListNamespaces(context.Context) ([]Namespace, error) { return nil, ErrUnsupported }
func (unsupported) CreateNamespace(context.Context, *Namespace) (*Namespace, error) {
	return nil, ErrUnsupported
}
func (unsupported) DeleteNamespace(context.Context, string) error { return ErrUnsupported }
func (unsupported) AddNamespaceEndpoint(context.Context, string, string) error {
	return ErrUnsupported
}
func (unsupported) RemoveNamespaceEndpoint(context.Context, string, string) error {
	return ErrUnsupported
}
func (unsupported) HotAttachEndpoint(context.Context, string, string) error { return ErrUnsupported }
func (unsupported) HotDetachEndpoint(context.Context, string, string) error { return ErrUnsupported }
