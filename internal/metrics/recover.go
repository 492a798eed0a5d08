package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recovery is the metrics of the reconciliation with GitHub's list of
// deliveries. Its methods are safe on nil.
type Recovery struct {
	recovered   prometheus.Counter
	missing     prometheus.Counter
	runs        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// Recovery registers the reconciliation's metrics; nil on a nil m.
func (m *Metrics) Recovery() *Recovery {
	if m == nil {
		return nil
	}
	r := &Recovery{
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "monohook_recovered_deliveries_total",
			Help: "Deliveries GitHub failed to deliver that monohook fetched from GitHub's deliveries API and accepted.",
		}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "monohook_recover_missing_deliveries_total",
			Help: "Deliveries GitHub listed, of events monohook acts on, that the database did not hold when a reconciliation looked.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "monohook_reconciliations_total",
			Help: "Reconciliations with GitHub's list of deliveries, by outcome (ok, failed).",
		}, []string{"outcome"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "monohook_recover_last_success_timestamp_seconds",
			Help: "When the last reconciliation that listed the whole window ended (Unix time; 0: none yet by this process).",
		}),
	}
	r.runs.WithLabelValues("ok")
	r.runs.WithLabelValues("failed")
	m.registry.MustRegister(r.recovered, r.missing, r.runs, r.lastSuccess)
	return r
}

// Reconciled counts one reconciliation that found missing deliveries and
// recovered some of them; ok when it went through its whole window.
func (r *Recovery) Reconciled(missing, recovered int, ok bool, at time.Time) {
	if r == nil {
		return
	}
	r.missing.Add(float64(missing))
	r.recovered.Add(float64(recovered))
	if !ok {
		r.runs.WithLabelValues("failed").Inc()
		return
	}
	r.runs.WithLabelValues("ok").Inc()
	r.lastSuccess.Set(float64(at.Unix()))
}
