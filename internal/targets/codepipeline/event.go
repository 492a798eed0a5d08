package codepipeline

import (
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/monohook/monohook/internal/trigger"
)

// eventStatus names the states of EventBridge's "CodePipeline Pipeline
// Execution State Change" events as GetPipelineExecution names them.
var eventStatus = map[string]types.PipelineExecutionStatus{
	"STARTED":    types.PipelineExecutionStatusInProgress,
	"RESUMED":    types.PipelineExecutionStatusInProgress,
	"STOPPING":   types.PipelineExecutionStatusStopping,
	"SUCCEEDED":  types.PipelineExecutionStatusSucceeded,
	"FAILED":     types.PipelineExecutionStatusFailed,
	"STOPPED":    types.PipelineExecutionStatusStopped,
	"CANCELED":   types.PipelineExecutionStatusCancelled,
	"SUPERSEDED": types.PipelineExecutionStatusSuperseded,
}

// EventProgress says what an execution state change event's state means,
// as Follow says it of the status GetPipelineExecution answers: one
// mapping for both. A state this code does not know reads as running.
func EventProgress(state, region, pipeline, id string) trigger.Progress {
	status, ok := eventStatus[state]
	if !ok {
		status = types.PipelineExecutionStatus(state)
	}
	return progress(status, "", consoleURL(region, pipeline, id))
}
