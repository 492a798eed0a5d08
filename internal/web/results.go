package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/trigger"
)

// verdict is how a start is shown: a class (colour, and in the chart a
// shape or pattern), a symbol and words, so that no reader depends on the
// colour alone.
type verdict struct {
	Class, Symbol, Text string
}

// verdicts are the results a followed start ends with, by conclusion.
var verdicts = map[string]verdict{
	trigger.Success:          {"success", "✓", "success"},
	trigger.Failure:          {"failure", "✗", "failure"},
	trigger.Cancelled:        {"cancelled", "⊘", "cancelled"},
	trigger.TimedOut:         {"timed-out", "◔", "timed out"},
	deliveries.ResultUnknown: {"unknown", "?", "result unknown"},
}

// verdictOf says how s went: its result once recorded, else what its
// status says (running, pending, a dry run, a start that failed before
// results were recorded).
func verdictOf(s deliveries.Start) verdict {
	if v, ok := verdicts[s.Result]; ok {
		return v
	}
	switch {
	case s.Result != "":
		return verdict{"unknown", "?", s.Result}
	case s.Status == "started":
		return verdict{"running", "▶", "running"}
	case s.Status == "failed":
		return verdict{"failure", "✗", "failed to start"}
	case s.Status == "dry-run":
		return verdict{"dry-run", "○", "dry run"}
	}
	return verdict{"pending", "…", s.Status}
}

// span is how long a start's execution took, or has run so far.
type span struct {
	D       time.Duration
	Running bool
	// Known: the start ran, and either ended after it started or still
	// runs. An answer that was its own result (an http target's 2xx) has
	// no duration of its own.
	Known bool
}

// spanOf is s's execution time (deliveries.Start.Ran).
func spanOf(s deliveries.Start, now time.Time) span {
	d, running, ok := s.Ran(now)
	return span{D: d, Running: running, Known: ok}
}

// String is the span in words: "3 min 20 s", "running for 12 s", "—".
func (s span) String() string {
	switch {
	case !s.Known:
		return "—"
	case s.Running:
		return "running for " + human(s.D)
	}
	return human(s.D)
}

// human is d rounded to what a person reads: "850 ms", "4.2 s", "42 s",
// "3 min 20 s", "10 min", "2 h 5 min", "3 d 4 h".
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0 s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return two(int(d.Minutes()), "min", int(d.Seconds())%60, "s")
	case d < 24*time.Hour:
		return two(int(d.Hours()), "h", int(d.Minutes())%60, "min")
	}
	return two(int(d.Hours())/24, "d", int(d.Hours())%24, "h")
}

// two is "3 min 20 s", or "3 min" without the smaller unit.
func two(n int, unit string, rest int, restUnit string) string {
	if rest == 0 {
		return fmt.Sprintf("%d %s", n, unit)
	}
	return fmt.Sprintf("%d %s %d %s", n, unit, rest, restUnit)
}

// GitHubWebRoot is the web root of the GitHub whose REST API is at
// apiURL, where check runs are seen: https://github.com for
// api.github.com, https://SUB.ghe.com for api.SUB.ghe.com, https://HOST
// for a GitHub Enterprise Server's https://HOST/api/v3. Anything else: ""
// (the dashboard then shows a check's id without a link).
func GitHubWebRoot(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	path := strings.TrimSuffix(u.Path, "/")
	switch {
	case u.Host == "api.github.com" && path == "":
		return "https://github.com"
	case strings.HasPrefix(u.Host, "api.") && strings.HasSuffix(u.Host, ".ghe.com") && path == "":
		return "https://" + strings.TrimPrefix(u.Host, "api.")
	case strings.HasSuffix(path, "/api/v3"):
		return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(path, "/api/v3")}).String()
	}
	return ""
}

// checkURL is the page of check run id of the repository owner/name on
// the GitHub at web, or "" when either is unknown.
func checkURL(web, fullName string, id int64) string {
	owner, name, ok := strings.Cut(fullName, "/")
	if web == "" || !ok || owner == "" || name == "" || id <= 0 {
		return ""
	}
	return web + "/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/runs/" + strconv.FormatInt(id, 10)
}

// maxShownError bounds a start's error on a pipeline's page: a page of
// runs repeats it for each.
const maxShownError = 1 << 10

// clip is s cut to maxShownError bytes, at a character's start, with "…"
// when it was longer.
func clip(s string) string {
	if len(s) <= maxShownError {
		return s
	}
	cut := maxShownError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
