package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/httpserver"
	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
	"github.com/monohook/monohook/internal/web"
)

type serveConfig struct {
	store         storeFlags
	secret        secretFlags
	log           logFlags
	listen        string
	requireSHA256 bool
	dryRun        bool
	db            dbFlags
	queue         deliveries.Options
	shutdown      time.Duration
	adminToken    string
	adminFile     string
	targets       targetFlags
	bodyMemory    int64
	allowCIDR     string
	recover       recoverFlags
	recoverEvery  time.Duration
	githubReport  string
	reporters     int
}

func newServe() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive GitHub webhooks and start the pipelines whose paths changed",
		Long: `serve listens for GitHub webhook deliveries on POST /ghorg/push and POST /webhook,
verifies their signatures, and for every push starts the pipelines whose rules
match the changed paths. GET /healthz and GET /readyz report liveness and
readiness, GET /metrics serves Prometheus metrics (no login: keep the port
private), and with an admin token (MONOHOOK_ADMIN_TOKEN or --admin-token-file)
the dashboard at / lists deliveries, pipelines and rules and replays deliveries.

With no flags it needs nothing installed: rules live in ./monohook-data and a
webhook secret is generated there on first start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), c) },
	}
	f := cmd.Flags()
	f.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	c.store.register(f)
	c.secret.register(f)
	f.BoolVar(&c.requireSHA256, "require-sha256", false, "accept only X-Hub-Signature-256 (HMAC-SHA256), never the sha1 X-Hub-Signature")
	f.BoolVar(&c.dryRun, "dry-run", false, "evaluate and log every decision but start no pipeline (needs no AWS credentials)")
	c.db.register(f)
	f.IntVar(&c.queue.Evaluators, "evaluators", 2, "evaluation jobs run at once by this process, each working through waiting deliveries in batches (more evaluate faster during a burst and acknowledge slower; 1 favours acknowledgements)")
	f.IntVar(&c.queue.Workers, "workers", 16, "pipeline starts in flight at once from this process")
	f.IntVar(&c.queue.MaxAttempts, "start-attempts", 10, "attempts of one pipeline start (throttling, 5xx, network errors) before it is marked failed")
	f.DurationVar(&c.queue.RetryBase, "retry-base", time.Second, "delay before the first retry of a start; it doubles each attempt, with jitter")
	f.DurationVar(&c.queue.RetryMax, "retry-max", 5*time.Minute, "longest delay between retries")
	f.DurationVar(&c.queue.JobTimeout, "job-timeout", time.Minute, "longest an evaluation or a start may run; a job left running by a process that died runs again after 1.5 times this")
	f.DurationVar(&c.queue.Retention, "retention", 30*24*time.Hour, "how long deliveries and their starts are kept")
	registerFollow(f, &c.queue)
	f.DurationVar(&c.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long running jobs may take before they are cancelled (they run again after a restart)")
	f.StringVar(&c.adminToken, "admin-token", "", "token that logs in to the dashboard at / (off without one; prefer the environment variable or --admin-token-file to a flag)")
	f.StringVar(&c.adminFile, "admin-token-file", "", "file holding the dashboard's admin token")
	c.targets.register(f)
	c.log.register(f, "info")
	f.Int64Var(&c.bodyMemory, "max-body-memory", githubhook.DefaultBodyMemory>>20, "MiB of webhook request bodies held in memory at once, before and after their signature is checked; past it a request gets 503 with Retry-After (at least 50: a body growing as it arrives holds up to twice its size for a moment)")
	f.StringVar(&c.githubReport, "github-report", "", "what GitHub is told of every delivery's decisions and starts: checks (check runs; needs a GitHub App), statuses (commit statuses), or none; default checks with a GitHub App, statuses with a token, none without GitHub credentials or with --dry-run")
	f.IntVar(&c.reporters, "reporters", 4, "report jobs (GitHub check and status writes) run at once by this process")
	f.StringVar(&c.allowCIDR, "webhook-allow-cidr", "", "comma-separated networks (CIDR) whose connections may post webhooks, others get 403; empty lets every address through (behind a load balancer, filter there instead)")
	c.recover.register(f)
	f.DurationVar(&c.recoverEvery, "recover-every", 5*time.Minute, "how often the webhook's deliveries are reconciled with GitHub's list of them (and once at start), recovering those GitHub failed to deliver; needs --github-org or --github-app-hook")
	return cmd
}

func serve(ctx context.Context, c serveConfig) error {
	log, err := c.log.logger(os.Stderr)
	if err != nil {
		return err
	}
	if c.bodyMemory < 2*githubhook.MaxBody>>20 || c.bodyMemory > math.MaxInt64>>20 {
		return fmt.Errorf("--max-body-memory %d: must be at least %d (MiB), twice GitHub's largest body", c.bodyMemory, 2*githubhook.MaxBody>>20)
	}
	if os.Getenv("GOGC") == "" {
		// Deliveries make much short-lived garbage while the live heap stays
		// small; collecting at 5x the live heap instead of 2x costs little
		// memory and a lot less CPU under bursts. GOGC overrides it.
		debug.SetGCPercent(400)
	}
	if err := checkFollow(c.queue); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := &server{c: c, log: log}
	err = s.open(ctx)
	if err == nil {
		err = s.run(ctx, stop)
	}
	// Closed within --shutdown-timeout of the end of run (or of a failed
	// open): running jobs may finish in that time.
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdown)
	defer cancel()
	closeErr := s.close(sctx)
	switch {
	case err != nil:
		return err
	case closeErr != nil:
		return closeErr
	}
	log.Info("stopped")
	return nil
}

// server is what serve has open. open opens it part by part, each part
// registering how it is closed; close closes them in the reverse order, so
// that nothing is closed while a part opened after it still uses it.
type server struct {
	c      serveConfig
	log    *slog.Logger
	closes []func(context.Context) error

	store      *rulestore.Store
	storeWhere string
	secretFrom string
	verifier   *githubhook.Verifier
	github     *githubapi.Client
	reportMode string
	svc        *trigger.Service
	follower   trigger.Follower // nil in a dry run
	db         *deliveries.DB
	queue      *deliveries.Queue
	metrics    *metrics.Metrics
	adminToken string
	listener   net.Listener
	http       *http.Server
	// reconciler recovers missed deliveries (nil: off, for recoverOff).
	reconciler *deliveries.Reconciler
	recoverOff string
	hook       githubapi.Hook
}

// onClose registers how the part just opened is closed.
func (s *server) onClose(f func(context.Context) error) { s.closes = append(s.closes, f) }

// close closes what is open, the last opened first; the first error is
// returned after every part was closed.
func (s *server) close(ctx context.Context) error {
	var first error
	for i := len(s.closes) - 1; i >= 0; i-- {
		if err := s.closes[i](ctx); err != nil && first == nil {
			first = err
		}
	}
	s.closes = nil
	return first
}

// open opens, in order: the rule store and the webhook secrets, the
// targets, the database and its queue, and the HTTP listener.
func (s *server) open(ctx context.Context) error {
	allowFrom, err := netguard.ParsePrefixes(s.c.allowCIDR)
	if err != nil {
		return fmt.Errorf("--webhook-allow-cidr: %w", err)
	}
	// The data directory holds the secret and the deliveries (payloads of
	// private repositories): create it for this user only. An existing one
	// keeps its mode.
	if err := os.MkdirAll(s.c.store.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	for _, step := range []func(context.Context) error{s.openRules, s.openStarter, s.openQueue, s.openRecover} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return s.openHTTP(ctx, allowFrom)
}

func (s *server) openRules(ctx context.Context) error {
	st, where, err := s.c.store.open(ctx, s.log)
	if err != nil {
		return err
	}
	s.store, s.storeWhere = st, where
	s.onClose(func(context.Context) error { st.Close(); return nil })
	secrets, from, err := s.c.secret.resolve(s.c.store.dataDir, true)
	if err != nil {
		return err
	}
	s.secretFrom = from
	s.verifier, err = githubhook.NewVerifier(secrets, s.c.requireSHA256)
	return err
}

// openStarter sets up the evaluation: the GitHub API, when configured, and
// the targets, or in a dry run the starter that starts nothing.
func (s *server) openStarter(ctx context.Context) error {
	gh, err := s.c.targets.github()
	if err != nil {
		return err
	}
	s.github = gh
	if s.reportMode, err = reportMode(s.c.githubReport, gh, s.c.dryRun); err != nil {
		return err
	}
	if s.c.reporters < 1 {
		return fmt.Errorf("--reporters %d: at least 1", s.c.reporters)
	}
	s.svc = &trigger.Service{Rules: s.store, Starter: trigger.DryRun{}, Log: s.log}
	if gh != nil {
		s.svc.Changes = gh
	}
	if s.c.dryRun {
		return nil
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return errors.New("no AWS region configured: " + noRegion + ", or run with --dry-run to start nothing")
	}
	if err := checkCredentials(ctx, awsCfg); err != nil {
		return err
	}
	s.svc.Starter, err = s.c.targets.starters(&awsCfg, gh)
	s.follower = s.c.targets.followers(&awsCfg, gh)
	return err
}

func (s *server) openQueue(ctx context.Context) error {
	db, err := s.c.db.open(ctx, s.c.store.dataDir)
	if err != nil {
		return err
	}
	s.db = db
	s.onClose(func(context.Context) error { db.Close(); return nil })
	opts := s.c.queue
	opts.Parse, opts.MaxPayload = githubhook.ParseEvent, githubhook.MaxBody
	opts.Follower = s.follower
	opts.Report = reportOptions(s.reportMode, s.github, s.c.reporters)
	s.metrics = metrics.New()
	opts.Metrics = s.metrics
	q, err := deliveries.New(db, s.svc, s.svc.Starter, opts, s.log)
	if err != nil {
		return err
	}
	s.metrics.Register(q.Collector())
	s.metrics.BuildInfo(build.Version, build.Commit, build.Time)
	// Not ctx itself: River cancels every running job when the context it
	// started with ends, and SIGTERM ends ctx. close stops it instead,
	// letting running jobs finish within --shutdown-timeout.
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	s.queue = q
	s.onClose(func(ctx context.Context) error {
		if err := q.Close(ctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	})
	return nil
}

// openRecover prepares the reconciliation with GitHub's deliveries, when
// a webhook and credentials are configured; run starts it.
func (s *server) openRecover(context.Context) error {
	if s.c.recoverEvery < time.Second {
		// Each reconciliation lists at least one page of GitHub's API.
		return fmt.Errorf("--recover-every %s: must be at least 1s", s.c.recoverEvery)
	}
	var err error
	s.reconciler, s.hook, s.recoverOff, err = s.c.recover.reconciler(&s.c.targets, s.queue, s.metrics, s.log)
	return err
}

func (s *server) openHTTP(ctx context.Context, allowFrom []netip.Prefix) error {
	var err error
	if s.adminToken, err = s.c.resolveAdminToken(); err != nil {
		return err
	}
	m := s.metrics
	m.Register(s.store.Collector())
	budget := githubhook.NewBodyBudget(s.c.bodyMemory << 20)
	m.BodyMemory(budget.Held, budget.Limit())
	ui := &web.UI{AdminToken: s.adminToken, Sessions: s.db, Deliveries: s.queue, Store: s.store, Rules: s.store, Log: s.log}
	ui.GitHubWeb = web.GitHubWebRoot(s.c.targets.githubURL)
	if s.c.dryRun {
		ui.Notice = "Dry run: pipelines are decided and recorded, never started."
	}
	if s.reconciler != nil {
		ui.Recovery = s.queue
	}
	handler := httpserver.Handler(httpserver.Config{
		Dashboard: ui.Handler(),
		Webhook:   &githubhook.Handler{Verifier: s.verifier, Acceptor: s.queue, Rerunner: s.queue, AppID: s.c.targets.githubApp, Log: s.log, Metrics: m, Budget: budget, AllowFrom: allowFrom},
		Metrics:   m.Handler(),
		Ready:     s.ready,
		Log:       s.log,
	})
	if s.listener, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.c.listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.http = httpserver.NewServer(s.c.listen, handler, s.log)
	s.onClose(func(ctx context.Context) error {
		if err := s.http.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http shutdown", "err", err)
		}
		return nil
	})
	return nil
}

// ready is /readyz: the rule store answers and a delivery can be
// committed now.
func (s *server) ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return &httpserver.NotReady{What: "rule store: unreachable", Err: err}
	}
	if err := s.queue.Ready(ctx); err != nil {
		return &httpserver.NotReady{What: "database: cannot commit", Err: err}
	}
	return nil
}

// run serves until ctx ends (SIGINT, SIGTERM) or the server fails.
func (s *server) run(ctx context.Context, stop func()) error {
	s.logStart(ctx)
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.listener) }()
	if s.reconciler != nil {
		s.onClose(startReconciling(ctx, s.reconciler, s.c.recoverEvery, s.log))
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// A second SIGINT or SIGTERM ends the process at once: nothing
	// acknowledged depends on a graceful stop (running jobs run again
	// after the restart).
	stop()
	s.log.Info("shutting down: no new deliveries; finishing running jobs (a second signal exits at once)", "timeout", s.c.shutdown)
	return nil
}

// logStart tells what serves, and where.
func (s *server) logStart(ctx context.Context) {
	log, addr := s.log, s.listener.Addr().String()
	count, err := s.store.Count(ctx)
	if err != nil {
		log.Warn("could not count the stored rules", "err", err)
	}
	v2count := 0
	if v2, err := s.store.V2Rules(ctx); err != nil {
		log.Warn("could not read the v2 rules", "err", err)
	} else {
		v2count = len(v2.Rules) + len(v2.Problems)
	}
	webhookURL := "http://" + addr + "/webhook"
	log.Info("monohook serving",
		"version", build.Version, "commit", build.Commit, "built", build.Time,
		"webhook_url", webhookURL,
		"rules", s.storeWhere,
		"rule_count", count+v2count,
		"v2_rule_count", v2count,
		"secret_from", s.secretFrom,
		"database", s.db.Where,
		"dry_run", s.c.dryRun,
		"github_api", s.github != nil,
		"github_report", s.reportMode,
		"exec_targets", s.c.targets.allowExec,
	)
	if count+v2count == 0 {
		log.Info("no rules yet: add one with 'monohook rules put --repo NAME --branch BRANCH --pipeline PIPELINE --match REGEXP' (or --file RULE.yaml for a v2 rule), given the same --data-dir or --store; serve reads new rules without a restart")
	}
	if strings.HasSuffix(s.secretFrom, "(generated)") {
		log.Info("a webhook secret was generated: in the GitHub organization's Settings → Webhooks, set the payload URL to this server's /webhook, the content type to application/json, and the secret to the contents of the file", "secret_file", strings.TrimSuffix(s.secretFrom, " (generated)"), "webhook_url", webhookURL)
	}
	if s.reconciler != nil {
		log.Info("recovering deliveries GitHub failed to deliver: reconciling now and every --recover-every", "webhook", s.hook.String(), "every", s.c.recoverEvery, "window", s.c.recover.window)
	} else {
		log.Info("recovery of missed deliveries off (" + s.recoverOff + "): " + howToEnable)
	}
	if s.db.SyncCommitRaised() {
		log.Warn("PostgreSQL's synchronous_commit is off for this database or role; monohook's sessions set it on, so that an acknowledged delivery is flushed before its answer", "database", s.db.Where)
	}
	switch {
	case s.adminToken == "":
		log.Info("dashboard off: set MONOHOOK_ADMIN_TOKEN (or --admin-token-file) to turn it on at /")
	case len(s.adminToken) < 16:
		log.Warn("dashboard on, but its admin token is short: use at least 16 random characters", "dashboard_url", "http://"+addr+"/")
	default:
		log.Info("dashboard on", "dashboard_url", "http://"+addr+"/")
	}
}

// credentialsWait bounds the credentials check at start: the SDK's chain
// may ask the instance metadata service, which on a machine without one
// answers only by timing out.
const credentialsWait = 20 * time.Second

// checkCredentials resolves the AWS credentials once at start, so that a
// machine without any (or with unusable ones) is told so now, in one line,
// instead of accepting pushes whose every start fails and retries.
func checkCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return errors.New("no AWS credentials configured: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role (ECS task role, EC2 instance profile, IRSA); or run with --dry-run to start nothing")
	}
	ctx, cancel := context.WithTimeout(ctx, credentialsWait)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role (ECS task role, EC2 instance profile, IRSA); or run with --dry-run to start nothing: %w", err)
	}
	return nil
}

// resolveAdminToken returns the dashboard's token, "" when it is off.
func (c serveConfig) resolveAdminToken() (string, error) {
	if c.adminFile == "" {
		return strings.TrimSpace(c.adminToken), nil
	}
	b, err := os.ReadFile(c.adminFile)
	if err != nil {
		return "", fmt.Errorf("read admin token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("admin token file %s is empty", c.adminFile)
	}
	return t, nil
}
