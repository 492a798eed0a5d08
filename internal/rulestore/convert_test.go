package rulestore

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/rules"
	"github.com/monohook/monohook/internal/trigger"
)

// Whatever a seed rule's fields hold, the converted document says exactly
// them and nothing more: a value cannot end its line and add a field.
func TestConvertSeedKeepsValuesInTheirFields(t *testing.T) {
	docs := []Document{
		{GitHubRepo: "mono", GitHubBranch: "main\ntags: [\"**\"]\non_incomplete: skip", ChangeMatchExpressions: "a/.*", CodePipelineName: "p"},
		{GitHubRepo: "mono", GitHubBranch: "main", ChangeMatchExpressions: "a/.*\npaths: [\"**\"]", CodePipelineName: "p\ntarget:\n  type: exec"},
		{GitHubRepo: "mono\" # x", GitHubBranch: "release/*: {x}", ChangeMatchExpressions: " #a , 'b', \"c\", d: e,!f", CodePipelineName: "p-1"},
		{GitHubRepo: "mono", GitHubBranch: "feat/ünïcode\u2028x", ChangeMatchExpressions: "", CodePipelineName: "p"},
		{GitHubRepo: "mono", GitHubBranch: "--- !!binary", ChangeMatchExpressions: "&anchor, *alias, |, >", CodePipelineName: "p"},
	}
	for _, d := range docs {
		out, err := ConvertSeed(d, "acme")
		if err != nil {
			t.Fatalf("%q: %v", d.GitHubBranch, err)
		}
		spec, err := trigger.ParseSpec(out)
		if err != nil {
			t.Fatalf("%q: the converted document does not parse: %v\n%s", d.GitHubBranch, err, out)
		}
		want := trigger.Spec{
			Repository: "acme/" + d.GitHubRepo,
			Events:     []string{"push"},
			Branches:   []string{escapeGlob(d.GitHubBranch)},
			PathRegex:  rules.SplitSeed(d.ChangeMatchExpressions),
			Target:     trigger.NewTarget("codepipeline", map[string]string{"pipeline": d.CodePipelineName}),
		}
		if spec.Repository != want.Repository || !slices.Equal(spec.Events, want.Events) || !slices.Equal(spec.Branches, want.Branches) ||
			!slices.Equal(spec.PathRegex, want.PathRegex) || spec.Target.Type != want.Target.Type || !bytes.Equal(spec.Target.Fields, want.Target.Fields) ||
			spec.Tags != nil || spec.Paths != nil || spec.OnIncomplete != "" {
			t.Errorf("%q converted to\n%+v\nwant\n%+v\n%s", d.GitHubBranch, spec, want, out)
		}
		if lines := strings.Count(strings.SplitN(string(out), "\n", 2)[0], "\n"); lines != 0 || !strings.HasPrefix(string(out), "# converted") {
			t.Errorf("the comment is not one line:\n%s", out)
		}
	}
}

// A seed document whose repository or branch holds a control character is
// unusable (GitHub and git allow none there), so it is not converted.
func TestSeedRuleRefusesControlCharacters(t *testing.T) {
	for _, d := range []Document{
		{GitHubRepo: "mono", GitHubBranch: "main\ntags: [\"**\"]", ChangeMatchExpressions: "a", CodePipelineName: "p"},
		{GitHubRepo: "mono\x1b[31m", GitHubBranch: "main", ChangeMatchExpressions: "a", CodePipelineName: "p"},
		{GitHubRepo: "mono", GitHubBranch: "main\u0085", ChangeMatchExpressions: "a", CodePipelineName: "p"},
	} {
		if _, err := trigger.NewSeedRule("k", d.GitHubRepo, d.GitHubBranch, d.CodePipelineName, d.ChangeMatchExpressions); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("%q %q: %v", d.GitHubRepo, d.GitHubBranch, err)
		}
	}
}
