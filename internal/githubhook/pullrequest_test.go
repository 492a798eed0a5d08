package githubhook

import (
	"strings"
	"testing"
)

func TestParsePullRequest(t *testing.T) {
	body := `{"action":"closed","number":42,"pull_request":{"merged":true,"base":{"ref":"main","sha":"b1"},"head":{"ref":"feature","sha":"h1"}},
	 "repository":{"name":"mono","full_name":"acme/mono","default_branch":"main"},"sender":{"login":"x"}}`
	p, err := ParsePullRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if p.Event != "pull_request" || p.Action != "merged" || p.PullRequest != 42 || p.BaseBranch != "main" || p.After != "h1" || p.Before != "b1" ||
		p.FullName != "acme/mono" || p.Ref != "refs/pull/42/head" || p.Incomplete != IncompletePullRequest {
		t.Errorf("%+v", p)
	}
	for action, acts := range map[string]bool{"opened": true, "synchronize": true, "reopened": true, "merged": true, "closed": false, "labeled": false, "edited": false} {
		if PullRequestActs(action) != acts {
			t.Errorf("%s: acts %v", action, !acts)
		}
	}
	for bad, want := range map[string]string{
		`{"action":"opened","number":1}`:                                                    "no pull_request",
		`{"action":"opened","number":1,"pull_request":{},"repository":{"name":"m"}}`:        "full_name",
		`{"action":"opened","pull_request":{},"repository":{"name":"m","full_name":"a/m"}}`: "no number",
		`{"action":`: "pull_request payload",
		`{"action":"opened","number":1,"pull_request":{"head":{"sha":"h"}},"repository":{"name":"m","full_name":"a/m"}}`:                   "no pull_request.base.ref",
		`{"action":"opened","number":1,"pull_request":{"base":{"ref":"main"}},"repository":{"name":"m","full_name":"a/m"}}`:                "no pull_request.head.sha",
		`{"action":"opened","number":1,"pull_request":{"base":{"ref":""},"head":{"sha":"h"}},"repository":{"name":"m","full_name":"a/m"}}`: "no pull_request.base.ref",
	} {
		if _, err := ParsePullRequest([]byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", bad, err, want)
		}
	}
}
