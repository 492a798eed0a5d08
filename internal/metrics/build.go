package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo reports monohook_build_info, always 1, labelled with what the
// binary says of itself (`monohook version`), so a dashboard can tell which
// build each replica runs.
func (m *Metrics) BuildInfo(version, commit, built string) {
	m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "monohook_build_info",
		Help:        "The running build: version, commit and build time (as monohook version prints them) and the Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "built": built, "goversion": runtime.Version()},
	}, func() float64 { return 1 }))
}
