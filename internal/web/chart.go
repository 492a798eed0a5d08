package web

import (
	"math"
	"slices"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
)

// The chart's drawing area, in the SVG's own units (it scales to the
// page's width): the plot, with room for the duration labels on the left
// and the times below.
const (
	chartW, chartH         = 800, 200
	plotLeft, plotRight    = 72, 792
	plotTop, plotBottom    = 12, 172
	maxBarW                = 24
	minBarH                = 2.0
	logScaleFrom           = 100 // the longest run over the shortest: past it, a log scale
	dotR                   = 4.0
	tickLabelX, timeLabelY = 66, 190
	plotH                  = plotBottom - plotTop
	plotW                  = plotRight - plotLeft
)

// chart is the SVG chart of a page of runs: one mark per run, oldest on
// the left; a bar as high as the run took, or a dot on the axis for a run
// without a duration (pending, a dry run, a start that failed, an answer
// that was its result).
type chart struct {
	W, H        int
	Left, Right float64
	Top, Bottom float64
	// LabelX and TimeY place the duration and time labels.
	LabelX, TimeY float64
	Log           bool
	Ticks         []tick
	Marks         []mark
	// From and To are the times of the oldest and the newest run.
	From, To time.Time
}

type tick struct {
	Y     float64
	Label string
}

// mark is one run: a bar (X, Y, W, H) or, when Dot, a dot at (CX, CY).
type mark struct {
	verdict
	X, Y, W, H float64
	Dot        bool
	CX, CY, R  float64
	Title      string
}

// newChart draws runs (newest first, as Runs returns them) as of now.
func newChart(runs []deliveries.Run, now time.Time) chart {
	c := chart{W: chartW, H: chartH, Left: plotLeft, Right: plotRight, Top: plotTop, Bottom: plotBottom, LabelX: tickLabelX, TimeY: timeLabelY}
	if len(runs) == 0 {
		return c
	}
	ordered := slices.Clone(runs)
	slices.Reverse(ordered)
	c.From, c.To = ordered[0].Updated, ordered[len(ordered)-1].Updated
	spans := make([]span, len(ordered))
	var lo, hi time.Duration
	for i, r := range ordered {
		spans[i] = spanOf(r.Start, now)
		if d := spans[i].D; spans[i].Known && d > 0 {
			lo, hi = minPositive(lo, d), max(hi, d)
		}
	}
	height := c.scale(lo, hi)
	slot := float64(plotW) / float64(len(ordered))
	w := math.Min(slot*0.7, maxBarW)
	for i, r := range ordered {
		m := mark{verdict: verdictOf(r.Start), Title: runTitle(r, spans[i])}
		x := plotLeft + slot*float64(i) + slot/2
		if s := spans[i]; s.Known && s.D > 0 {
			h := math.Max(height(s.D), minBarH)
			m.X, m.Y, m.W, m.H = round1(x-w/2), round1(plotBottom-h), round1(w), round1(h)
		} else {
			m.Dot, m.CX, m.CY, m.R = true, round1(x), plotBottom-dotR, math.Min(dotR, round1(w/2+0.5))
		}
		c.Marks = append(c.Marks, m)
	}
	return c
}

// scale sets the chart's scale for durations from lo to hi and returns
// the height of a duration: linear, or logarithmic when hi is more than
// logScaleFrom times lo, so that a short run beside a long one still
// shows. The ticks label it.
func (c *chart) scale(lo, hi time.Duration) func(time.Duration) float64 {
	if hi <= 0 {
		return func(time.Duration) float64 { return 0 }
	}
	if float64(hi) < logScaleFrom*float64(lo) {
		for _, f := range []float64{0.5, 1} {
			c.Ticks = append(c.Ticks, tick{Y: round1(plotBottom - f*plotH), Label: human(time.Duration(f * float64(hi)))})
		}
		return func(d time.Duration) float64 { return float64(d) / float64(hi) * plotH }
	}
	c.Log = true
	// The shortest run is a bar of minBarH; each factor of ten above it
	// the same height more.
	span := math.Log10(float64(hi) / float64(lo))
	height := func(d time.Duration) float64 {
		return minBarH + math.Log10(float64(d)/float64(lo))/span*(plotH-minBarH)
	}
	for _, t := range []time.Duration{time.Second, 10 * time.Second, time.Minute, 10 * time.Minute, time.Hour, 10 * time.Hour, 24 * time.Hour} {
		if t > lo && t <= hi {
			c.Ticks = append(c.Ticks, tick{Y: round1(plotBottom - height(t)), Label: human(t)})
		}
	}
	// The longest run's own label, unless a tick is already there.
	if n := len(c.Ticks); n == 0 || c.Ticks[n-1].Y-plotTop > 20 {
		c.Ticks = append(c.Ticks, tick{Y: plotTop, Label: human(hi)})
	}
	return height
}

// runTitle is a mark's text: when, how it went, how long, which push.
func runTitle(r deliveries.Run, s span) string {
	v := verdictOf(r.Start)
	t := r.Updated.UTC().Format("2006-01-02 15:04:05Z") + " · " + v.Symbol + " " + v.Text
	if s.Known {
		t += " · " + s.String()
	}
	t += " · delivery " + r.DeliveryID
	if r.Repo != "" {
		t += " · " + r.Repo
	}
	if r.SHA != "" {
		t += " @ " + shortSHA(r.SHA)
	}
	return t
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
