package main

import (
	"runtime/debug"
	"testing"
)

func TestReadBuild(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for name, c := range map[string]struct {
		version, commit, time string
		info                  *debug.BuildInfo
		want                  buildInfo
	}{
		"go build in a checkout": {"dev", "", "", stamped, buildInfo{"dev", "abc123", "2026-11-01T10:00:00Z", true}},
		"release build (-ldflags first)": {"v1.0.0", "def456", "2026-11-02T00:00:00Z", stamped,
			buildInfo{"v1.0.0", "def456", "2026-11-02T00:00:00Z", false}},
		"go install …@v1.1.0":        {"dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.1.0"}}, buildInfo{"v1.1.0", "unknown", "unknown", false}},
		"no stamp (-buildvcs=false)": {"dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, buildInfo{"dev", "unknown", "unknown", false}},
	} {
		if got := readBuild(c.version, c.commit, c.time, c.info); got != c.want {
			t.Errorf("%s: %+v, want %+v", name, got, c.want)
		}
	}
}
