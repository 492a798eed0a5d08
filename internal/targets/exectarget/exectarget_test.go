package exectarget

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

func request(timeout string, command ...string) trigger.StartRequest {
	return trigger.StartRequest{
		Name: "exec:sh", Token: "monohook-tok",
		Data:   trigger.TemplateData{Event: "push", Repo: "acme/mono", Branch: "main", SHA: "0123abcd", DeliveryID: "d-1"},
		Target: trigger.NewTarget(Type, Spec{Command: command, Timeout: timeout}),
		Paths:  func(context.Context) ([]string, error) { return []string{"api/a.go", "docs/x.md"}, nil },
	}
}

func TestCommandSeesThePush(t *testing.T) {
	t.Setenv("MONOHOOK_WEBHOOK_SECRET", "must-not-leak")
	got, err := (&Starter{}).Start(context.Background(), request("", "sh", "-c",
		`echo "arg={{.Branch}} repo=$MONOHOOK_REPO sha=$MONOHOOK_SHA token=$MONOHOOK_TOKEN n=$MONOHOOK_CHANGED_PATHS_COUNT secret=$MONOHOOK_WEBHOOK_SECRET"; cat "$MONOHOOK_CHANGED_PATHS_FILE"`))
	if err != nil {
		t.Fatal(err)
	}
	want := "arg=main repo=acme/mono sha=0123abcd token=monohook-tok n=2 secret=\napi/a.go\ndocs/x.md"
	if got.ID != "exit 0" || got.Output != want {
		t.Errorf("got %+v\nwant output %q", got, want)
	}
	if p := got.Progress; !p.Done || p.Conclusion != trigger.Success {
		t.Errorf("progress %+v: exit 0 is the result, a success", p)
	}
}

func TestFailureIsPermanentWithOutput(t *testing.T) {
	got, err := (&Starter{}).Start(context.Background(), request("", "sh", "-c", "echo building; echo broken >&2; exit 3"))
	if err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("err %v", err)
	}
	if got.Output != "building\nbroken" {
		t.Errorf("output %q", got.Output)
	}
	_, err = (&Starter{}).Start(context.Background(), request("", "/no/such/program"))
	if err == nil || !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("missing program: %v", err)
	}
}

func TestTimeoutEndsTheProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := (&Starter{}).Start(context.Background(), request("300ms", "sh", "-c", "sleep 30 & echo $! > "+pidFile+"; wait"))
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") || !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("err %v", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// The command's child must be killed with it, not left running.
	stat := "/proc/" + strings.TrimSpace(string(b)) + "/stat"
	for range 100 {
		s, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(s), ") Z ") {
			return // gone, or a zombie waiting for its reaper
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the command's child outlived the timeout")
}

func TestOutputKeepsTheEnd(t *testing.T) {
	got, err := (&Starter{}).Start(context.Background(), request("", "sh", "-c", `i=0; while [ $i -lt 5000 ]; do echo "line $i"; i=$((i+1)); done`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Output, "…") || !strings.HasSuffix(got.Output, "line 4999") || len(got.Output) > maxOutput+8 {
		t.Errorf("output of %d bytes: %q…", len(got.Output), got.Output[:40])
	}
}
