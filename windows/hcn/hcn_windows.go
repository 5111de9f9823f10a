//go:build windows

package hcn

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/Microsoft/hcsshim"
	"github.com/Microsoft/hcsshim/hcn"
)

// New returns the HNS API of this host: hcsshim's hcn package. Every call goes to computenetwork.dll;
// where the DLL or a procedure is missing (old Windows, wine) the call returns an error rather than
// panicking. Contexts are not passed on: HNS calls cannot be cancelled.
func New() API { return real{} }

// NewContainerAPI returns the Docker flow's calls: hcsshim's HotAttachEndpoint and HotDetachEndpoint
// (HCS modifies the running container; HNS v1 endpoint lookups).
func NewContainerAPI() ContainerAPI { return real{} }

type real struct{}

// convert moves a value between tortie's mirror types and hcsshim's through their shared JSON form.
func convert[T any](in any) (T, error) {
	var out T
	b, err := json.Marshal(in)
	if err != nil {
		return out, err
	}
	err = json.Unmarshal(b, &out)
	return out, err
}

// hnsErr wraps err from call on object, mapping hcn's not-found errors to ErrNotFound.
func hnsErr(call, object string, err error) error {
	if err == nil {
		return nil
	}
	if hcn.IsNotFoundError(err) || hcn.IsElementNotFoundError(err) {
		return fmt.Errorf("HNS %s %s: %w: %w", call, object, ErrNotFound, err)
	}
	return fmt.Errorf("HNS %s %s: %w", call, object, err)
}

func (real) Version(context.Context) (Version, error) {
	g, err := hcn.GetGlobals()
	if err != nil {
		return Version{}, hnsErr("GetGlobals", "", err)
	}
	return Version{Major: g.Version.Major, Minor: g.Version.Minor}, nil
}

func (real) ListNetworks(context.Context) ([]Network, error) {
	ns, err := hcn.ListNetworks()
	if err != nil {
		return nil, hnsErr("ListNetworks", "", err)
	}
	return convert[[]Network](ns)
}

func (real) GetNetworkByName(_ context.Context, name string) (*Network, error) {
	n, err := hcn.GetNetworkByName(name)
	if err != nil {
		return nil, hnsErr("GetNetworkByName", name, err)
	}
	return convert[*Network](n)
}

func (real) CreateNetwork(_ context.Context, n *Network) (*Network, error) {
	hn, err := convert[*hcn.HostComputeNetwork](n)
	if err != nil {
		return nil, fmt.Errorf("converting network %s: %w", n.Name, err)
	}
	hn.SchemaVersion = hcn.V2SchemaVersion()
	created, err := hn.Create()
	if err != nil {
		return nil, hnsErr("CreateNetwork", n.Name, err)
	}
	return convert[*Network](created)
}

func (real) DeleteNetwork(_ context.Context, id string) error {
	return hnsErr("DeleteNetwork", id, (&hcn.HostComputeNetwork{Id: id}).Delete())
}

func (real) ModifyNetworkPolicies(_ context.Context, networkID string, rt RequestType, ps []NetworkPolicy) error {
	settings, err := json.Marshal(struct{ Policies []NetworkPolicy }{ps})
	if err != nil {
		return err
	}
	req := &hcn.ModifyNetworkSettingRequest{
		ResourceType: hcn.NetworkResourceTypePolicy,
		RequestType:  hcn.RequestType(rt),
		Settings:     settings,
	}
	return hnsErr("ModifyNetworkSettings "+string(rt), networkID, (&hcn.HostComputeNetwork{Id: networkID}).ModifyNetworkSettings(req))
}

func (real) ListEndpoints(context.Context) ([]Endpoint, error) {
	es, err := hcn.ListEndpoints()
	if err != nil {
		return nil, hnsErr("ListEndpoints", "", err)
	}
	return convert[[]Endpoint](es)
}

func (real) GetEndpointByID(_ context.Context, id string) (*Endpoint, error) {
	e, err := hcn.GetEndpointByID(id)
	if err != nil {
		return nil, hnsErr("GetEndpointByID", id, err)
	}
	return convert[*Endpoint](e)
}

func (real) CreateEndpoint(_ context.Context, ep *Endpoint) (*Endpoint, error) {
	he, err := convert[*hcn.HostComputeEndpoint](ep)
	if err != nil {
		return nil, fmt.Errorf("converting endpoint %s: %w", ep.Name, err)
	}
	he.SchemaVersion = hcn.V2SchemaVersion()
	created, err := he.Create()
	if err != nil {
		return nil, hnsErr("CreateEndpoint", ep.Name, err)
	}
	return convert[*Endpoint](created)
}

func (real) DeleteEndpoint(_ context.Context, id string) error {
	return hnsErr("DeleteEndpoint", id, (&hcn.HostComputeEndpoint{Id: id}).Delete())
}

func (real) ApplyEndpointPolicy(_ context.Context, endpointID string, rt RequestType, ps []EndpointPolicy) error {
	settings, err := json.Marshal(struct{ Policies []EndpointPolicy }{ps})
	if err != nil {
		return err
	}
	req := &hcn.ModifyEndpointSettingRequest{
		ResourceType: hcn.EndpointResourceTypePolicy,
		RequestType:  hcn.RequestType(rt),
		Settings:     settings,
	}
	return hnsErr("ModifyEndpointSettings "+string(rt), endpointID, hcn.ModifyEndpointSettings(endpointID, req))
}

func (real) ListNamespaces(context.Context) ([]Namespace, error) {
	ns, err := hcn.ListNamespaces()
	if err != nil {
		return nil, hnsErr("ListNamespaces", "", err)
	}
	return convert[[]Namespace](ns)
}

func (real) CreateNamespace(_ context.Context, ns *Namespace) (*Namespace, error) {
	created, err := hcn.NewNamespace(hcn.NamespaceType(ns.Type)).Create()
	if err != nil {
		return nil, hnsErr("CreateNamespace", string(ns.Type), err)
	}
	return convert[*Namespace](created)
}

func (real) DeleteNamespace(_ context.Context, id string) error {
	return hnsErr("DeleteNamespace", id, (&hcn.HostComputeNamespace{Id: id}).Delete())
}

func (real) AddNamespaceEndpoint(_ context.Context, namespaceID, endpointID string) error {
	return hnsErr("AddNamespaceEndpoint", namespaceID+"/"+endpointID, hcn.AddNamespaceEndpoint(namespaceID, endpointID))
}

func (real) RemoveNamespaceEndpoint(_ context.Context, namespaceID, endpointID string) error {
	return hnsErr("RemoveNamespaceEndpoint", namespaceID+"/"+endpointID, hcn.RemoveNamespaceEndpoint(namespaceID, endpointID))
}

func (real) HotAttachEndpoint(_ context.Context, containerID, endpointID string) error {
	err := hcsshim.HotAttachEndpoint(containerID, endpointID)
	if err != nil && hcsshim.IsNotExist(err) {
		return fmt.Errorf("HCS HotAttachEndpoint %s/%s: %w: %w", containerID, endpointID, ErrNotFound, err)
	}
	return hnsErr("HotAttachEndpoint", containerID+"/"+endpointID, err)
}

func (real) HotDetachEndpoint(_ context.Context, containerID, endpointID string) error {
	err := hcsshim.HotDetachEndpoint(containerID, endpointID)
	if err != nil && hcsshim.IsNotExist(err) {
		return fmt.Errorf("HCS HotDetachEndpoint %s/%s: %w: %w", containerID, endpointID, ErrNotFound, err)
	}
	return hnsErr("HotDetachEndpoint", containerID+"/"+endpointID, err)
}
