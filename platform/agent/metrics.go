package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/version"
)

// metrics are the agent's Prometheus metrics, on a private registry (nothing global), all prefixed
// tortie_ (Felix's names are felix_*; the meanings follow Felix's where one exists).
type metrics struct {
	reg             *prometheus.Registry
	applyDuration   prometheus.Histogram
	applies         prometheus.Counter
	applyErrors     prometheus.Counter
	pending         prometheus.Gauge
	resyncs         prometheus.Counter
	datastoreStatus *prometheus.GaugeVec
	restartNeeded   prometheus.Gauge
	configRejected  prometheus.Counter
	calcProblems    prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tortie_dataplane_apply_duration_seconds",
			Help:    "Time taken by each dataplane Apply (felix_int_dataplane_apply_time_seconds in Felix).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		applies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tortie_dataplane_applies_total", Help: "Dataplane Applies attempted.",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tortie_dataplane_apply_errors_total", Help: "Dataplane Applies that failed (each is retried with backoff).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tortie_dataplane_pending_updates", Help: "Calculation updates waiting for the next Apply.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tortie_dataplane_resyncs_total", Help: "Periodic dataplane resyncs queued (the host is re-read and drift repaired).",
		}),
		datastoreStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tortie_datastore_status", Help: "The syncer's status: 1 for the current one, 0 for the others.",
		}, []string{"status"}),
		restartNeeded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tortie_config_restart_needed", Help: "Settings whose changed value takes effect only after a restart.",
		}),
		configRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tortie_config_rejected_total", Help: "FelixConfiguration values that did not parse (the last good value was kept).",
		}),
		calcProblems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tortie_calc_problems", Help: "Policies and profiles the calculation could not compile; the endpoints they apply to fail closed.",
		}),
	}
	v := version.Get()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tortie_build_info", Help: "Always 1; the labels describe the running binary.",
	}, []string{"version", "git_commit", "go_version", "platform"})
	build.WithLabelValues(v.Version, v.GitCommit, v.GoVersion, v.Platform).Set(1)
	reg.MustRegister(m.applyDuration, m.applies, m.applyErrors, m.pending, m.resyncs, m.datastoreStatus, m.restartNeeded,
		m.configRejected, m.calcProblems, build, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "tortie"}))
	m.setStatus(datastore.WaitForDatastore)
	return m
}

func (m *metrics) setStatus(s datastore.Status) {
	for _, st := range []datastore.Status{datastore.WaitForDatastore, datastore.ResyncInProgress, datastore.InSync} {
		v := 0.0
		if st == s {
			v = 1
		}
		m.datastoreStatus.WithLabelValues(st.String()).Set(v)
	}
}
