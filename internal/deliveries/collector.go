package deliveries

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the deliveries waiting to be evaluated and the jobs
// waiting (available, scheduled or retrying), with the age of the oldest
// of each, read from the database when scraped, so every replica reports
// the shared queue.
func (q *Queue) Collector() prometheus.Collector { return depthCollector{q} }

var (
	depthDesc   = prometheus.NewDesc("monohook_queue_jobs_waiting", "Jobs (evaluations and pipeline starts) waiting to run.", nil, nil)
	oldestDesc  = prometheus.NewDesc("monohook_queue_oldest_job_age_seconds", "Age of the oldest waiting job; 0 when none waits.", nil, nil)
	waitingDesc = prometheus.NewDesc("monohook_deliveries_waiting", "Deliveries stored and not evaluated yet (including those whose evaluation is retried).", nil, nil)
	waitedDesc  = prometheus.NewDesc("monohook_deliveries_oldest_waiting_seconds", "How long the oldest delivery not evaluated yet has waited; 0 when none waits.", nil, nil)
)

type depthCollector struct{ q *Queue }

func (c depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- oldestDesc
	ch <- waitingDesc
	ch <- waitedDesc
}

func (c depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	var age float64
	if err := c.q.db.read.QueryRowContext(ctx, c.q.db.dialect.waitingJobs()).Scan(&n, &age); err != nil {
		c.q.log.Warn("metrics: could not read the queue depth", "err", err)
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, max(age, 0))

	var oldest sql.NullInt64
	if err := c.q.db.read.QueryRowContext(ctx, `SELECT count(*), min(received_at) FROM monohook_delivery WHERE status IN ('received', 'retrying')`).Scan(&n, &oldest); err != nil {
		c.q.log.Warn("metrics: could not count the waiting deliveries", "err", err)
		ch <- prometheus.NewInvalidMetric(waitingDesc, err)
		return
	}
	waited := 0.0
	if oldest.Valid {
		waited = max(time.Since(time.UnixMilli(oldest.Int64)).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(waitedDesc, prometheus.GaugeValue, waited)
}
