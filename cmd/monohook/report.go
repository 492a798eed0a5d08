package main

import (
	"errors"
	"fmt"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubapi"
)

// Values of --github-report.
const (
	reportChecks   = "checks"
	reportStatuses = "statuses"
	reportNone     = "none"
)

// reportMode resolves --github-report (empty: the default) against the
// GitHub credentials: check runs with a GitHub App, commit statuses with a
// token, nothing without credentials or in a dry run.
func reportMode(flag string, gh *githubapi.Client, dryRun bool) (string, error) {
	switch flag {
	case "":
		switch {
		case gh == nil || dryRun:
			return reportNone, nil
		case gh.IsApp():
			return reportChecks, nil
		}
		return reportStatuses, nil
	case reportNone:
		return reportNone, nil
	case reportChecks, reportStatuses:
		if gh == nil {
			return "", fmt.Errorf("--github-report %s needs GitHub credentials: a GitHub App (--github-app-id, --github-installation-id, --github-app-key-file) or, for statuses, --github-token", flag)
		}
		if flag == reportChecks && !gh.IsApp() {
			return "", errors.New("--github-report checks needs a GitHub App: GitHub lets only Apps write check runs; with a token, use --github-report statuses (commit statuses)")
		}
		return flag, nil
	}
	return "", fmt.Errorf("--github-report %q: want checks, statuses or none", flag)
}

// reportOptions are the queue's options for mode.
func reportOptions(mode string, gh *githubapi.Client, workers int) *deliveries.ReportOptions {
	if mode == reportNone {
		return nil
	}
	return &deliveries.ReportOptions{GitHub: gh, Statuses: mode == reportStatuses, Workers: workers}
}
