// Package metrics owns monohook's Prometheus metrics. Its methods are safe
// on a nil *Metrics, which records nothing, so the packages that report
// need no switch of their own.
package metrics

import (
	"net/http"
	"slices"
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
	reports           *prometheus.CounterVec
	// Followed executions (Result).
	results      *prometheus.CounterVec
	pushToResult *prometheus.HistogramVec
}

// New registers monohook's metrics and the Go runtime's.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "monohook_deliveries_total",
			Help: "Webhook deliveries received, by event (a known X-GitHub-Event, other, none, or unverified for every request refused before its signature checked out) and outcome (accepted, duplicate, ignored, ping, bad_signature, bad_request, bad_method, too_large, unsupported_media_type, unavailable, address_refused).",
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
	m.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "monohook_pipeline_results_total",
		Help: "Pipeline results recorded, by target type and conclusion (success, failure, cancelled, timed_out, unknown).",
	}, []string{"target", "conclusion"})
	m.pushToResult = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "monohook_push_to_result_seconds",
		Help:    "Time from a delivery's arrival to the result of a pipeline it started, by target type.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 18), // 1 s to about 36 h
	}, []string{"target"})
	m.registry.MustRegister(m.results, m.pushToResult)
	// Every series a delivery can count under exists from the start, so
	// that no request creates one (and /metrics stays the same size).
	for event, outcomes := range deliverySeries() {
		for _, o := range outcomes {
			m.deliveries.WithLabelValues(event, o)
		}
	}
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "monohook_github_reports_total",
		Help: "Writes of GitHub checks, by kind (check_run, status) and outcome (created, updated, refused: GitHub answered a 4xx; rate_limited: the report job waits for the reset).",
	}, []string{"kind", "outcome"})
	m.registry.MustRegister(m.reports)
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

// Event labels of monohook_deliveries_total other than GitHub's event names.
const (
	// EventUnverified counts every request refused before its signature
	// checked out (address, method, size, body, budget, signature): its
	// headers are anyone's to make up, so none of them becomes a label.
	EventUnverified = "unverified"
	// EventOther counts verified events not in Events.
	EventOther = "other"
	// EventNone counts verified deliveries without X-GitHub-Event.
	EventNone = "none"
)

// Events are the X-GitHub-Event values counted under their own name: the
// ones monohook acts on and those an organization webhook commonly
// delivers besides (GitHub's "Webhook events and payloads"). Any other
// verified event counts as EventOther, so the label values are a fixed,
// small set.
var Events = []string{
	"push", "pull_request", "ping",
	"merge_group", "check_run", "check_suite", "status", "create", "delete",
	"workflow_run", "workflow_job", "deployment", "deployment_status", "release",
	"repository", "issues", "issue_comment", "pull_request_review", "installation", "meta",
}

// deliverySeries is every event label with the outcomes the webhook
// handler can answer it with (githubhook's outcome).
func deliverySeries() map[string][]string {
	series := map[string][]string{
		EventUnverified: {"address_refused", "bad_method", "too_large", "bad_request", "unavailable", "bad_signature"},
		EventNone:       {"bad_request"},
	}
	for _, e := range slices.Concat(Events, []string{EventOther}) {
		// The body can be malformed or of the wrong type whatever the event.
		o := []string{"bad_request", "unsupported_media_type"}
		switch e {
		case "ping":
			o = append(o, "ping")
		case "push":
			o = append(o, "accepted", "duplicate", "unavailable")
		case "pull_request", "merge_group", "check_run", "check_suite":
			o = append(o, "accepted", "duplicate", "unavailable", "ignored")
		default:
			o = append(o, "ignored")
		}
		series[e] = o
	}
	return series
}

// EventLabel is the label a verified delivery of event counts under.
func EventLabel(event string) string {
	switch {
	case event == "":
		return EventNone
	case slices.Contains(Events, event):
		return event
	}
	return EventOther
}

// Delivery counts one delivery by outcome, under its event when verified
// is set and under EventUnverified otherwise.
func (m *Metrics) Delivery(event string, verified bool, outcome string) {
	if m == nil {
		return
	}
	label := EventUnverified
	if verified {
		label = EventLabel(event)
	}
	m.deliveries.WithLabelValues(label, outcome).Inc()
	if outcome == "bad_signature" {
		m.signatureFailures.Inc()
	}
}

// BodyMemory reports the request bodies' memory budget: held reads the
// bytes reserved now, limit is the budget's size.
func (m *Metrics) BodyMemory(held func() int64, limit int64) {
	if m == nil {
		return
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "monohook_body_memory_bytes",
			Help: "Bytes of webhook request bodies held in memory now (reserved from --max-body-memory).",
		}, func() float64 { return float64(held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "monohook_body_memory_limit_bytes",
			Help: "Most bytes of webhook request bodies held in memory at once (--max-body-memory); past it, requests get 503.",
		}, func() float64 { return float64(limit) }),
	)
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

// Report counts one write of a GitHub check (kind check_run or status) by
// outcome; both label sets are fixed by the callers.
func (m *Metrics) Report(kind, outcome string) {
	if m != nil {
		m.reports.WithLabelValues(kind, outcome).Inc()
	}
}

// Result counts one pipeline's result, recorded sincePush after its
// delivery arrived. Target types and conclusions are monohook's own
// small sets, never an outsider's words.
func (m *Metrics) Result(target, conclusion string, sincePush time.Duration) {
	if m != nil {
		m.results.WithLabelValues(target, conclusion).Inc()
		m.pushToResult.WithLabelValues(target).Observe(sincePush.Seconds())
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
