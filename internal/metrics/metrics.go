// Package metrics owns monohook's Prometheus metrics. Its methods are safe
// on a nil *Metrics, which records nothing, so the packages that report
// need no switch of their own.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the registry and the metrics monohook reports.
type Metrics struct {
	registry          *prometheus.Registry
	deliveries        *prometheus.CounterVec
	signatureFailures prometheus.Counter
	evaluation        prometheus.Histogram
	starts            *prometheus.CounterVec
	acknowledge       prometheus.Histogram
	commit            prometheus.Histogram
	commitSize        prometheus.Histogram
}

// New registers monohook's metrics and the Go runtime's.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "monohook_deliveries_total",
			Help: "Webhook deliveries received, by X-GitHub-Event and outcome (accepted, duplicate, ignored, bad_signature, bad_request, too_large, unsupported_media_type, unavailable).",
		}, []string{"event", "outcome"}),
		signatureFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "monohook_signature_failures_total",
			Help: "Deliveries refused because their signature was missing or wrong.",
		}),
		evaluation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "monohook_evaluation_seconds",
			Help:    "Time to match one push's changed paths against its rules.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1 µs to about 4 s
		}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "monohook_starts_total",
			Help: "Pipeline start attempts, by target and outcome (started, retrying, failed).",
		}, []string{"target", "outcome"}),
		acknowledge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "monohook_acknowledge_seconds",
			Help:    "Time from a delivery's request to its 2xx, for deliveries stored or found duplicate: mostly the wait for the commit that stores it.",
			Buckets: latencyBuckets,
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "monohook_commit_seconds",
			Help:    "Time of one commit of accepted deliveries, flush to disk included; every delivery in it waits for it before its 2xx.",
			Buckets: latencyBuckets,
		}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "monohook_commit_deliveries",
			Help:    "Deliveries per commit: the ones that arrived while the commit before was being written share one.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 to 256, the largest group
		}),
	}
	m.registry.MustRegister(m.deliveries, m.signatureFailures, m.evaluation, m.starts, m.acknowledge, m.commit, m.commitSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// latencyBuckets span an acknowledgement's range: about 100 µs for a
// commit on a fast disk, up to seconds when the disk stalls a flush.
var latencyBuckets = prometheus.ExponentialBuckets(100e-6, 2, 16) // 100 µs to about 3.3 s

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Register adds collectors that read their values when scraped (queue
// depth, rules loaded).
func (m *Metrics) Register(cs ...prometheus.Collector) {
	if m != nil {
		m.registry.MustRegister(cs...)
	}
}

// Delivery counts one delivery by event and outcome.
func (m *Metrics) Delivery(event, outcome string) {
	if m == nil {
		return
	}
	if event == "" {
		event = "none"
	}
	m.deliveries.WithLabelValues(event, outcome).Inc()
	if outcome == "bad_signature" {
		m.signatureFailures.Inc()
	}
}

// Evaluation records how long matching one push took.
func (m *Metrics) Evaluation(d time.Duration) {
	if m != nil {
		m.evaluation.Observe(d.Seconds())
	}
}

// Start counts one start attempt of target by outcome.
func (m *Metrics) Start(target, outcome string) {
	if m != nil {
		m.starts.WithLabelValues(target, outcome).Inc()
	}
}

// Acknowledged records how long a stored or duplicate delivery waited for
// its answer.
func (m *Metrics) Acknowledged(d time.Duration) {
	if m != nil {
		m.acknowledge.Observe(d.Seconds())
	}
}

// Commit records one commit of n accepted deliveries that took d.
func (m *Metrics) Commit(n int, d time.Duration) {
	if m != nil {
		m.commit.Observe(d.Seconds())
		m.commitSize.Observe(float64(n))
	}
}
