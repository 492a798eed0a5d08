// Package codebuild starts AWS CodeBuild builds.
package codebuild

import (
	"context"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codebuild/types"

	"github.com/monohook/monohook/internal/awserr"
	"github.com/monohook/monohook/internal/trigger"
)

// permanent are the error codes of this service a retry would only
// repeat (authentication errors are awserr's).
var permanent = []string{"ResourceNotFoundException", "InvalidInputException"}

// Starter starts builds with StartBuild. Throttling and transient errors
// are retried by the SDK's standard retryer.
type Starter struct {
	client *codebuild.Client
}

// New returns a Starter using cfg (AWS_ENDPOINT_URL_CODEBUILD applies).
func New(cfg aws.Config) *Starter {
	return &Starter{client: codebuild.NewFromConfig(cfg)}
}

// Start builds the target's project at the pushed commit (sourceVersion),
// with the target's variables as plain-text environment variables. The
// request's token is StartBuild's idempotencyToken: CodeBuild honours it
// for 5 minutes, which covers the retries of one start.
func (s *Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	vars, err := trigger.RenderMap(ctx, req.Target.Variables, req.Data, nil)
	if err != nil {
		return trigger.Started{}, err
	}
	in := &codebuild.StartBuildInput{
		ProjectName:      aws.String(req.Target.Project),
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
		return trigger.Started{}, awserr.Classify(err, "start build of "+req.Target.Project, permanent...)
	}
	var id string
	if out.Build != nil {
		id = aws.ToString(out.Build.Id)
	}
	return trigger.Started{ID: id}, nil
}
