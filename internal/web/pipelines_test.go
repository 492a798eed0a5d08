package web

import (
	"context"
	"database/sql"
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// hostile is a command name, and so (exec:…) a pipeline name, that
// would end the page's title and run a script if it were not escaped.
const hostile = `</title><script>alert("x")</script><svg onload='y'>&amp;`

// liveUI is the dashboard over a started SQLite queue whose starts go to
// real targets: an http endpoint answering 201 ("ok"), one answering 404
// ("refused"), a CodePipeline (the fake) whose execution runs on and is
// followed ("api"), and a command that does not exist (hostile).
type liveUI struct {
	srv          *httptest.Server
	q            *deliveries.Queue
	dsn          string // sqlite://FILE or postgres://…
	ok, refused  string // the pipeline names of the http targets
	okURL        string
	fakePipeline *fakeaws.CodePipeline
}

func newLiveUI(t *testing.T) *liveUI {
	t.Helper()
	return newLiveUIOn(t, "sqlite://"+filepath.Join(t.TempDir(), "monohook.db"))
}

// newLiveUIOn is newLiveUI over the database at dsn.
func newLiveUIOn(t *testing.T, dsn string) *liveUI {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	l := &liveUI{dsn: dsn}
	okSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/builds/7")
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(okSrv.Close)
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such job", http.StatusNotFound)
	}))
	t.Cleanup(refused.Close)
	l.ok, l.refused, l.okURL = "http:"+okSrv.URL+"/build", "http:"+refused.URL+"/build", okSrv.URL+"/builds/7"
	l.fakePipeline = fakeaws.NewCodePipeline()
	t.Cleanup(l.fakePipeline.Close)
	l.fakePipeline.Setenv(t)
	l.fakePipeline.Script("api", fakeaws.Outcome{InProgress: 1 << 30})
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}

	st, err := rulestore.Open(ctx, "file://"+filepath.ToSlash(t.TempDir())+"?metadata=skip", rulestore.DefaultPrefix, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, d := range []rulestore.Document{
		{GitHubRepo: "mono", GitHubBranch: "main", CodePipelineName: "api", ChangeMatchExpressions: "api/.*"},
		{GitHubRepo: "mono", GitHubBranch: "main", CodePipelineName: "never", ChangeMatchExpressions: "never/.*"},
		{GitHubRepo: "mono", GitHubBranch: "main", CodePipelineName: "..", ChangeMatchExpressions: "dots/.*"},
	} {
		if _, _, err := st.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"ok":      "{type: http, url: '" + okSrv.URL + "/build'}",
		"refused": "{type: http, url: '" + refused.URL + "/build'}",
		"hostile": "{type: exec, command: ['" + strings.ReplaceAll(hostile, "'", "''") + "']}",
	} {
		if _, err := st.PutV2(ctx, name, []byte("repository: org/mono\npaths: [\"api/**\"]\ntarget: "+target+"\n")); err != nil {
			t.Fatal(err)
		}
	}

	db, err := deliveries.OpenDB(ctx, l.dsn)
	if err != nil {
		t.Fatal(err)
	}
	starter := targets.Starters(targets.Config{AWS: &awsCfg, Network: netguard.Policy{AllowPrivate: true}, Exec: true})
	opts := deliveries.Options{Parse: githubhook.ParseEvent, MaxPayload: githubhook.MaxBody, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Follower: targets.Followers(targets.Config{AWS: &awsCfg}), FollowPoll: time.Millisecond, FollowPollMax: 20 * time.Millisecond}
	l.q, err = deliveries.New(db, &trigger.Service{Rules: st, Log: log}, starter, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ui := &UI{AdminToken: adminToken, Sessions: db, Deliveries: l.q, Store: st, Rules: st, Log: log, GitHubWeb: "https://github.example"}
	l.srv = httptest.NewServer(ui.Handler())
	t.Cleanup(func() {
		l.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.q.Close(ctx)
		db.Close()
	})
	return l
}

// pushAndWait accepts a push of api/x.go as delivery id and waits until
// its four starts are where they stay: the http and exec ones with their
// result, api started (and running on).
func (l *liveUI) pushAndWait(t *testing.T, id string) deliveries.Delivery {
	t.Helper()
	d := push(t, id)
	if err := l.q.Accept(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := l.q.Get(context.Background(), id)
		done := 0
		for _, s := range got.Starts {
			if s.Result != "" || (s.Pipeline == "api" && s.Status == "started") {
				done++
			}
		}
		if err == nil && done == 4 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: %+v (%v)", id, got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// svgOf is the page's chart, parsed as XML: every mark and its title.
func svgOf(t *testing.T, page string) []string {
	t.Helper()
	start, end := strings.Index(page, `<svg id="chart"`), strings.Index(page, "</svg>")
	if start < 0 || end < start {
		t.Fatalf("no chart on the page: %s", page)
	}
	type g struct {
		Class string `xml:"class,attr"`
		Title string `xml:"title"`
	}
	var svg struct {
		XMLName xml.Name `xml:"svg"`
		Marks   []g      `xml:"g"`
	}
	if err := xml.Unmarshal([]byte(page[start:end+len("</svg>")]), &svg); err != nil {
		t.Fatalf("the chart is not well-formed XML: %v\n%s", err, page[start:end])
	}
	var titles []string
	for _, m := range svg.Marks {
		if strings.HasPrefix(m.Class, "mark ") {
			titles = append(titles, m.Class+" | "+m.Title)
		}
	}
	return titles
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	page := body(t, resp, err)
	return resp.StatusCode, page
}

// TestStartsShowTheirResults: a delivery's page shows each start's
// result in a symbol and words, its duration, its execution's link and
// its GitHub check, and links each pipeline to its page.
func TestStartsShowTheirResults(t *testing.T) {
	l := newLiveUI(t)
	c, _ := login(t, l.srv)
	l.pushAndWait(t, "d1")
	// The check run is the checks part's to write; this sets one as it does.
	raw, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(l.dsn, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE monohook_start SET check_id = 4242 WHERE pipeline = ?`, l.ok); err != nil {
		t.Fatal(err)
	}

	code, page := get(t, c, l.srv.URL+"/delivery?id=d1")
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, page)
	}
	rows := map[string]string{}
	starts := page[strings.Index(page, `id="starts"`):]
	starts = starts[:strings.Index(starts, "</table>")]
	for _, row := range regexp.MustCompile(`(?s)<tr class="[a-z-]+">.*?</tr>`).FindAllString(starts, -1) {
		for _, name := range []string{l.ok, l.refused, "api", "exec:"} {
			if strings.Contains(row, `class="pipeline"><a href="`+pipelineURL(name)) || (name == "exec:" && strings.Contains(row, "exec:&lt;/title&gt;")) {
				rows[name] = row
			}
		}
	}
	for name, want := range map[string][]string{
		l.ok:      {`<span class="success">✓ success</span>`, "201 Created", `href="` + l.okURL + `"`, `href="https://github.example/org/mono/runs/4242"`},
		l.refused: {`<span class="failure">✗ failure</span>`, "404 Not Found"},
		"api":     {`<span class="running">▶ running</span>`, "running for ", "console.aws.amazon.com"},
		"exec:":   {`<span class="failure">✗ failure</span>`},
	} {
		for _, w := range want {
			if !strings.Contains(rows[name], w) {
				t.Errorf("start %s: no %q in %s", name, w, rows[name])
			}
		}
	}
	if strings.Contains(rows[l.refused], "check-link") {
		t.Errorf("a start without a check links one: %s", rows[l.refused])
	}
}

// TestPipelinePage: a pipeline's page lists its runs with the push that
// started each and charts them, one mark per run; an unknown pipeline is
// 404, a malformed name or cursor 400, a ruled one without runs empty.
func TestPipelinePage(t *testing.T) {
	eachDB(t, testPipelinePage)
}

func testPipelinePage(t *testing.T, dsn string) {
	l := newLiveUIOn(t, dsn)
	c, _ := login(t, l.srv)
	l.pushAndWait(t, "d1")
	l.pushAndWait(t, "d2")

	code, page := get(t, c, l.srv.URL+pipelineURL(l.refused))
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, page)
	}
	marks := svgOf(t, page)
	if len(marks) != 2 {
		t.Fatalf("%d marks, want one per run: %q", len(marks), marks)
	}
	for i, id := range []string{"d1", "d2"} { // oldest on the left
		if !strings.HasPrefix(marks[i], "mark failure | ") || !strings.Contains(marks[i], "✗ failure") || !strings.Contains(marks[i], "delivery "+id) {
			t.Errorf("mark %d: %q", i, marks[i])
		}
	}
	for _, want := range []string{`href="/delivery?id=d2"`, "404 Not Found", "<code>abcdef0</code>", "main", "mono", `id="legend"`} {
		if !strings.Contains(page, want) {
			t.Errorf("pipeline page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<tr class="run failure">`); n != 2 {
		t.Errorf("%d rows of runs, want 2", n)
	}
	// The running start is a bar that grows; its runs table says so.
	_, page = get(t, c, l.srv.URL+"/pipelines/api")
	if marks := svgOf(t, page); len(marks) != 2 || !strings.HasPrefix(marks[0], "mark running | ") || !strings.Contains(page, "running for ") {
		t.Errorf("api's marks %q", marks)
	}

	for path, want := range map[string]int{
		"/pipelines/no-such-pipeline":                        http.StatusNotFound,
		"/pipelines/never":                                   http.StatusOK,
		"/pipelines/" + strings.Repeat("a", 3000):            http.StatusBadRequest,
		"/pipelines/%ff%fe":                                  http.StatusBadRequest,
		"/pipelines/a%00b":                                   http.StatusBadRequest,
		"/pipelines/api?before=nonsense":                     http.StatusBadRequest,
		"/pipelines/api?before=" + url.QueryEscape("1:x:d1"): http.StatusBadRequest,
		"/pipelines?name=..":                                 http.StatusOK, // a valid CodePipeline name, a step up in a path
		"/pipelines/":                                        http.StatusSeeOther,
		"/pipelines?name=":                                   http.StatusBadRequest,
		"/pipelines?name=.":                                  http.StatusNotFound,
	} {
		code, page := get(t, c, l.srv.URL+path)
		if code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
		if path == "/pipelines/never" && (!strings.Contains(page, `id="no-runs"`) || strings.Contains(page, `<svg id="chart"`)) {
			t.Errorf("a ruled pipeline without runs: %s", page)
		}
	}

	// The index: every pipeline, with its runs and latest result.
	code, page = get(t, c, l.srv.URL+"/pipelines")
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, page)
	}
	for _, want := range []string{
		`<a href="` + pipelineURL(l.ok) + `">` + l.ok + `</a>`, `<span class="success">✓ success</span>`,
		`<a href="/pipelines/never">never</a>`, "never run", `<a href="/pipelines/api">api</a>`, `<a href="/pipelines?name=..">..</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the index lacks %q", want)
		}
	}
}

// TestHostilePipelineName: a pipeline name is text from a rule (an exec
// target's command, an http target's URL): on every page it is escaped,
// in the HTML, the chart and its links.
func TestHostilePipelineName(t *testing.T) {
	l := newLiveUI(t)
	c, _ := login(t, l.srv)
	l.pushAndWait(t, "d1")
	name := "exec:" + hostile
	for _, path := range []string{pipelineURL(name), "/pipelines", "/delivery?id=d1"} {
		code, page := get(t, c, l.srv.URL+path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, page)
		}
		if strings.Contains(page, "<script>") || strings.Contains(page, "onload='") || strings.Contains(page, "</title><script") {
			t.Errorf("GET %s: the name is not escaped: %s", path, page)
		}
		if !strings.Contains(page, "exec:&lt;/title&gt;&lt;script&gt;alert(&#34;x&#34;)") {
			t.Errorf("GET %s: the name is not shown", path)
		}
	}
	_, page := get(t, c, l.srv.URL+pipelineURL(name))
	if marks := svgOf(t, page); len(marks) != 1 || !strings.Contains(page, `<code id="pipeline-name">exec:&lt;/title&gt;`) {
		t.Errorf("marks %q", marks)
	}
}

// The chart's scale: linear while the runs are of one order, logarithmic
// when they span several, so a short run beside a long one still shows.
func TestChartScale(t *testing.T) {
	now := time.Now()
	run := func(d time.Duration) deliveries.Run {
		start := now.Add(-time.Hour)
		end := start.Add(d)
		return deliveries.Run{Start: deliveries.Start{Status: "started", Result: trigger.Success, Updated: start, Finished: &end}, DeliveryID: "d"}
	}
	c := newChart([]deliveries.Run{run(20 * time.Second), run(40 * time.Second)}, now)
	if c.Log || c.Marks[0].H != plotH || c.Marks[1].H != plotH/2 {
		t.Errorf("linear: log %v, heights %v %v", c.Log, c.Marks[0].H, c.Marks[1].H)
	}
	c = newChart([]deliveries.Run{run(2 * time.Hour), run(time.Second)}, now)
	if !c.Log || c.Marks[0].H != minBarH || c.Marks[1].H != plotH || len(c.Ticks) < 3 {
		t.Errorf("log: log %v, heights %v %v, ticks %v", c.Log, c.Marks[0].H, c.Marks[1].H, c.Ticks)
	}
	if c := newChart(nil, now); len(c.Marks) != 0 {
		t.Errorf("marks without runs: %v", c.Marks)
	}
}

func TestGitHubWebRoot(t *testing.T) {
	for api, want := range map[string]string{
		"https://api.github.com/":          "https://github.com",
		"https://api.github.com":           "https://github.com",
		"https://api.octo.ghe.com/":        "https://octo.ghe.com",
		"https://ghe.example.com/api/v3/":  "https://ghe.example.com",
		"https://ghe.example.com/api/v3":   "https://ghe.example.com",
		"http://127.0.0.1:9999/":           "",
		"https://proxy.example/github-api": "",
		"not a url":                        "",
	} {
		if got := GitHubWebRoot(api); got != want {
			t.Errorf("GitHubWebRoot(%q) = %q, want %q", api, got, want)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", maxShownError) // 2 bytes each
	if got := clip(long); len(got) > maxShownError+len("…") || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("clip: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if clip("short") != "short" {
		t.Error("a short error was cut")
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850 ms", 1980 * time.Millisecond: "2.0 s", 42 * time.Second: "42 s",
		200 * time.Second: "3 min 20 s", 10 * time.Minute: "10 min", 2 * time.Hour: "2 h", 125 * time.Minute: "2 h 5 min", 76 * time.Hour: "3 d 4 h",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
