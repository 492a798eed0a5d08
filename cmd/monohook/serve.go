package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/codepipeline"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/httpserver"
	"github.com/monohook/monohook/internal/queue"
	"github.com/monohook/monohook/internal/trigger"
)

type serveConfig struct {
	store         storeFlags
	secret        secretFlags
	log           logFlags
	listen        string
	requireSHA256 bool
	dryRun        bool
	workers       int
	queueSize     int
	shutdown      time.Duration
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
	f.IntVar(&c.workers, "workers", 4, "workers taking queued pushes; each takes up to 256 at once and reads each branch's rules once for them")
	f.IntVar(&c.queueSize, "queue-size", 1024, "accepted pushes waiting for a worker; past it deliveries get 503 so GitHub marks them failed")
	f.DurationVar(&c.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long to wait for in-flight requests and queued pushes")
	c.log.register(f, "info")
	return cmd
}

func serve(ctx context.Context, c serveConfig) error {
	log, err := c.log.logger(os.Stderr)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// Deliveries make much short-lived garbage while the live heap stays
		// small; collecting at 5x the live heap instead of 2x costs little
		// memory and a lot less CPU under bursts. GOGC overrides it.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

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

	svc := &trigger.Service{Rules: st, DryRun: c.dryRun, Log: log}
	if !c.dryRun {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("AWS configuration: %w", err)
		}
		if awsCfg.Region == "" {
			return errors.New("no AWS region configured: set AWS_REGION (or a profile with a region), or run with --dry-run to start nothing")
		}
		svc.Starter = codepipeline.New(awsCfg)
	}

	q := queue.NewMemory(c.queueSize, c.workers, func(ctx context.Context, batch []trigger.Delivery) {
		process(ctx, svc, batch, log)
	}, log)

	handler := httpserver.Handler(httpserver.Config{
		Webhook: &githubhook.Handler{Verifier: verifier, Acceptor: q, Log: log},
		Ready:   st.Ping,
		Log:     log,
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
		"version", version,
		"webhook_url", "http://"+ln.Addr().String()+"/webhook",
		"rules", where,
		"rule_count", count,
		"secret_from", secretSource,
		"dry_run", c.dryRun,
	)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new deliveries; finishing the accepted ones", "timeout", c.shutdown)
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

// process evaluates a batch of deliveries and starts their pipelines.
// Pushes whose rules could not be read (the store is unreachable) were not
// decided, so they are tried again a few times before being given up.
func process(ctx context.Context, svc *trigger.Service, batch []trigger.Delivery, log *slog.Logger) {
	pushes := make([]*trigger.Push, len(batch))
	for i, d := range batch {
		pushes[i] = d.Push
	}
	backoff := time.Second
	for attempt := 1; len(pushes) > 0; attempt++ {
		var failed []*trigger.Push
		for i, r := range svc.ProcessBatch(ctx, pushes) {
			if r.Err != nil {
				failed = append(failed, pushes[i])
			}
		}
		if len(failed) == 0 {
			return
		}
		if attempt == 5 || ctx.Err() != nil {
			for _, p := range failed {
				log.Error("delivery dropped: rules could not be loaded", "delivery", p.DeliveryID, "attempts", attempt)
			}
			return
		}
		pushes = failed
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-ctx.Done():
		}
	}
}
