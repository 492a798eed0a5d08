// Package exectarget is the exec target: a pipeline started by running a
// local command (serve --allow-exec). It validates a target's fields
// (Check) and runs the command (Starter); looking up the result of what
// it started belongs here as well.
package exectarget

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/monohook/monohook/internal/targets/render"
	"github.com/monohook/monohook/internal/trigger"
)

// Type is how rules name this kind.
const Type = "exec"

// Spec is an exec target's fields: Command (argv; each argument a
// template) run with MONOHOOK_* environment variables, for at most
// Timeout (default DefaultTimeout).
type Spec struct {
	Command []string `json:"command,omitempty"`
	Timeout string   `json:"timeout,omitempty"`
}

// Check validates an exec target; its starts go by exec:PROGRAM.
func Check(t trigger.Target) (trigger.Target, string, error) {
	var s Spec
	if err := t.DecodeStrict(&s); err != nil {
		return t, "", err
	}
	c := render.NewCheck(false)
	if len(s.Command) == 0 || s.Command[0] == "" {
		c.Failf("command: the program and its arguments")
	}
	for i, a := range s.Command {
		c.Template(fmt.Sprintf("command[%d]", i), a)
	}
	if s.Timeout != "" {
		if d, err := time.ParseDuration(s.Timeout); err != nil || d <= 0 {
			c.Failf("timeout %q: a duration such as 10m", s.Timeout)
		}
	}
	name := Type
	if len(s.Command) > 0 {
		name += ":" + s.Command[0]
	}
	return trigger.NewTarget(Type, s), name, c.Err()
}

// DefaultTimeout bounds a command whose target gives no timeout.
const DefaultTimeout = 10 * time.Minute

// maxOutput is how much of a command's output (its end) is kept.
const maxOutput = 16 << 10

// Starter runs a target's command. The command gets a small environment:
// PATH, HOME, LANG and TMPDIR of monohook, and MONOHOOK_* variables that
// describe the push (never monohook's own configuration or secrets).
//
// A command is not idempotent by itself: should monohook die while it
// runs, it runs again after the restart. MONOHOOK_TOKEN is the same for
// both runs, so a command can tell.
type Starter struct {
	Dir string // working directory (default: monohook's)
}

// Start implements trigger.Starter. Exit status 0 is a start; any other
// ending (an exit status, a signal, the timeout) is permanent: the command
// said no, and running it again would repeat its work.
func (s *Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Started{}, err
	}
	argv := make([]string, len(t.Command))
	for i, a := range t.Command {
		r, err := render.Text(ctx, fmt.Sprintf("command[%d]", i), a, render.MaxValue, req.Data, nil)
		if err != nil {
			return trigger.Started{}, err
		}
		argv[i] = r
	}
	timeout := DefaultTimeout
	if t.Timeout != "" {
		if d, err := time.ParseDuration(t.Timeout); err == nil && d > 0 {
			timeout = d
		}
	}
	var paths []string
	if req.Paths != nil {
		var err error
		if paths, err = req.Paths(ctx); err != nil {
			return trigger.Started{}, fmt.Errorf("changed paths: %w", err)
		}
	}
	list, err := os.CreateTemp("", "monohook-paths-*.txt")
	if err != nil {
		return trigger.Started{}, fmt.Errorf("changed paths file: %w", err)
	}
	defer os.Remove(list.Name())
	_, werr := list.WriteString(strings.Join(paths, "\n") + "\n")
	if cerr := list.Close(); werr != nil || cerr != nil {
		return trigger.Started{}, fmt.Errorf("changed paths file: %w", errors.Join(werr, cerr))
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Running a rule's command is this target's purpose; serve only
	// configures it with --allow-exec.
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // see above
	cmd.Dir = s.Dir
	cmd.Env = environment(req, list.Name(), len(paths))
	// Its own process group, so the timeout ends the command's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	answer := trigger.Started{Output: out.String()}
	switch {
	case err == nil:
		answer.ID = "exit 0"
		// The exit status is the result.
		answer.Progress = trigger.Progress{Done: true, Conclusion: trigger.Success, Detail: "exit 0"}
		return answer, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return answer, fmt.Errorf("%s: timed out after %s (%w)", argv[0], timeout, trigger.ErrPermanent)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return answer, fmt.Errorf("%s: %s (%w)", argv[0], ee.ProcessState, trigger.ErrPermanent)
	}
	// Not started at all: no such program, not executable.
	return answer, fmt.Errorf("%s: %w (%w)", argv[0], err, trigger.ErrPermanent)
}

func environment(req trigger.StartRequest, pathsFile string, n int) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	d := req.Data
	return append(env,
		"MONOHOOK_EVENT="+d.Event,
		"MONOHOOK_REPO="+d.Repo,
		"MONOHOOK_REPO_NAME="+d.RepoName,
		"MONOHOOK_REF="+d.Ref,
		"MONOHOOK_BRANCH="+d.Branch,
		"MONOHOOK_TAG="+d.Tag,
		"MONOHOOK_SHA="+d.SHA,
		"MONOHOOK_BEFORE="+d.Before,
		"MONOHOOK_PULL_REQUEST="+strconv.Itoa(d.PullRequest),
		"MONOHOOK_DELIVERY="+d.DeliveryID,
		"MONOHOOK_TOKEN="+req.Token,
		"MONOHOOK_CHANGED_PATHS_FILE="+pathsFile,
		"MONOHOOK_CHANGED_PATHS_COUNT="+strconv.Itoa(n),
	)
}

// tail keeps the last maxOutput bytes written to it.
type tail struct {
	b       []byte
	dropped bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - maxOutput; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.dropped = true
	}
	return len(p), nil
}

func (t *tail) String() string {
	s := strings.TrimSpace(string(t.b))
	if t.dropped {
		return "…" + s
	}
	return s
}
