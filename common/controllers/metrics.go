package controllers

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tortie-net/tortie/common/ipam"
)

// Metrics are the controllers' Prometheus metrics, on a private registry (kube-controllers' names with
// tortie's prefix).
type Metrics struct {
	Registry *prometheus.Registry

	allocationsInUse prometheus.Gauge
	blocks           prometheus.Gauge
	leaked           prometheus.Gauge
	releasedAddrs    prometheus.Counter
	releasedAffs     prometheus.Counter
	isLeader         prometheus.Gauge
}

// NewMetrics registers the metrics on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		allocationsInUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tortie_ipam_allocations_in_use",
			Help: "IPAM allocations that a live pod, endpoint or node uses, at the last garbage-collection round."}),
		blocks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tortie_ipam_blocks", Help: "IPAM blocks, at the last garbage-collection round."}),
		leaked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tortie_ipam_allocations_leaked",
			Help: "IPAM allocations without an owner older than the grace period, at the last round (released once confirmed a grace period later)."}),
		releasedAddrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tortie_ipam_gc_released_addresses_total",
			Help: "Addresses released by the IPAM garbage collector and the node controller."}),
		releasedAffs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tortie_ipam_gc_released_affinities_total",
			Help: "Block affinities released by the IPAM garbage collector and the node controller."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tortie_controllers_is_leader", Help: "1 while this replica holds the leader lease."}),
	}
	m.Registry.MustRegister(m.allocationsInUse, m.blocks, m.leaked, m.releasedAddrs, m.releasedAffs, m.isLeader)
	return m
}

func (m *Metrics) observe(r ipam.Report) {
	if m == nil {
		return
	}
	m.allocationsInUse.Set(float64(r.Summary.InUse))
	m.blocks.Set(float64(r.Summary.Blocks))
	m.leaked.Set(float64(r.Summary.Leaked))
}

func (m *Metrics) released(s ipam.ReleaseSummary) {
	if m == nil {
		return
	}
	m.releasedAddrs.Add(float64(s.Released))
	m.releasedAffs.Add(float64(s.AffinitiesReleased))
}

func (m *Metrics) leader(is bool) {
	if m == nil {
		return
	}
	if is {
		m.isLeader.Set(1)
	} else {
		m.isLeader.Set(0)
	}
}
