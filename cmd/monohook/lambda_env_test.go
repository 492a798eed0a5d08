package main

import (
	"strings"
	"testing"
)

// The status role needs GitHub credentials; the eval and status roles
// read them with a clear error for a bad value.
func TestLambdaGitHubEnvironment(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string // an error containing this; "" for none
	}{
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "status"}, "MONOHOOK_GITHUB_TOKEN or MONOHOOK_GITHUB_APP_ID"},
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "status", "MONOHOOK_GITHUB_TOKEN": "t"}, ""},
		{map[string]string{"MONOHOOK_LAMBDA_ROLE": "status", "MONOHOOK_GITHUB_APP_ID": "1"}, ""},
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

	// The App's ids, read for the eval and status functions.
	for _, v := range []string{"x1", "-3"} {
		t.Setenv("MONOHOOK_GITHUB_APP_ID", v)
		if _, err := lambdaTargetFlags(); err == nil || !strings.Contains(err.Error(), `MONOHOOK_GITHUB_APP_ID "`+v+`"`) {
			t.Errorf("MONOHOOK_GITHUB_APP_ID %q: error %v", v, err)
		}
	}
	// The key itself, as the template passes it, where a key file would be.
	t.Setenv("MONOHOOK_GITHUB_APP_ID", "42")
	t.Setenv("MONOHOOK_GITHUB_INSTALLATION_ID", "7")
	t.Setenv("MONOHOOK_GITHUB_APP_KEY", "not a key")
	tf, err := lambdaTargetFlags()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tf.github(); err == nil || !strings.Contains(err.Error(), "GitHub App key") {
		t.Errorf("a bad MONOHOOK_GITHUB_APP_KEY: %v", err)
	}
}
