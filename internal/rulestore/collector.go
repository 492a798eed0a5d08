package rulestore

import "github.com/prometheus/client_golang/prometheus"

// Collector reports the rules this process has loaded for evaluation and
// the stored documents it found unusable, over every repository and branch
// a push has been evaluated for since it started, and how often it listed
// the bucket. It reads the cache, so a scrape costs no request to the
// bucket.
func (s *Store) Collector() prometheus.Collector { return rulesCollector{s} }

var (
	loadedDesc  = prometheus.NewDesc("monohook_rules_loaded", "Usable rules loaded for evaluation (repositories and branches pushed to since start).", nil, nil)
	invalidDesc = prometheus.NewDesc("monohook_rules_invalid", "Stored rule documents found unusable (bad JSON, bad expression, wrong key); they are skipped.", nil, nil)
	listsDesc   = prometheus.NewDesc("monohook_rules_lists_total", "Lists of the rule store (each one request or more on S3) since start.", nil, nil)
)

type rulesCollector struct{ s *Store }

func (c rulesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- loadedDesc
	ch <- invalidDesc
	ch <- listsDesc
}

func (c rulesCollector) Collect(ch chan<- prometheus.Metric) {
	loaded, invalid := c.s.Loaded()
	ch <- prometheus.MustNewConstMetric(loadedDesc, prometheus.GaugeValue, float64(loaded))
	ch <- prometheus.MustNewConstMetric(invalidDesc, prometheus.GaugeValue, float64(invalid))
	ch <- prometheus.MustNewConstMetric(listsDesc, prometheus.CounterValue, float64(c.s.Lists()))
}

// Lists counts the lists of the bucket since Open (see Collector).
func (s *Store) Lists() int64 { return s.lists.Load() }

// Loaded counts the cached rules and problems (see Collector).
func (s *Store) Loaded() (rules, invalid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cs := range s.sets {
		rules += len(cs.set.Rules)
		invalid += len(cs.set.Problems)
	}
	if s.v2 != nil {
		rules += len(s.v2.set.Rules)
		invalid += len(s.v2.set.Problems)
	}
	return rules, invalid
}
