package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
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
	cmd.AddCommand(newDeliveriesList(), newDeliveriesShow(), newDeliveriesReplay())
	return cmd
}

// openQueue opens the database for the deliveries commands. The queue is
// not started: these commands read and insert, they work no jobs.
func openQueue(ctx context.Context, db *dbFlags, dataDir string, lf *logFlags) (*deliveries.Queue, func(), error) {
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	d, err := db.open(ctx, dataDir)
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

func newDeliveriesList() *cobra.Command {
	var f deliveriesFlags
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, done, err := openQueue(cmd.Context(), &f.db, f.dataDir, &f.log)
			if err != nil {
				return err
			}
			defer done()
			ds, err := q.List(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd, ds)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECEIVED\tDELIVERY\tEVENT\tREPO\tREF\tSHA\tPATHS\tSTATUS")
			for _, d := range ds {
				sha := d.SHA
				if len(sha) > 7 {
					sha = sha[:7]
				}
				printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Received.Format(time.RFC3339), d.ID, d.Event, d.Repo, d.Ref, sha, d.Paths, d.Status)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many deliveries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	f.register(cmd)
	return cmd
}

func newDeliveriesShow() *cobra.Command {
	var f deliveriesFlags
	cmd := &cobra.Command{
		Use:   "show DELIVERY",
		Short: "Show one delivery: its decision for every matched rule and every pipeline start",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, done, err := openQueue(cmd.Context(), &f.db, f.dataDir, &f.log)
			if err != nil {
				return err
			}
			defer done()
			d, err := q.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd, d)
		},
	}
	f.register(cmd)
	return cmd
}

func newDeliveriesReplay() *cobra.Command {
	var f deliveriesFlags
	cmd := &cobra.Command{
		Use:   "replay DELIVERY",
		Short: "Evaluate a stored delivery again against the current rules and start what it selects",
		Long: `replay queues a new evaluation of a stored delivery. A running serve picks it up,
evaluates it against the rules as they are now, and starts the pipelines it
selects, with new idempotency tokens, so they run again even if they ran for
the first evaluation.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, done, err := openQueue(cmd.Context(), &f.db, f.dataDir, &f.log)
			if err != nil {
				return err
			}
			defer done()
			round, err := q.Replay(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printf(cmd.OutOrStdout(), "replay %d of %s queued\n", round, args[0])
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
