package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/deliveries"
)

func newDeliveries() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "Inspect and replay the stored webhook deliveries",
		Long: `Every delivery serve acknowledged is stored with its decision and its pipeline
starts (and what CodePipeline answered). These commands read the same database
as serve: --database, or the SQLite file in --data-dir.`,
	}
	cmd.AddCommand(newDeliveriesList(), newDeliveriesShow(), newDeliveriesReplay(), newDeliveriesRecover())
	return cmd
}

// openQueue opens the database for the deliveries commands. The queue is
// not started: these commands read and insert, they work no jobs. A
// database serve has not created is an error, not a new one.
func openQueue(ctx context.Context, db *dbFlags, dataDir string, lf *logFlags) (*deliveries.Queue, func(), error) {
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	d, err := db.openExisting(ctx, dataDir)
	if err != nil {
		return nil, nil, err
	}
	q, err := deliveries.New(d, nil, nil, deliveries.Options{}, log)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return q, func() { _ = q.Close(context.Background()); d.Close() }, nil
}

type deliveriesFlags struct {
	db      dbFlags
	dataDir string
	log     logFlags
}

func (f *deliveriesFlags) register(cmd *cobra.Command) {
	f.db.register(cmd.Flags())
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "./monohook-data", "data directory holding the SQLite database")
	f.log.register(cmd.Flags(), "warn")
}

// listed is a delivery as list --json prints it: the stored fields, its
// latest round's starts counted by state, and its outcome.
type listed struct {
	deliveries.Delivery
	Started int    `json:"started"`
	Pending int    `json:"pending"`
	Failed  int    `json:"failed"`
	DryRun  int    `json:"dry_run"`
	Outcome string `json:"outcome"`
}

func newDeliveriesList() *cobra.Command {
	var f deliveriesFlags
	var limit int
	var asJSON bool
	var status, repo, since string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, newest first, with their starts and outcome",
		Long: `list shows the deliveries as the dashboard does, newest first: when each was
received, its event, repository, ref and commit, how many paths changed, its
latest round's starts (started, pending, failed) and its outcome (started,
failed, nothing to start, skipped: tag, waiting, …).`,
		Example: `  monohook deliveries list --status failed --since 24h
  monohook deliveries list --repo monorepo --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" && !slices.Contains(deliveries.Statuses, status) {
				return fmt.Errorf("--status %q: use one of %s", status, strings.Join(deliveries.Statuses, ", "))
			}
			var after time.Time
			if since != "" {
				var err error
				if after, err = parseSince(since, time.Now()); err != nil {
					return err
				}
			}
			if limit <= 0 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			q, done, err := openQueue(cmd.Context(), &f.db, f.dataDir, &f.log)
			if err != nil {
				return err
			}
			defer done()
			// Deliveries are stored by repository name, as the
			// predecessor's rules name them.
			if i := strings.LastIndexByte(repo, '/'); i >= 0 {
				repo = repo[i+1:]
			}
			page, err := q.Find(cmd.Context(), deliveries.Filter{Repo: repo, Status: status, Limit: limit})
			if err != nil {
				return err
			}
			ds := page.Deliveries
			// Newest first: the first one received before --since ends it.
			for i, d := range ds {
				if d.Received.Before(after) {
					ds = ds[:i]
					break
				}
			}
			if asJSON {
				out := make([]listed, len(ds))
				for i, d := range ds {
					out[i] = listed{Delivery: d.Delivery, Started: d.Started, Pending: d.Pending, Failed: d.Failed, DryRun: d.DryRun, Outcome: d.Outcome()}
				}
				return writeJSON(cmd, out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECEIVED\tDELIVERY\tEVENT\tREPO\tREF\tSHA\tPATHS\tSTARTED\tPENDING\tFAILED\tOUTCOME")
			for _, d := range ds {
				started := strconv.Itoa(d.Started)
				if d.DryRun > 0 {
					started += fmt.Sprintf(" (%d dry run)", d.DryRun)
				}
				printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", d.Received.Format(time.RFC3339), d.ID, d.Event, d.Repo, d.Ref, shortSHA(d.SHA),
					d.Paths, started, d.Pending, d.Failed, d.Outcome())
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(ds) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no deliveries match")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many deliveries at most")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&status, "status", "", "only deliveries whose latest round has a start failed or started, is still pending, or started none: "+strings.Join(deliveries.Statuses, ", "))
	cmd.Flags().StringVar(&repo, "repo", "", "only deliveries of this repository (name, or owner/name)")
	cmd.Flags().StringVar(&since, "since", "", "only deliveries received since then: a duration back from now (90m, 24h, 7d) or a time (2026-01-31, 2026-01-31T12:00:00Z)")
	f.register(cmd)
	return cmd
}

// parseSince reads --since: a duration back from now (with d for days),
// an RFC 3339 time, or a date (midnight UTC).
func parseSince(s string, now time.Time) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration back from now (90m, 24h, 7d) or a time (2026-01-31, 2026-01-31T12:00:00Z)", s)
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func newDeliveriesShow() *cobra.Command {
	var f deliveriesFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show DELIVERY",
		Short: "Show one delivery: its decision for every matched rule and every pipeline start",
		Long: `show prints one delivery, named by its id or a unique prefix of it: what was
pushed, its outcome, the decision of every rule that matched (the path and the
pattern), and every pipeline start of every round with its status, attempts,
execution id, result (success, failure, cancelled, timed_out, unknown; "-"
while it runs), how long it ran, where to see it, and the target's word
on its result or its error. --json prints the whole record for scripts.`,
		Example: `  monohook deliveries show 6f1c
  monohook deliveries show 6f1c2a80-0c1e-11f0-9a3e-2a3b4c5d6e7f --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, done, err := openQueue(cmd.Context(), &f.db, f.dataDir, &f.log)
			if err != nil {
				return err
			}
			defer done()
			id, err := q.Resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			d, err := q.Get(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd, d)
			}
			return printDelivery(cmd.OutOrStdout(), deliveries.Summarize(d))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	f.register(cmd)
	return cmd
}

// printDelivery is show's human-readable form.
func printDelivery(w io.Writer, s deliveries.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printf(tw, "delivery\t%s\n", s.ID)
	printf(tw, "event\t%s\n", s.Event)
	printf(tw, "received\t%s\n", s.Received.Format(time.RFC3339))
	if s.Recovered != nil {
		printf(tw, "recovered\t%s (GitHub failed to deliver it; fetched from GitHub's deliveries API)\n", s.Recovered.Format(time.RFC3339))
	}
	printf(tw, "repository\t%s\n", s.Repo)
	printf(tw, "ref\t%s\n", s.Ref)
	printf(tw, "commit\t%s\n", s.SHA)
	printf(tw, "paths\t%d\n", s.Paths)
	printf(tw, "outcome\t%s\n", s.Outcome())
	if s.EvaluatedAt != nil {
		printf(tw, "evaluated\t%s\n", s.EvaluatedAt.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res := s.Result; res != nil {
		switch {
		case res.Skipped != "":
			printf(w, "\nnothing starts: %s\n", res.Skipped)
		default:
			matched := 0
			for _, d := range res.Decisions {
				if d.Matched {
					matched++
				}
			}
			printf(w, "\n%s for %s@%s, %d matched\n", plural(res.Rules, "rule", "rules"), res.Repo, res.Branch, matched)
		}
		if res.Incomplete != "" {
			printf(w, "the changed paths may be incomplete: %s\n", res.Incomplete)
		}
		for _, d := range res.Decisions {
			if d.Matched {
				printf(w, "\nSTART %s\n  rule        %s\n", d.Pipeline, d.Rule)
				printWhy(w, d)
			}
		}
		for _, pr := range res.Problems {
			printf(w, "\nINVALID rule skipped: %s\n  %s\n", pr.Key, pr.Error)
		}
	}
	if len(s.Starts) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUND\tSTART\tSTATUS\tATTEMPTS\tEXECUTION\tUPDATED\tRESULT\tDURATION")
	for _, st := range s.Starts {
		printf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", st.Round, st.Pipeline, st.Status, st.Attempts, st.ExecutionID, st.Updated.Format(time.RFC3339),
			resultOf(st), durationOf(st))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range s.Starts {
		if st.URL != "" {
			printf(w, "\n%s (round %d) execution:\n  %s\n", st.Pipeline, st.Round, printableLines(st.URL))
		}
		if st.ResultDetail != "" && st.ResultDetail != st.Error {
			printf(w, "\n%s (round %d) result:\n%s\n", st.Pipeline, st.Round, indent(st.ResultDetail))
		}
		if st.Error != "" {
			printf(w, "\n%s (round %d) error:\n  %s\n", st.Pipeline, st.Round, st.Error)
		}
		if st.Output != "" {
			printf(w, "\n%s (round %d) output:\n%s\n", st.Pipeline, st.Round, indent(st.Output))
		}
	}
	return nil
}

// resultOf is a start's result for the table: "-" while there is none
// (running, or started before monohook followed executions).
func resultOf(st deliveries.Start) string {
	if st.Result == "" {
		return "-"
	}
	return st.Result
}

// durationOf is how long a followed execution ran, "-" when unknown.
func durationOf(st deliveries.Start) string {
	if st.Duration <= 0 {
		return "-"
	}
	return (time.Duration(st.Duration * float64(time.Second))).Round(time.Second).String()
}

// indent makes a target's answer printable and sets it off by two spaces.
func indent(s string) string {
	lines := strings.Split(strings.TrimRight(printableLines(s), "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ")
}

func newDeliveriesReplay() *cobra.Command {
	var f deliveriesFlags
	cmd := &cobra.Command{
		Use:   "replay DELIVERY",
		Short: "Evaluate a stored delivery again against the current rules and start what it selects",
		Long: `replay queues a new evaluation of a stored delivery, named by its id or a unique
prefix of it. A running serve picks it up, evaluates it against the rules as
they are now, and starts the pipelines it selects, with new idempotency tokens,
so they run again even if they ran for the first evaluation.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, done, err := openQueue(cmd.Context(), &f.db, f.dataDir, &f.log)
			if err != nil {
				return err
			}
			defer done()
			id, err := q.Resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			round, err := q.Replay(cmd.Context(), id)
			if err != nil {
				return err
			}
			printf(cmd.OutOrStdout(), "replay %d of %s queued\n", round, id)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(jsonOut(cmd.OutOrStdout()))
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
