package trigger_test

import (
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

func TestReportFieldIsValidated(t *testing.T) {
	for doc, want := range map[string]string{
		`report: {name: "ci/api", disabled: true}`:           "name and disabled",
		`report: {name: "` + strings.Repeat("x", 101) + `"}`: "at most 100",
		`report: {name: "a\u0007b"}`:                         "control character",
		`report: {name: " api"}`:                             "space",
		`report: {nmae: "api"}`:                              `unknown field "nmae"`, //nolint:misspell // a misspelt field is the case
	} {
		s, err := trigger.ParseSpec([]byte("repository: acme/mono\ntarget: {type: codepipeline, pipeline: api}\n" + doc))
		if err == nil {
			_, err = trigger.NewV2Rule("k", s, targets.Registry{})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	r := v2rule(t, "k", "repository: acme/mono\ntarget: {type: codepipeline, pipeline: api}\nreport: {name: ci/api}")
	if r.CheckName() != "ci/api" {
		t.Errorf("name %q", r.CheckName())
	}
	r = v2rule(t, "k", "repository: acme/mono\ntarget: {type: codepipeline, pipeline: api}")
	if r.CheckName() != "monohook/api" {
		t.Errorf("default name %q", r.CheckName())
	}
}
