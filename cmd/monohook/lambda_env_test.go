package main

import (
	"strings"
	"testing"
)

// The status role needs GitHub credentials; the eval and status roles
// read them, and the reporting mode, with a clear error for a bad value.
func TestLambdaGitHubEnvironment(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string // an error containing this; "" for none
	}{
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "status"}, "MONOHOOK_GITHUB_TOKEN or MONOHOOK_GITHUB_APP_ID"},
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "status", "MONOHOOK_GITHUB_TOKEN": "t"}, ""},
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "eval", "MONOHOOK_GITHUB_APP_ID": "x1"}, "MONOHOOK_GITHUB_APP_ID is \"x1\""},
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "eval", "MONOHOOK_GITHUB_INSTALLATION_ID": "-3"}, "MONOHOOK_GITHUB_INSTALLATION_ID"},
	} {
		for _, k := range []string{"MONOHOOK_LAMBDA_ROLE", "MONOHOOK_GITHUB_TOKEN", "MONOHOOK_GITHUB_APP_ID", "MONOHOOK_GITHUB_INSTALLATION_ID"} {
			t.Setenv(k, c.env[k])
		}
		t.Setenv("MONOHOOK_STORE", "mem://")
		_, err := readLambdaEnv()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: error %v, want %q", c.env, err, c.want)
		}
	}

	for _, c := range []struct {
		token, report string
		want          string // "checks", "statuses", "none" or an error's text
	}{
		{"t", "", "statuses"},
		{"t", "none", "none"},
		{"t", "checks", "needs a GitHub App"},
		{"", "", "none"},
		{"", "statuses", "needs GitHub credentials"},
		{"t", "always", `"always"`},
	} {
		env := lambdaEnv{Report: c.report}
		env.GitHub.Token = c.token
		_, rep, err := lambdaReporter(env)
		got := "none"
		switch {
		case err != nil:
			got = err.Error()
		case rep != nil && rep.Statuses:
			got = "statuses"
		case rep != nil:
			got = "checks"
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("token %q, MONOHOOK_GITHUB_REPORT %q: %s, want %s", c.token, c.report, got, c.want)
		}
	}
}
