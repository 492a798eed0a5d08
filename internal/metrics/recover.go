package metrics

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recovery is the metrics of the reconciliation with GitHub's list of
// deliveries. Its methods are safe on nil.
type Recovery struct {
	recovered prometheus.Counter
	missing   prometheus.Counter
	runs      *prometheus.CounterVec
}

// Recovery registers the reconciliation's metrics; nil on a nil m.
// lastSuccess reads when the last complete reconciliation ended, from
// the database the replicas share, so that every replica reports it
// whichever ran it (zero: none yet).
func (m *Metrics) Recovery(lastSuccess func(context.Context) (time.Time, error)) *Recovery {
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
	}
	last := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "monohook_recover_last_success_timestamp_seconds",
		Help: "When the last reconciliation that went through its whole window ended, by any replica (Unix time; 0: none yet; NaN: the database did not answer).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		t, err := lastSuccess(ctx)
		switch {
		case err != nil:
			return math.NaN()
		case t.IsZero():
			return 0
		}
		return float64(t.UnixMilli()) / 1000
	})
	r.runs.WithLabelValues("ok")
	r.runs.WithLabelValues("failed")
	m.registry.MustRegister(r.recovered, r.missing, r.runs, last)
	return r
}

// Reconciled counts one reconciliation of this process that found missing
// deliveries and recovered some of them; ok when it went through its
// whole window.
func (r *Recovery) Reconciled(missing, recovered int, ok bool) {
	if r == nil {
		return
	}
	r.missing.Add(float64(missing))
	r.recovered.Add(float64(recovered))
	outcome := "failed"
	if ok {
		outcome = "ok"
	}
	r.runs.WithLabelValues(outcome).Inc()
}
