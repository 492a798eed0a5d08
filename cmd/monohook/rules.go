package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
)

func newRules() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Manage the stored rules (the predecessor's config documents)",
		Long: `Two formats of rules live side by side in the store.

Seed rules (the predecessor's config documents): for pushes to this repository
and branch, start this pipeline when a changed path matches one of these
comma-separated regular expressions (each anchored at the start of the path).
They are stored exactly as the predecessor's CloudFormation custom resource
stored them, so a bucket can be shared with it or migrated as is.

Rules v2 (YAML or JSON, one document per rule under --v2-prefix): a repository
(owner/name), events (push, pull_request, merge_group), branch and tag filters, path filters
with GitHub Actions glob semantics and "!" excludes (or regular expressions),
and a target: codepipeline, codebuild, github-actions, http or exec. See the
README. 'rules convert' turns a seed rule into v2.`,
	}
	cmd.AddCommand(newRulesPut(), newRulesList(), newRulesGet(), newRulesRm(), newRulesValidate(), newRulesConvert())
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

func (a *ruleAddress) key(cmd *cobra.Command, prefix string, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	if a.repo == "" || a.branch == "" || a.pipeline == "" {
		return "", withUsage(cmd, errors.New("name the rule by KEY or by --repo, --branch and --pipeline"))
	}
	return rulestore.SeedKey(prefix, a.repo, a.branch, a.pipeline), nil
}

// openStore opens the rule store for a command that reads it or changes
// what is there (and eval): a missing data directory is an error.
func openStore(ctx context.Context, sf *storeFlags, lf *logFlags) (*rulestore.Store, error) {
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return nil, err
	}
	st, _, err := sf.openExisting(ctx, log)
	return st, err
}

// openStoreToPut opens the rule store for rules put, which creates the
// data directory when it is missing (for this user only, as serve does:
// its secret and deliveries are kept there too).
func openStoreToPut(ctx context.Context, sf *storeFlags, lf *logFlags) (*rulestore.Store, error) {
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return nil, err
	}
	if sf.url == "" {
		if err := os.MkdirAll(sf.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	st, _, err := sf.open(ctx, log)
	return st, err
}

func newRulesPut() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var a ruleAddress
	var match, file, name string
	cmd := &cobra.Command{
		Use:   "put",
		Short: "Store a rule (replacing the one of the same name, or of the same repo, branch and pipeline)",
		Example: `  monohook rules put --repo monorepo --branch main --pipeline api-deploy --match 'services/api/.*,libs/.*'
  monohook rules put --file api-deploy.yaml          # a v2 rule, named after the file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file != "" {
				return putV2(cmd, &sf, &lf, file, name)
			}
			if a.repo == "" || a.branch == "" || a.pipeline == "" || !cmd.Flags().Changed("match") && os.Getenv(envName("match")) == "" {
				return withUsage(cmd, errors.New("--repo, --branch, --pipeline and --match are required (or --file for a v2 rule)"))
			}
			st, err := openStoreToPut(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			key, warnings, err := st.Put(cmd.Context(), rulestore.Document{
				GitHubRepo: a.repo, GitHubBranch: a.branch, CodePipelineName: a.pipeline, ChangeMatchExpressions: match,
			})
			if err != nil {
				return err
			}
			for _, w := range warnings {
				printf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			printf(cmd.OutOrStdout(), "%s\n", key)
			return nil
		},
	}
	a.register(cmd)
	cmd.Flags().StringVar(&match, "match", "", "comma-separated regular expressions, each matched at the start of a changed path")
	cmd.Flags().StringVar(&file, "file", "", "a v2 rule document (YAML or JSON; - for standard input) instead of the seed flags")
	cmd.Flags().StringVar(&name, "name", "", "name of the v2 rule (default: the file's name without its extension)")
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
			v2, err := st.ListV2(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeEntriesJSON(cmd.OutOrStdout(), entries, v2)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			defer printV2List(cmd.OutOrStdout(), v2)
			fmt.Fprintln(tw, "REPO\tBRANCH\tPIPELINE\tMATCH\tSTATUS")
			for _, e := range entries {
				status := "ok"
				if e.Problem != "" {
					status = "INVALID (rules validate says why)"
				} else if len(e.Warnings) > 0 {
					status = "warning"
				}
				printf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Doc.GitHubRepo, e.Doc.GitHubBranch, e.Doc.CodePipelineName, e.Doc.ChangeMatchExpressions, status)
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
	// A v2 rule: its document as read.
	Format string        `json:"format,omitempty"`
	Spec   *trigger.Spec `json:"spec,omitempty"`
}

func writeEntriesJSON(w io.Writer, entries []rulestore.Entry, v2 []rulestore.V2Entry) error {
	out := make([]entryJSON, len(entries))
	for i, e := range entries {
		out[i] = entryJSON{Key: e.Key, GitHubRepo: e.Doc.GitHubRepo, GitHubBranch: e.Doc.GitHubBranch,
			ChangeMatchExpressions: e.Doc.ChangeMatchExpressions, CodePipelineName: e.Doc.CodePipelineName,
			Valid: e.Problem == "", Problem: e.Problem, Warnings: e.Warnings}
	}
	for _, e := range v2 {
		j := entryJSON{Key: e.Key, Format: "v2", Valid: e.Problem == "", Problem: e.Problem}
		if e.Rule != nil {
			j.Spec = &e.Rule.V2.Spec
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(jsonOut(w))
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
			key, err := a.key(cmd, sf.prefix, args)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), &sf, &lf)
			if err != nil {
				return err
			}
			defer st.Close()
			if strings.HasPrefix(key, st.V2Prefix()+"/") {
				b, err := st.Raw(cmd.Context(), key)
				if err != nil {
					return err
				}
				_, err = io.WriteString(cmd.OutOrStdout(), printableLines(string(b)))
				return err
			}
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

func writeEntriesJSONOne(w io.Writer, key string, doc rulestore.Document) error {
	enc := json.NewEncoder(jsonOut(w))
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
			key, err := a.key(cmd, sf.prefix, args)
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
			printf(cmd.OutOrStdout(), "removed %s\n", key)
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
			v2, err := st.ListV2(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			invalid, warned := 0, 0
			for _, e := range v2 {
				if e.Problem != "" {
					invalid++
					printf(out, "INVALID %s: %s\n", e.Key, e.Problem)
				}
			}
			for _, e := range entries {
				if e.Problem != "" {
					invalid++
					printf(out, "INVALID %s: %s\n", e.Key, e.Problem)
				}
				for _, w := range e.Warnings {
					warned++
					printf(out, "WARNING %s: %s\n", e.Key, w)
				}
			}
			fmt.Fprintf(out, "%s, %d invalid, %s\n", plural(len(entries)+len(v2), "rule", "rules"), invalid, plural(warned, "warning", "warnings"))
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

func putV2(cmd *cobra.Command, sf *storeFlags, lf *logFlags, file, name string) error {
	b, err := readInput(file)
	if err != nil {
		return err
	}
	if name == "" {
		if file == "-" {
			return errors.New("--name is needed with --file -")
		}
		name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	st, err := openStoreToPut(cmd.Context(), sf, lf)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := st.PutV2(cmd.Context(), name, b)
	if err != nil {
		return err
	}
	printf(cmd.OutOrStdout(), "%s\n", key)
	return nil
}

func printV2List(w io.Writer, entries []rulestore.V2Entry) {
	if len(entries) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "V2 RULE\tREPOSITORY\tEVENTS\tREFS\tTARGET\tPATHS\tSTATUS")
	for _, e := range entries {
		if e.Rule == nil {
			printf(tw, "%s\t\t\t\t\t\tINVALID (rules validate says why)\n", e.Key)
			continue
		}
		s := e.Rule.V2.Spec
		events := strings.Join(s.Events, ",")
		if events == "" {
			events = "push"
		}
		refs := strings.Join(s.Branches, ",")
		if len(s.Tags) > 0 {
			refs = strings.TrimPrefix(refs+",tags:"+strings.Join(s.Tags, ","), ",")
		}
		if refs == "" {
			refs = "(every branch)"
		}
		printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\tok\n", e.Key, s.Repository, events, refs, e.Rule.Pipeline, e.Rule.Expressions)
	}
	_ = tw.Flush()
}

func newRulesConvert() *cobra.Command {
	var sf storeFlags
	var lf logFlags
	var a ruleAddress
	var owner, name string
	var put bool
	cmd := &cobra.Command{
		Use:   "convert [KEY]",
		Short: "Turn a seed rule into a v2 rule (printed as YAML, or stored with --put)",
		Long: `convert reads a seed rule and writes the v2 rule that decides the same pushes:
its repository (with --owner), its branch as a branches filter, its expressions
as path_regex (the same regular expressions, matched the same way), and its
pipeline as a codepipeline target. The seed rule is left in place: remove it
with 'rules rm' once the v2 rule is stored, or both start the pipeline (once
per push, as the v2 rule says).`,
		Example: `  monohook rules convert --repo monorepo --branch main --pipeline api-deploy --owner acme --put`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if owner == "" {
				return withUsage(cmd, errors.New("--owner is needed: v2 rules name the repository as owner/name"))
			}
			key, err := a.key(cmd, sf.prefix, args)
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
			// Only a usable rule is converted: a document whose fields the
			// predecessor accepted only by accident (a branch with a
			// newline) is refused with the reason, not carried over.
			if _, err := trigger.NewSeedRule(key, doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName, doc.ChangeMatchExpressions); err != nil {
				return fmt.Errorf("%s cannot be converted: %w", key, err)
			}
			if strings.ContainsFunc(owner, unicode.IsControl) || strings.Contains(owner, "/") {
				return fmt.Errorf("--owner %q: an owner is one name, without / or control characters", owner)
			}
			out, err := rulestore.ConvertSeed(doc, owner)
			if err != nil {
				return err
			}
			if !put {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			if name == "" {
				name = doc.GitHubRepo + "-" + strings.ReplaceAll(doc.GitHubBranch, "/", "-") + "-" + doc.CodePipelineName
			}
			v2key, err := st.PutV2(cmd.Context(), name, out)
			if err != nil {
				return err
			}
			printf(cmd.OutOrStdout(), "%s\n", v2key)
			return nil
		},
	}
	a.register(cmd)
	cmd.Flags().StringVar(&owner, "owner", "", "the repository's owner (organization or user)")
	cmd.Flags().BoolVar(&put, "put", false, "store the v2 rule instead of printing it")
	cmd.Flags().StringVar(&name, "name", "", "name of the stored v2 rule (default: repo-branch-pipeline)")
	sf.register(cmd.Flags())
	lf.register(cmd.Flags(), "warn")
	return cmd
}
