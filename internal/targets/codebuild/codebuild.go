// Package codebuild is the codebuild target: AWS CodeBuild builds. It
// validates a target's fields (Check) and starts builds (Starter);
// looking up the result of a build it started belongs here as well.
package codebuild

import (
	"context"
	"maps"
	"net/url"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codebuild/types"

	"github.com/monohook/monohook/internal/awserr"
	"github.com/monohook/monohook/internal/targets/render"
	"github.com/monohook/monohook/internal/trigger"
)

// Type is how rules name this kind.
const Type = "codebuild"

// Spec is a codebuild target's fields: Project, built at the pushed
// commit; Variables (templates) become environment variables of the
// build.
type Spec struct {
	Variables map[string]string `json:"variables,omitempty"`
	Project   string            `json:"project,omitempty"`
}

// projectName is CodeBuild's pattern for project names.
var projectName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-_]{1,254}$`)

// Check validates a codebuild target; its starts go by codebuild:PROJECT.
func Check(t trigger.Target) (trigger.Target, string, error) {
	var s Spec
	if err := t.DecodeStrict(&s); err != nil {
		return t, "", err
	}
	c := render.NewCheck(false)
	c.Variables(s.Variables)
	if !projectName.MatchString(s.Project) {
		c.Failf("project %q: 2-255 of A-Z a-z 0-9 - _, starting with a letter or digit", s.Project)
	}
	return trigger.NewTarget(Type, s), Type + ":" + s.Project, c.Err()
}

// permanent are the error codes of this service a retry would only
// repeat (authentication errors are awserr's).
var permanent = []string{"ResourceNotFoundException", "InvalidInputException"}

// Starter starts builds with StartBuild. Throttling and transient errors
// are retried by the SDK's standard retryer.
type Starter struct {
	client *codebuild.Client
	region string
}

// New returns a Starter using cfg (AWS_ENDPOINT_URL_CODEBUILD applies).
func New(cfg aws.Config) *Starter {
	return &Starter{client: codebuild.NewFromConfig(cfg), region: cfg.Region}
}

// consoleURL is the AWS console's page of a build (its id is
// PROJECT:UUID).
func consoleURL(region, project, id string) string {
	return "https://" + region + ".console.aws.amazon.com/codesuite/codebuild/projects/" + url.PathEscape(project) +
		"/build/" + url.PathEscape(id) + "/?region=" + url.QueryEscape(region)
}

// Start builds the target's project at the pushed commit (sourceVersion),
// with the target's variables as plain-text environment variables. The
// request's token is StartBuild's idempotencyToken: CodeBuild honours it
// for 5 minutes, which covers the retries of one start.
func (s *Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Started{}, err
	}
	vars, err := render.Map(ctx, t.Variables, req.Data, nil)
	if err != nil {
		return trigger.Started{}, err
	}
	in := &codebuild.StartBuildInput{
		ProjectName:      aws.String(t.Project),
		IdempotencyToken: aws.String(req.Token),
	}
	if req.Data.SHA != "" {
		in.SourceVersion = aws.String(req.Data.SHA)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		in.EnvironmentVariablesOverride = append(in.EnvironmentVariablesOverride,
			types.EnvironmentVariable{Name: aws.String(k), Value: aws.String(vars[k]), Type: types.EnvironmentVariableTypePlaintext})
	}
	out, err := s.client.StartBuild(ctx, in)
	if err != nil {
		return trigger.Started{}, awserr.Classify(err, "start build of "+t.Project, permanent...)
	}
	var id string
	if out.Build != nil {
		id = aws.ToString(out.Build.Id)
	}
	return trigger.Started{ID: id, Progress: trigger.Progress{URL: consoleURL(s.region, t.Project, id)}}, nil
}
