package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

func newEval() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var asJSON, all bool
	var event string
	cmd := &cobra.Command{
		Use:   "eval PUSH.json",
		Short: "Show which pipelines a push payload would start, and why, without starting any",
		Long: `eval reads a GitHub push payload (a file, or - for standard input), loads the
rules that apply to it (seed rules of its repository and branch, v2 rules of its
repository, event and ref), and prints every pipeline it would start with the
rule, the first matching path and the matching pattern. --explain also lists
the rules that did not match, and why. Invalid rules are named. Nothing is
started, and the GitHub API is not asked for a fuller change set.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// ParseEvent reads any other event as a push: a misspelt
			// --event would decide a pull request as one.
			if event != "push" && event != "pull_request" && event != "merge_group" {
				return fmt.Errorf("--event %q: eval takes push, pull_request or merge_group", event)
			}
			body, err := readInput(args[0])
			if err != nil {
				return err
			}
			push, err := githubhook.ParseEvent(event, body)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			rules, err := trigger.NewLoader(st).Load(cmd.Context(), push)
			if err != nil {
				return err
			}
			plan := trigger.NewPlan(trigger.PlanInput{Event: push, Rules: rules, Changes: trigger.Unasked(push, "eval does not ask the GitHub API"), Explain: true})
			res := plan.Result
			if asJSON {
				enc := json.NewEncoder(jsonOut(cmd.OutOrStdout()))
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printResult(cmd.OutOrStdout(), plan.Event, res, all)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the decisions as JSON")
	cmd.Flags().StringVar(&event, "event", "push", "the payload's event: push, pull_request or merge_group")
	cmd.Flags().BoolVar(&all, "explain", false, "list every rule, matched or not, with the path and pattern that decided it (an exclude that vetoed it included)")
	cmd.Flags().BoolVar(&all, "all", false, "the same as --explain")
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, githubhook.MaxBody+1))
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	return b, nil
}

func printResult(w io.Writer, p *trigger.Push, res trigger.Result, all bool) {
	printf(w, "push to %s %s (%s): %s, %s\n", p.Repo, p.Ref, p.ShortSHA(), plural(p.Commits, "commit", "commits"), plural(len(p.Paths), "changed path", "changed paths"))
	if res.Skipped != "" {
		printf(w, "nothing starts: %s\n", res.Skipped)
		return
	}
	matched := 0
	for _, d := range res.Decisions {
		if d.Matched {
			matched++
		}
	}
	printf(w, "%s for %s@%s, %d matched, %s\n", plural(res.Rules, "rule", "rules"), res.Repo, res.Branch, matched, plural(len(res.Start), "pipeline would start", "pipelines would start"))
	if res.Incomplete != "" {
		printf(w, "the changed paths may be incomplete: %s\n", res.Incomplete)
	}
	// One START per name, as serve starts it: once, however many rules
	// (a seed rule and a v2 rule, say) chose it.
	for _, name := range res.Start {
		printf(w, "\nSTART %s\n", name)
		n := 0
		for _, d := range res.Decisions {
			if d.Matched && d.Pipeline == name {
				n++
				printf(w, "  rule        %s\n", d.Rule)
				printWhy(w, d)
			}
		}
		if n > 1 {
			printf(w, "  (%d rules chose it: it starts once)\n", n)
		}
	}
	if all {
		for _, d := range res.Decisions {
			if !d.Matched {
				printf(w, "\nno match %s\n  rule        %s\n", d.Pipeline, d.Rule)
				printWhy(w, d)
			}
		}
	}
	for _, pr := range res.Problems {
		printf(w, "\nINVALID rule skipped: %s\n  %s\n", pr.Key, pr.Error)
	}
}

func printWhy(w io.Writer, d trigger.Decision) {
	switch {
	case d.Vetoed:
		printf(w, "  path        %s\n  excluded by %s\n", d.Path, d.Expression)
	case d.Path != "":
		printf(w, "  path        %s\n  pattern     %s\n", d.Path, d.Expression)
	case !d.Matched && d.Reason == "":
		printf(w, "  no changed path matched\n")
	}
	if d.Reason != "" {
		printf(w, "  why         %s\n", d.Reason)
	}
}
