// Package codepipeline starts AWS CodePipeline pipelines.
package codepipeline

import (
	"context"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/monohook/monohook/internal/awserr"
	"github.com/monohook/monohook/internal/trigger"
)

// permanent are the error codes of this service a retry would only
// repeat (authentication errors are awserr's).
var permanent = []string{"PipelineNotFoundException", "PipelineVersionNotFoundException", "ValidationException"}

// Starter starts pipelines with StartPipelineExecution. Throttling and
// transient errors are retried by the SDK's standard retryer.
type Starter struct {
	client *codepipeline.Client
}

// New returns a Starter using cfg (from config.LoadDefaultConfig, so region,
// profiles, roles and AWS_ENDPOINT_URL_CODEPIPELINE apply).
func New(cfg aws.Config) *Starter {
	return &Starter{client: codepipeline.NewFromConfig(cfg)}
}

// Start starts the pipeline with the request's token as
// clientRequestToken, so a retried start of the same delivery does not
// start a second execution. A v2 target may pin the run to the pushed
// commit (sourceRevisions) and set pipeline variables (V2 pipelines).
func (s *Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	pipeline := req.Name
	if req.Target.Pipeline != "" {
		pipeline = req.Target.Pipeline
	}
	in := &codepipeline.StartPipelineExecutionInput{
		Name:               aws.String(pipeline),
		ClientRequestToken: aws.String(req.Token),
	}
	if req.Target.SourceRevision {
		in.SourceRevisions = []types.SourceRevisionOverride{{
			ActionName:    aws.String(req.Target.SourceAction),
			RevisionType:  types.SourceRevisionTypeCommitId,
			RevisionValue: aws.String(req.Data.SHA),
		}}
	}
	vars, err := trigger.RenderMap(ctx, req.Target.Variables, req.Data, nil)
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
	return trigger.Started{ID: aws.ToString(out.PipelineExecutionId)}, nil
}
