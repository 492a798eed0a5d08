package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/store"
)

func newRules() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Manage the stored rules (the predecessor's config documents)",
		Long: `A rule says: for pushes to this repository and branch, start this pipeline when a
changed path matches one of these comma-separated regular expressions (each
anchored at the start of the path). Rules are stored exactly as the
predecessor's CloudFormation custom resource stored them, so a bucket can be
shared with it or migrated as is.`,
	}
	cmd.AddCommand(newRulesPut(), newRulesList(), newRulesGet(), newRulesRm(), newRulesValidate())
	return cmd
}

// ruleAddress names one rule: by key, or by repository, branch and pipeline.
type ruleAddress struct {
	repo, branch, pipeline string
}

func (a *ruleAddress) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.repo, "repo", "", "repository name (repository.name, without the owner)")
	cmd.Flags().StringVar(&a.branch, "branch", "", "full branch name, e.g. main or feature/x")
	cmd.Flags().StringVar(&a.pipeline, "pipeline", "", "pipeline name")
}

func (a *ruleAddress) key(prefix string, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	if a.repo == "" || a.branch == "" || a.pipeline == "" {
		return "", errors.New("name the rule by KEY or by --repo, --branch and --pipeline")
	}
	return store.SeedKey(prefix, a.repo, a.branch, a.pipeline), nil
}

func openStore(ctx context.Context, sf *storeFlags, lf *logFlags) (*store.Store, error) {
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return nil, err
	}
	st, _, err := sf.open(ctx, log)
	return st, err
}

func newRulesPut() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var a ruleAddress
	var match string
	cmd := &cobra.Command{
		Use:     "put",
		Short:   "Store a rule (replacing the one for the same repo, branch and pipeline)",
		Example: `  monohook rules put --repo monorepo --branch main --pipeline api-deploy --match 'services/api/.*,libs/.*'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.repo == "" || a.branch == "" || a.pipeline == "" || !cmd.Flags().Changed("match") && os.Getenv(envName("match")) == "" {
				return errors.New("--repo, --branch, --pipeline and --match are required")
			}
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			key, warnings, err := st.Put(cmd.Context(), store.Document{
				GitHubRepo: a.repo, GitHubBranch: a.branch, CodePipelineName: a.pipeline, ChangeMatchExpressions: match,
			})
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	a.register(cmd)
	cmd.Flags().StringVar(&match, "match", "", "comma-separated regular expressions, each matched at the start of a changed path")
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}

func newRulesList() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var repo, branch string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			entries, err := st.List(cmd.Context(), repo, branch)
			if err != nil {
				return err
			}
			if asJSON {
				return writeEntriesJSON(cmd.OutOrStdout(), entries)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPO\tBRANCH\tPIPELINE\tMATCH\tSTATUS")
			for _, e := range entries {
				status := "ok"
				if e.Problem != "" {
					status = "INVALID (rules validate says why)"
				} else if len(e.Warnings) > 0 {
					status = "warning"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Doc.GitHubRepo, e.Doc.GitHubBranch, e.Doc.CodePipelineName, e.Doc.ChangeMatchExpressions, status)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "only rules of this repository")
	cmd.Flags().StringVar(&branch, "branch", "", "only rules of this branch")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}

type entryJSON struct {
	Key                    string   `json:"key"`
	GitHubRepo             string   `json:"GitHubRepo"`
	GitHubBranch           string   `json:"GitHubBranch"`
	ChangeMatchExpressions string   `json:"ChangeMatchExpressions"`
	CodePipelineName       string   `json:"CodePipelineName"`
	Valid                  bool     `json:"valid"`
	Problem                string   `json:"problem,omitempty"`
	Warnings               []string `json:"warnings,omitempty"`
}

func writeEntriesJSON(w io.Writer, entries []store.Entry) error {
	out := make([]entryJSON, len(entries))
	for i, e := range entries {
		out[i] = entryJSON{Key: e.Key, GitHubRepo: e.Doc.GitHubRepo, GitHubBranch: e.Doc.GitHubBranch,
			ChangeMatchExpressions: e.Doc.ChangeMatchExpressions, CodePipelineName: e.Doc.CodePipelineName,
			Valid: e.Problem == "", Problem: e.Problem, Warnings: e.Warnings}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func newRulesGet() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var a ruleAddress
	cmd := &cobra.Command{
		Use:   "get [KEY]",
		Short: "Print one stored rule document",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := a.key(sf.prefix, args)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			doc, err := st.Get(cmd.Context(), key)
			if err != nil {
				return err
			}
			return writeEntriesJSONOne(cmd.OutOrStdout(), key, doc)
		},
	}
	a.register(cmd)
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}

func writeEntriesJSONOne(w io.Writer, key string, doc store.Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(entryJSON{Key: key, GitHubRepo: doc.GitHubRepo, GitHubBranch: doc.GitHubBranch,
		ChangeMatchExpressions: doc.ChangeMatchExpressions, CodePipelineName: doc.CodePipelineName, Valid: true})
}

func newRulesRm() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var a ruleAddress
	cmd := &cobra.Command{
		Use:   "rm [KEY]",
		Short: "Remove a stored rule",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := a.key(sf.prefix, args)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Delete(cmd.Context(), key); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "removed", key)
			return nil
		},
	}
	a.register(cmd)
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}

func newRulesValidate() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check every stored rule; exit 1 if any is invalid",
		Long: `validate reads every stored document and names each one that cannot be used and
why: unreadable JSON, a missing field, an invalid pipeline name, an expression
RE2 rejects, or a key that the lookup for its repository and branch never
lists. It also warns about legal rules that are probably mistakes, such as an
empty expression that matches every path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			entries, err := st.List(cmd.Context(), "", "")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			invalid, warned := 0, 0
			for _, e := range entries {
				if e.Problem != "" {
					invalid++
					fmt.Fprintf(out, "INVALID %s: %s\n", e.Key, e.Problem)
				}
				for _, w := range e.Warnings {
					warned++
					fmt.Fprintf(out, "WARNING %s: %s\n", e.Key, w)
				}
			}
			fmt.Fprintf(out, "%d rules, %d invalid, %d warnings\n", len(entries), invalid, warned)
			if invalid > 0 {
				return exitError(1)
			}
			return nil
		},
	}
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}
