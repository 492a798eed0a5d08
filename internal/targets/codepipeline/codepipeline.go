// Package codepipeline is the codepipeline target: AWS CodePipeline
// pipelines, which seed rules start too. It validates a target's fields
// (Check) and starts executions (Starter); looking up the result of an
// execution it started belongs here as well.
package codepipeline

import (
	"context"
	"maps"
	"net/url"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/monohook/monohook/internal/awserr"
	"github.com/monohook/monohook/internal/targets/render"
	"github.com/monohook/monohook/internal/trigger"
)

// Type is how rules name this kind; it is the seed format's own.
const Type = trigger.SeedTarget

// Spec is a codepipeline target's fields: Pipeline; with SourceRevision,
// the run builds the pushed commit (V2 sourceRevisions for the source
// action SourceAction). Variables are pipeline variables (V2), each a
// template.
type Spec struct {
	Pipeline       string            `json:"pipeline,omitempty"`
	SourceRevision bool              `json:"source_revision,omitempty"`
	SourceAction   string            `json:"source_action,omitempty"`
	Variables      map[string]string `json:"variables,omitempty"`
}

// Check validates a codepipeline target. Its starts go by the plain
// pipeline name, so a seed rule and a v2 rule naming one pipeline start
// it once per push.
func Check(t trigger.Target) (trigger.Target, string, error) {
	var s Spec
	if err := t.DecodeStrict(&s); err != nil {
		return t, "", err
	}
	c := render.NewCheck(false)
	c.Variables(s.Variables)
	if !trigger.ValidPipelineName(s.Pipeline) {
		c.Failf("pipeline %q: 1-100 of A-Z a-z 0-9 . @ - _", s.Pipeline)
	}
	if s.SourceRevision && s.SourceAction == "" {
		c.Failf("source_action: source_revision needs the name of the pipeline's source action")
	}
	return trigger.NewTarget(Type, s), s.Pipeline, c.Err()
}

// permanent are the error codes of this service a retry would only
// repeat (authentication errors are awserr's).
var permanent = []string{"PipelineNotFoundException", "PipelineVersionNotFoundException", "ValidationException"}

// Starter starts pipelines with StartPipelineExecution. Throttling and
// transient errors are retried by the SDK's standard retryer.
type Starter struct {
	client *codepipeline.Client
	region string
}

// New returns a Starter using cfg (from config.LoadDefaultConfig, so region,
// profiles, roles and AWS_ENDPOINT_URL_CODEPIPELINE apply).
func New(cfg aws.Config) *Starter {
	return &Starter{client: codepipeline.NewFromConfig(cfg), region: cfg.Region}
}

// pipelineOf is the pipeline req starts: its target's, or for a seed
// rule the start's name.
func pipelineOf(req trigger.StartRequest) (string, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return "", err
	}
	if t.Pipeline != "" {
		return t.Pipeline, nil
	}
	return req.Name, nil
}

// consoleURL is the AWS console's page of an execution.
func consoleURL(region, pipeline, id string) string {
	return "https://" + region + ".console.aws.amazon.com/codesuite/codepipeline/pipelines/" + url.PathEscape(pipeline) +
		"/executions/" + url.PathEscape(id) + "/timeline?region=" + url.QueryEscape(region)
}

// Start starts the pipeline with the request's token as
// clientRequestToken, so a retried start of the same delivery does not
// start a second execution. A v2 target may pin the run to the pushed
// commit (sourceRevisions) and set pipeline variables (V2 pipelines).
// A seed rule's start has no Target: it starts the pipeline named.
func (s *Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Started{}, err
	}
	pipeline, err := pipelineOf(req)
	if err != nil {
		return trigger.Started{}, err
	}
	in := &codepipeline.StartPipelineExecutionInput{
		Name:               aws.String(pipeline),
		ClientRequestToken: aws.String(req.Token),
	}
	if t.SourceRevision {
		in.SourceRevisions = []types.SourceRevisionOverride{{
			ActionName:    aws.String(t.SourceAction),
			RevisionType:  types.SourceRevisionTypeCommitId,
			RevisionValue: aws.String(req.Data.SHA),
		}}
	}
	vars, err := render.Map(ctx, t.Variables, req.Data, nil)
	if err != nil {
		return trigger.Started{}, err
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		in.Variables = append(in.Variables, types.PipelineVariable{Name: aws.String(k), Value: aws.String(vars[k])})
	}
	out, err := s.client.StartPipelineExecution(ctx, in)
	if err != nil {
		return trigger.Started{}, awserr.Classify(err, "start pipeline "+pipeline, permanent...)
	}
	id := aws.ToString(out.PipelineExecutionId)
	return trigger.Started{ID: id, Progress: trigger.Progress{URL: consoleURL(s.region, pipeline, id)}}, nil
}
