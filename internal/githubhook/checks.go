package githubhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// IncompleteMergeGroup is why a merge group's change set is incomplete
// before the GitHub API is asked: its payload lists no files.
const IncompleteMergeGroup = "a merge_group payload lists no files"

// ParseMergeGroup reads a merge_group event: the merge queue's commit
// (head_sha), evaluated on base_sha...head_sha (the API's comparison),
// its branch filters matched against the base branch.
func ParseMergeGroup(body []byte) (*trigger.Push, error) {
	var pl struct {
		Action     string `json:"action"`
		MergeGroup *struct {
			HeadSHA string `json:"head_sha"`
			HeadRef string `json:"head_ref"`
			BaseSHA string `json:"base_sha"`
			BaseRef string `json:"base_ref"`
		} `json:"merge_group"`
		Repository *struct {
			Name          string `json:"name"`
			FullName      string `json:"full_name"`
			DefaultBranch string `json:"default_branch"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &pl); err != nil {
		return nil, fmt.Errorf("merge_group payload: %w", err)
	}
	switch {
	case pl.MergeGroup == nil:
		return nil, errors.New("merge_group payload: no merge_group")
	case pl.Repository == nil || pl.Repository.Name == "" || pl.Repository.FullName == "":
		return nil, errors.New("merge_group payload: no repository.name or full_name")
	case pl.MergeGroup.HeadSHA == "" || pl.MergeGroup.BaseSHA == "":
		return nil, errors.New("merge_group payload: no merge_group.head_sha or base_sha")
	case !strings.HasPrefix(pl.MergeGroup.BaseRef, "refs/heads/") || len(pl.MergeGroup.BaseRef) == len("refs/heads/"):
		return nil, errors.New("merge_group payload: merge_group.base_ref is not a branch (refs/heads/…)")
	}
	mg := pl.MergeGroup
	ref := mg.HeadRef
	if ref == "" {
		ref = "refs/heads/gh-readonly-queue/" + strings.TrimPrefix(mg.BaseRef, "refs/heads/")
	}
	p := &trigger.Push{
		Event: "merge_group", Action: pl.Action,
		Repo: pl.Repository.Name, FullName: pl.Repository.FullName, DefaultBranch: pl.Repository.DefaultBranch,
		Ref: ref, BaseBranch: strings.TrimPrefix(mg.BaseRef, "refs/heads/"), Before: mg.BaseSHA, After: mg.HeadSHA,
		Incomplete: IncompleteMergeGroup,
	}
	scrubNUL(p)
	return p, nil
}

// app is the GitHub App a check run or suite belongs to.
type app struct {
	ID int64 `json:"id"`
}

// ParseRerequest reads a check_run or check_suite event. ok is set for a
// re-run request ("rerequested") of monohook's: a check run whose
// external id monohook wrote (see report.ExternalID), or a check suite
// (its re-run replays the deliveries of its commit). Any other action,
// such as the echoes of monohook's own writes (created, completed), is
// not ok, and not an error.
func ParseRerequest(event string, body []byte) (r trigger.Rerun, ok bool, err error) {
	var pl struct {
		Action   string `json:"action"`
		CheckRun *struct {
			HeadSHA    string `json:"head_sha"`
			ExternalID string `json:"external_id"`
			App        app    `json:"app"`
		} `json:"check_run"`
		CheckSuite *struct {
			HeadSHA string `json:"head_sha"`
			App     app    `json:"app"`
		} `json:"check_suite"`
		Repository *struct {
			Name string `json:"name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &pl); err != nil {
		return r, false, fmt.Errorf("%s payload: %w", event, err)
	}
	if pl.Repository == nil || pl.Repository.Name == "" {
		return r, false, fmt.Errorf("%s payload: no repository.name", event)
	}
	r.RepoName = pl.Repository.Name
	switch {
	case event != "check_run" && event != "check_suite":
		return r, false, fmt.Errorf("%q is not check_run or check_suite", event)
	case event == "check_run" && pl.CheckRun == nil:
		return r, false, errors.New("check_run payload: no check_run")
	case event == "check_suite" && pl.CheckSuite == nil:
		return r, false, errors.New("check_suite payload: no check_suite")
	case pl.Action != "rerequested":
		return r, false, nil
	case event == "check_suite":
		r.HeadSHA, r.AppID = pl.CheckSuite.HeadSHA, pl.CheckSuite.App.ID
		return r, r.HeadSHA != "", nil
	}
	r.HeadSHA, r.AppID = pl.CheckRun.HeadSHA, pl.CheckRun.App.ID
	id, _, pipeline, ours := report.ParseExternalID(pl.CheckRun.ExternalID)
	r.DeliveryID, r.Pipeline = id, pipeline
	return r, ours && r.HeadSHA != "", nil
}
