// Package codebuild starts AWS CodeBuild builds.
package codebuild

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codebuild/types"
	"github.com/aws/smithy-go"

	"github.com/monohook/monohook/internal/trigger"
)

// permanent are the error codes a retry would only repeat.
var permanent = map[string]bool{
	"ResourceNotFoundException":   true,
	"InvalidInputException":       true,
	"AccessDeniedException":       true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
}

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
		var ae smithy.APIError
		if errors.As(err, &ae) {
			if permanent[ae.ErrorCode()] {
				return trigger.Started{}, fmt.Errorf("%s (%w): %w", ae.ErrorCode(), trigger.ErrPermanent, err)
			}
			return trigger.Started{}, fmt.Errorf("%s: %w", ae.ErrorCode(), err)
		}
		return trigger.Started{}, fmt.Errorf("start build of %s: %w", req.Target.Project, err)
	}
	var id string
	if out.Build != nil {
		id = aws.ToString(out.Build.Id)
	}
	return trigger.Started{ID: id}, nil
}
