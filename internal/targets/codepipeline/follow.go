package codepipeline

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/monohook/monohook/internal/awserr"
	"github.com/monohook/monohook/internal/trigger"
)

// Follower asks GetPipelineExecution how an execution is doing
// (codepipeline:GetPipelineExecution).
type Follower struct {
	client *codepipeline.Client
	region string
}

// NewFollower returns a Follower using cfg, as New does.
func NewFollower(cfg aws.Config) *Follower {
	return &Follower{client: codepipeline.NewFromConfig(cfg), region: cfg.Region}
}

// followPermanent: the execution, or the pipeline, is not there to ask
// about, however often one asks.
var followPermanent = []string{"PipelineNotFoundException", "PipelineExecutionNotFoundException", "ValidationException"}

// Follow implements trigger.Follower.
func (f *Follower) Follow(ctx context.Context, req trigger.StartRequest, started trigger.Started) (trigger.Progress, error) {
	pipeline, err := pipelineOf(req)
	if err != nil {
		return trigger.Progress{}, err
	}
	out, err := f.client.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{
		PipelineName: aws.String(pipeline), PipelineExecutionId: aws.String(started.ID)})
	if err != nil {
		return trigger.Progress{}, awserr.Classify(err, "follow execution "+started.ID+" of "+pipeline, followPermanent...)
	}
	if out.PipelineExecution == nil {
		return trigger.Progress{}, fmt.Errorf("follow execution %s of %s: no execution in the answer", started.ID, pipeline)
	}
	return progress(out.PipelineExecution.Status, aws.ToString(out.PipelineExecution.StatusSummary), consoleURL(f.region, pipeline, started.ID)), nil
}

// progress says what an execution's status means; a status this code does
// not know yet is taken for one still running, so that a new one never
// ends a follow early.
func progress(status types.PipelineExecutionStatus, summary, url string) trigger.Progress {
	p := trigger.Progress{URL: url, Detail: string(status)}
	if summary != "" {
		p.Detail += ": " + summary
	}
	switch status {
	case types.PipelineExecutionStatusSucceeded:
		p.Done, p.Conclusion = true, trigger.Success
	case types.PipelineExecutionStatusFailed:
		p.Done, p.Conclusion = true, trigger.Failure
	case types.PipelineExecutionStatusStopped, types.PipelineExecutionStatusCancelled, types.PipelineExecutionStatusSuperseded:
		p.Done, p.Conclusion = true, trigger.Cancelled
	}
	return p
}
