package codebuild

import (
	"github.com/aws/aws-sdk-go-v2/service/codebuild/types"

	"github.com/monohook/monohook/internal/trigger"
)

// EventProgress says what a "CodeBuild Build State Change" event's
// build-status means, as Follow says it of the build BatchGetBuilds
// answers (the event names statuses as the API does). id is the build's
// id (PROJECT:UUID).
func EventProgress(status, region, project, id string) trigger.Progress {
	return progress(&types.Build{BuildStatus: types.StatusType(status)}, consoleURL(region, project, id))
}
