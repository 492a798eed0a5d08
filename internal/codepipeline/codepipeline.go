// Package codepipeline starts AWS CodePipeline pipelines.
package codepipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/smithy-go"

	"github.com/monohook/monohook/internal/trigger"
)

// permanent are the error codes a retry would only repeat.
var permanent = map[string]bool{
	"PipelineNotFoundException":        true,
	"PipelineVersionNotFoundException": true,
	"ValidationException":              true,
	"AccessDeniedException":            true,
	"UnrecognizedClientException":      true,
	"InvalidSignatureException":        true,
}

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

// Start starts pipeline with token as clientRequestToken, so a retried
// start of the same delivery does not start a second execution.
func (s *Starter) Start(ctx context.Context, pipeline, token string) (string, error) {
	out, err := s.client.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{
		Name:               aws.String(pipeline),
		ClientRequestToken: aws.String(token),
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			// Lead with the AWS error code: it is what a person searches for.
			if permanent[ae.ErrorCode()] {
				return "", fmt.Errorf("%s (%w): %w", ae.ErrorCode(), trigger.ErrPermanent, err)
			}
			return "", fmt.Errorf("%s: %w", ae.ErrorCode(), err)
		}
		return "", fmt.Errorf("start pipeline %s: %w", pipeline, err)
	}
	return aws.ToString(out.PipelineExecutionId), nil
}
