package trigger_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/trigger"
)

// A plan's starts: one per selected name, with the round's token; a v2
// rule's start carries its target and what its templates see of the
// change set as completed, a seed rule's start neither.
func TestPlanStarts(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "main", "api", "api/.*")
	if _, err := e.store.PutV2(context.Background(), "web", []byte("repository: org/repo\npaths: [\"web/**\"]\ntarget: {type: codebuild, project: web-ci}\n")); err != nil {
		t.Fatal(err)
	}
	p := push("d1", "refs/heads/main", "api/x.go")
	p.Forced = true
	r, err := e.svc.Load(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	cs := trigger.ChangeSet{Fetched: []string{"web/y.ts"}}
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Round: 2, Rules: r, Changes: cs})
	if len(p.Paths) != 1 || !slices.Equal(plan.Event.Paths, []string{"api/x.go", "web/y.ts"}) || !slices.Equal(plan.Result.Fetched, cs.Fetched) {
		t.Fatalf("event paths %v (given %v), fetched %v", plan.Event.Paths, p.Paths, plan.Result.Fetched)
	}
	if len(plan.Starts) != 2 || len(plan.Result.Start) != 2 {
		t.Fatalf("starts %+v for %v", plan.Starts, plan.Result.Start)
	}
	for i, s := range plan.Starts {
		if s.Name != plan.Result.Start[i] || s.DeliveryID != "d1" || s.Round != 2 || s.Token != trigger.StartToken("d1", 2, s.Name) {
			t.Errorf("start %+v", s)
		}
		if got, ok := plan.Starts.Named(s.Name); !ok || got.Token != s.Token {
			t.Errorf("Named(%q): %+v %v", s.Name, got, ok)
		}
	}
	seed, _ := plan.Starts.Named("api")
	if seed.Target != nil || seed.Data != nil {
		t.Errorf("a seed rule's start carries %+v %+v", seed.Target, seed.Data)
	}
	v2 := plan.Starts[slices.IndexFunc(plan.Starts, func(s trigger.Start) bool { return s.Name != "api" })]
	if v2.Target == nil || v2.Data == nil || v2.Data.ChangedPathsCount != 2 || v2.Data.DeliveryID != "d1" || v2.Data.Branch != "main" {
		t.Errorf("v2 start %+v data %+v", v2, v2.Data)
	}
	req := v2.Request(func(context.Context) ([]string, error) { return plan.Event.Paths, nil })
	if req.Name != v2.Name || req.Token != v2.Token || req.Type() != "codebuild" || req.Data != *v2.Data {
		t.Errorf("request %+v", req)
	}
	if _, ok := plan.Starts.Named("nothing"); ok {
		t.Error("Named found a start that is not planned")
	}
}

// Start jobs queued before the plan existed carry this JSON: it must still
// read, and a start writes the same fields.
func TestStartJSONIsTheQueuedJobs(t *testing.T) {
	old := `{"delivery_id":"d1","round":3,"pipeline":"api","token":"monohook-abc","data":{"Event":"push","SHA":"0123"}}`
	var s trigger.Start
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	if s.DeliveryID != "d1" || s.Round != 3 || s.Name != "api" || s.Token != "monohook-abc" || s.Target != nil || s.Data == nil || s.Data.SHA != "0123" {
		t.Errorf("read %+v", s)
	}
	seed, err := json.Marshal(trigger.Start{DeliveryID: "d1", Round: 0, Name: "api", Token: "monohook-abc"})
	if err != nil || string(seed) != `{"delivery_id":"d1","round":0,"pipeline":"api","token":"monohook-abc"}` {
		t.Errorf("seed start as JSON: %s %v", seed, err)
	}
	var withTarget map[string]json.RawMessage
	b, _ := json.Marshal(trigger.Start{Name: "x", Target: &trigger.Target{}, Data: &trigger.TemplateData{}})
	if err := json.Unmarshal(b, &withTarget); err != nil || withTarget["target"] == nil || withTarget["data"] == nil || len(withTarget) != 6 {
		t.Errorf("v2 start as JSON: %s", b)
	}
}

// Unasked: the payload's reason, and why nothing was asked.
func TestUnasked(t *testing.T) {
	forced := push("d", "refs/heads/main", "a")
	forced.Forced = true
	if got := trigger.Unasked(forced, "eval does not ask").Incomplete; !strings.Contains(got, "forced") || !strings.HasSuffix(got, "; eval does not ask") {
		t.Errorf("forced push: %q", got)
	}
	if got := trigger.Unasked(push("d", "refs/heads/main", "a"), "eval does not ask"); got.Incomplete != "" || got.Fetched != nil {
		t.Errorf("complete push: %+v", got)
	}
}

// Tokens are stored with every start and given to the targets as their
// idempotency keys: a token must never change for the same start.
func TestStartTokenIsStable(t *testing.T) {
	for _, tt := range []struct {
		delivery string
		round    int
		target   string
		want     string
	}{
		{"d", 0, "p", "monohook-11e0f8bc152a9d859de90073b7d93a33814be137"},
		{"72d5ab40-0b6d-11ef-8f1e-5b4c1d3e2f10", 12, "codebuild:web-ci", "monohook-72437cabbe22b059cbb5d2ef2d4522ecf97ac002"},
		{"", 123456789, "x\x00y", "monohook-49c4ec77082b6e5a9e60ffa99302e2fb5c756ad2"},
		{strings.Repeat("d", 300), 1, strings.Repeat("p", 300), "monohook-2f414536f49934bcf6ea4947d89261ecd14d1066"},
	} {
		if got := trigger.StartToken(tt.delivery, tt.round, tt.target); got != tt.want {
			t.Errorf("StartToken(%.20q, %d, %.20q) = %s, want %s", tt.delivery, tt.round, tt.target, got, tt.want)
		}
	}
}
