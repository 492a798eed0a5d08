package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/httpserver"
	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/queue"
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
	queue         queue.Options
	shutdown      time.Duration
	adminToken    string
	adminFile     string
	targets       targetFlags
	bodyMemory    int64
	allowCIDR     string
}

func newServe() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive GitHub webhooks and start the pipelines whose paths changed",
		Long: `serve listens for GitHub webhook deliveries on POST /ghorg/push and POST /webhook,
verifies their signatures, and for every push starts the pipelines whose rules
match the changed paths. GET /healthz and GET /readyz report liveness and readiness.

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
	f.DurationVar(&c.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long running jobs may take before they are cancelled (they run again after a restart)")
	f.StringVar(&c.adminToken, "admin-token", "", "token that logs in to the dashboard at / (off without one; prefer the environment variable or --admin-token-file to a flag)")
	f.StringVar(&c.adminFile, "admin-token-file", "", "file holding the dashboard's admin token")
	c.targets.register(f)
	c.log.register(f, "info")
	f.Int64Var(&c.bodyMemory, "max-body-memory", githubhook.DefaultBodyMemory>>20, "MiB of webhook request bodies held in memory at once, before and after their signature is checked; past it a request gets 503 with Retry-After (at least 50: a body growing as it arrives holds up to twice its size for a moment)")
	f.StringVar(&c.allowCIDR, "webhook-allow-cidr", "", "comma-separated networks (CIDR) whose connections may post webhooks, others get 403; empty lets every address through (behind a load balancer, filter there instead)")
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
	allowFrom, err := netguard.ParsePrefixes(c.allowCIDR)
	if err != nil {
		return fmt.Errorf("--webhook-allow-cidr: %w", err)
	}
	if os.Getenv("GOGC") == "" {
		// Deliveries make much short-lived garbage while the live heap stays
		// small; collecting at 5x the live heap instead of 2x costs little
		// memory and a lot less CPU under bursts. GOGC overrides it.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The data directory holds the secret and the deliveries (payloads of
	// private repositories): create it for this user only. An existing one
	// keeps its mode.
	if err := os.MkdirAll(c.store.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	st, where, err := c.store.open(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
	secrets, secretSource, err := c.secret.resolve(c.store.dataDir, true)
	if err != nil {
		return err
	}
	verifier, err := githubhook.NewVerifier(secrets, c.requireSHA256)
	if err != nil {
		return err
	}

	gh, err := c.targets.github()
	if err != nil {
		return err
	}
	svc := &trigger.Service{Rules: st, DryRun: c.dryRun, Log: log}
	if gh != nil {
		svc.Changes = gh
	}
	if !c.dryRun {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("AWS configuration: %w", err)
		}
		if awsCfg.Region == "" {
			return errors.New("no AWS region configured: set AWS_REGION (or a profile with a region), or run with --dry-run to start nothing")
		}
		if err := checkCredentials(ctx, awsCfg); err != nil {
			return err
		}
		if svc.Starter, err = c.targets.starters(&awsCfg, gh); err != nil {
			return err
		}
	}

	db, err := c.db.open(ctx, c.store.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	c.queue.DryRun = c.dryRun
	m := metrics.New()
	c.queue.Metrics = m
	q, err := queue.New(db, svc, svc.Starter, c.queue, log)
	if err != nil {
		return err
	}
	m.Register(q.Collector())
	m.BuildInfo(build.Version, build.Commit, build.Time)
	// Not ctx itself: River cancels every running job when the context it
	// started with ends, and SIGTERM ends ctx. The shutdown below stops it
	// instead, letting running jobs finish within --shutdown-timeout.
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}

	adminToken, err := c.resolveAdminToken()
	if err != nil {
		return err
	}
	m.Register(st.Collector())
	budget := githubhook.NewBodyBudget(c.bodyMemory << 20)
	m.BodyMemory(budget.Held, budget.Limit())
	ui := &web.UI{AdminToken: adminToken, Sessions: db, Deliveries: q, Store: st, Rules: st, DryRun: c.dryRun, Log: log}
	handler := httpserver.Handler(httpserver.Config{
		UI:      ui,
		Webhook: &githubhook.Handler{Verifier: verifier, Acceptor: q, Log: log, Metrics: m, Budget: budget, AllowFrom: allowFrom},
		Metrics: m.Handler(),
		Ready: func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				return &httpserver.NotReady{What: "rule store: unreachable", Err: err}
			}
			if err := q.Ready(ctx); err != nil {
				return &httpserver.NotReady{What: "database: cannot commit", Err: err}
			}
			return nil
		},
		Log: log,
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := httpserver.NewServer(c.listen, handler, log)

	count, err := st.Count(ctx)
	if err != nil {
		log.Warn("could not count the stored rules", "err", err)
	}
	log.Info("monohook serving",
		"version", build.Version, "commit", build.Commit, "built", build.Time,
		"webhook_url", "http://"+ln.Addr().String()+"/webhook",
		"rules", where,
		"rule_count", count,
		"secret_from", secretSource,
		"database", db.Where,
		"dry_run", c.dryRun,
		"github_api", gh != nil,
		"exec_targets", c.targets.allowExec,
	)
	if db.SyncCommitRaised() {
		log.Warn("PostgreSQL's synchronous_commit is off for this database or role; monohook's sessions set it on, so that an acknowledged delivery is flushed before its answer", "database", db.Where)
	}
	switch {
	case adminToken == "":
		log.Info("dashboard off: set MONOHOOK_ADMIN_TOKEN (or --admin-token-file) to turn it on at /")
	case len(adminToken) < 16:
		log.Warn("dashboard on, but its admin token is short: use at least 16 random characters", "dashboard_url", "http://"+ln.Addr().String()+"/")
	default:
		log.Info("dashboard on", "dashboard_url", "http://"+ln.Addr().String()+"/")
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// A second SIGINT or SIGTERM ends the process at once: nothing
	// acknowledged depends on a graceful stop (running jobs run again
	// after the restart).
	stop()
	log.Info("shutting down: no new deliveries; finishing running jobs (a second signal exits at once)", "timeout", c.shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http shutdown", "err", err)
	}
	if err := q.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
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
