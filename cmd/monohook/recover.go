package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/metrics"
)

// recoverFlags say which webhook's deliveries are reconciled, and how.
type recoverFlags struct {
	org       string
	hookID    int64
	appHook   bool
	publicURL string
	window    time.Duration
	overlap   time.Duration
}

func (f *recoverFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.org, "github-org", "", "organization whose webhook's failed deliveries are recovered from GitHub's deliveries API (needs a token with admin:org_hook, or an App installation with the organization's webhooks permission)")
	fs.Int64Var(&f.hookID, "github-hook-id", 0, "id of the organization webhook to reconcile (default: the one whose URL is --public-url)")
	fs.BoolVar(&f.appHook, "github-app-hook", false, "reconcile the GitHub App's own webhook (/app/hook/deliveries, with the App's JWT: --github-app-id and --github-app-key-file) instead of an organization webhook")
	fs.StringVar(&f.publicURL, "public-url", "", "the URL GitHub posts this server's webhooks to, e.g. https://monohook.example.com/webhook: finds the organization webhook when --github-hook-id is not given")
	fs.DurationVar(&f.window, "recover-window", 72*time.Hour, "how far back GitHub keeps a webhook's deliveries, and so the furthest a reconciliation looks (3 days on github.com; GitHub Enterprise Server may keep another span)")
	fs.DurationVar(&f.overlap, "recover-overlap", 10*time.Minute, "how far before the newest delivery the last reconciliation listed the next one starts listing again (for deliveries GitHub lists late)")
}

// enabled reports whether a webhook to reconcile is named.
func (f *recoverFlags) enabled() bool { return f.org != "" || f.appHook }

// howToEnable is the startup log's hint when reconciliation is off.
const howToEnable = "set --github-org (MONOHOOK_GITHUB_ORG) with --github-hook-id or --public-url, and a --github-token with admin:org_hook (or a GitHub App installation allowed to read the organization's webhooks); or --github-app-hook with the App's id and key for a GitHub App's own webhook"

// reconciler builds the reconciler of q for the named webhook, its
// metrics registered with m (nil: none); nil (and
// the reason, for the log) when no webhook is named or no credentials
// are there to read it with.
func (f *recoverFlags) reconciler(tf *targetFlags, q *deliveries.Queue, m *metrics.Metrics, log *slog.Logger) (*deliveries.Reconciler, githubapi.Hook, string, error) {
	if !f.enabled() {
		return nil, githubapi.Hook{}, "no webhook to reconcile named", nil
	}
	if f.window <= 0 || f.overlap < 0 {
		return nil, githubapi.Hook{}, "", errors.New("--recover-window must be positive and --recover-overlap not negative")
	}
	hooks, err := f.hooks(tf)
	if errors.Is(err, errNoCredentials) {
		return nil, githubapi.Hook{}, "no GitHub credentials", nil
	}
	if err != nil {
		return nil, githubapi.Hook{}, "", err
	}
	// The metrics exist only when recovery is on: one of something off
	// would read as a reconciliation that never succeeds.
	r, err := deliveries.NewReconciler(q, hooks, deliveries.RecoverOptions{
		Window: f.window, Overlap: f.overlap, Handles: githubhook.Handles, Admit: githubhook.Recovered, Metrics: m.Recovery(q.LastSucceeded),
	}, log)
	return r, hooks.Hook(), "", err
}

var errNoCredentials = errors.New("no GitHub credentials: --github-token, or --github-app-id with --github-app-key-file")

// hooks is the reader of the named webhook's deliveries; an organization
// webhook without --github-hook-id is found by its URL (--public-url) when
// first used.
func (f *recoverFlags) hooks(tf *targetFlags) (*githubapi.Hooks, error) {
	if f.org != "" && f.appHook {
		return nil, errors.New("--github-org and --github-app-hook name two webhooks: pass one")
	}
	cfg, err := tf.githubConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" && cfg.App == 0 {
		return nil, errNoCredentials
	}
	if f.org != "" && f.hookID == 0 && f.publicURL == "" {
		return nil, errors.New("--github-org needs --github-hook-id, or --public-url to find the webhook by its URL")
	}
	return githubapi.NewHooks(cfg, githubapi.Hook{Org: f.org, ID: f.hookID, URL: f.publicURL})
}

// reconcileLoop reconciles at once, then every every until ctx ends.
// Each replica runs it; the lease lets one reconcile at a time, and a
// replica skips its turn when another reconciled less than every/2 ago.
func reconcileLoop(ctx context.Context, r *deliveries.Reconciler, every time.Duration, log *slog.Logger) {
	run := func(fresh time.Duration) {
		rec, err := r.Run(ctx, deliveries.RunOptions{Fresh: fresh})
		switch {
		case errors.Is(err, deliveries.ErrReconciling):
			log.Debug("reconciliation skipped: another replica reconciles, or just did")
		case err != nil && ctx.Err() != nil:
		case err != nil:
			log.Warn("reconciliation failed; the next one lists the window again", "err", err, "listed", rec.Listed, "missing", rec.Missing, "recovered", rec.Recovered)
		default:
			log.Info("reconciled with GitHub's deliveries", "since", rec.Since.UTC().Format(time.RFC3339), "listed", rec.Listed, "missing", rec.Missing,
				"recovered", rec.Recovered, "arrived_meanwhile", rec.Arrived, "ignored", rec.Ignored, "took", rec.Finished.Sub(rec.Started).Round(time.Millisecond))
		}
	}
	run(0)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			run(every / 2)
		}
	}
}

// startReconciling runs reconcileLoop in the background; the function
// returned stops it and waits for it.
func startReconciling(ctx context.Context, r *deliveries.Reconciler, every time.Duration, log *slog.Logger) func(context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); reconcileLoop(ctx, r, every, log) }()
	return func(context.Context) error { cancel(); wg.Wait(); return nil }
}

// progress prints a reconciliation's progress to w, at most once a
// second (update), and at the end (print).
type progress struct {
	w    io.Writer
	last time.Time
}

func (p *progress) update(rec deliveries.Reconciliation) {
	if time.Since(p.last) < time.Second {
		return
	}
	p.last = time.Now()
	p.print(rec)
}

func (p *progress) print(rec deliveries.Reconciliation) {
	printf(p.w, "listed %d deliveries since %s: %d missing, %d recovered\n", rec.Listed, rec.Since.UTC().Format(time.RFC3339), rec.Missing, rec.Recovered)
}

// recoverCommand is deliveries recover's flags.
type recoverCommand struct {
	f              deliveriesFlags
	rf             recoverFlags
	tf             targetFlags
	since          string
	retention      time.Duration
	dryRun, asJSON bool
}

func newDeliveriesRecover() *cobra.Command {
	var c recoverCommand
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Find the deliveries GitHub failed to deliver and ingest them",
		Long: `recover lists the webhook's deliveries through GitHub's deliveries API, back
--since (at most --recover-window), and finds those whose delivery id the
database does not hold, whatever GitHub recorded for them (a refused
connection, a timeout, a 5xx). Without --dry-run it fetches each one's original
headers and payload from GitHub and stores it as serve stores a webhook (same
parsing, same deduplication by delivery id), marked recovered: a running serve
evaluates it and starts its pipelines. A progress line goes to stderr every
second. serve does the same at start and every --recover-every. One
reconciliation runs at a time: this one fails, saying so, while another runs.

The webhook is --github-org with --github-hook-id (or --public-url), or
--github-app-hook; the token needs admin:org_hook.`,
		Example: `  monohook deliveries recover --github-org acme --github-hook-id 12345 --since 24h --dry-run
  monohook deliveries recover --github-org acme --public-url https://monohook.example.com/webhook --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd) },
	}
	c.f.register(cmd)
	c.rf.register(cmd.Flags())
	c.tf.registerGitHub(cmd.Flags())
	cmd.Flags().StringVar(&c.since, "since", "", "look back this far (90m, 24h, 3d) or to this time (2026-01-31, RFC 3339); default: to the newest delivery the last reconciliation listed; never past --recover-window")
	cmd.Flags().DurationVar(&c.retention, "retention", 30*24*time.Hour, "serve's --retention: deliveries older than it are deleted, so older ones are not looked for")
	cmd.Flags().BoolVar(&c.dryRun, "dry-run", false, "list what is missing; fetch and store nothing")
	cmd.Flags().BoolVar(&c.asJSON, "json", false, "print the reconciliation as JSON")
	return cmd
}

func (c *recoverCommand) run(cmd *cobra.Command) error {
	if !c.rf.enabled() {
		return errors.New("name the webhook: " + howToEnable)
	}
	var back time.Duration
	if c.since != "" {
		now := time.Now()
		from, err := parseSince(c.since, now)
		if err != nil {
			return err
		}
		if back = now.Sub(from); back <= 0 {
			return fmt.Errorf("--since %s: must be in the past", c.since)
		}
	}
	q, done, err := openQueueRetained(cmd.Context(), &c.f, c.retention)
	if err != nil {
		return err
	}
	defer done()
	log, err := c.f.log.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	r, _, off, err := c.rf.reconciler(&c.tf, q, nil, log)
	if err != nil {
		return err
	}
	if r == nil {
		return errors.New("recover: " + off + ": " + howToEnable)
	}
	p := &progress{w: cmd.ErrOrStderr(), last: time.Now()}
	rec, err := r.Run(cmd.Context(), deliveries.RunOptions{Since: back, DryRun: c.dryRun, Progress: p.update})
	p.print(rec)
	switch {
	case errors.Is(err, deliveries.ErrReconciling):
		return errors.New("a reconciliation is running (serve's, or another recover): try again when it ends")
	case err != nil:
		return fmt.Errorf("recover: %w", err)
	case c.asJSON:
		return writeJSON(cmd, rec)
	}
	printRecovered(cmd.OutOrStdout(), rec, c.dryRun)
	return nil
}

// openQueueRetained is openQueue with serve's retention, which bounds
// how far back a reconciliation looks.
func openQueueRetained(ctx context.Context, f *deliveriesFlags, retention time.Duration) (*deliveries.Queue, func(), error) {
	log, err := f.log.logger(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	d, err := f.db.openExisting(ctx, f.dataDir)
	if err != nil {
		return nil, nil, err
	}
	q, err := deliveries.New(d, nil, nil, deliveries.Options{Retention: retention}, log)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return q, func() { _ = q.Close(context.Background()); d.Close() }, nil
}

func printRecovered(w io.Writer, rec deliveries.Reconciliation, dryRun bool) {
	if dryRun {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		printf(tw, "DELIVERED\tDELIVERY\tGITHUB-ID\tEVENT\tACTION\tGITHUB-STATUS\n")
		for _, m := range rec.Missed {
			printf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", m.DeliveredAt.Local().Format(time.DateTime), m.GUID, m.ID, m.Event, m.Action, m.Status)
		}
		_ = tw.Flush()
		printf(w, "%d deliveries listed since %s, %d missing (dry run: none fetched)\n", rec.Listed, rec.Since.Local().Format(time.DateTime), rec.Missing)
		return
	}
	printf(w, "%d deliveries listed since %s, %d missing: %d recovered, %d arrived meanwhile, %d ignored (as the webhook would)\n",
		rec.Listed, rec.Since.Local().Format(time.DateTime), rec.Missing, rec.Recovered, rec.Arrived, rec.Ignored)
}
