package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by release builds (make dist) with -ldflags "-X main.commit=… -X
// main.buildTime=…", beside main.version. A plain go build leaves them
// empty and the VCS stamp of debug.ReadBuildInfo fills them.
var (
	commit    string
	buildTime string
)

// buildInfo is what the binary says of itself: `monohook version`,
// --version, the startup log and monohook_build_info.
type buildInfo struct {
	Version  string
	Commit   string // "unknown" when neither -ldflags nor a VCS stamp says
	Time     string // RFC 3339; of the build (release builds) or of the commit (VCS stamp)
	Modified bool   // built from a work tree with uncommitted changes (VCS stamp)
}

var build = readBuild(version, commit, buildTime, readBuildInfo())

func readBuildInfo() *debug.BuildInfo {
	info, _ := debug.ReadBuildInfo()
	return info
}

// readBuild takes each field from -ldflags first, else from the Go
// toolchain's stamp: the module version when installed as
// `go install …@vX`, the VCS revision and commit time when built in a git
// checkout (go build stamps them unless -buildvcs=false).
func readBuild(version, commit, buildTime string, info *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: version, Commit: commit, Time: buildTime}
	if info != nil {
		if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Time == "" {
					b.Time = s.Value
				}
			case "vcs.modified":
				// Only of the VCS stamp's own revision: a commit given
				// by -ldflags says nothing about the work tree.
				b.Modified = s.Value == "true" && commit == ""
			}
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Time == "" {
		b.Time = "unknown"
	}
	return b
}

func (b buildInfo) String() string {
	c := b.Commit
	if b.Modified {
		c += " (modified)"
	}
	return fmt.Sprintf("monohook %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n", b.Version, c, b.Time, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// addVersion gives root the version subcommand and a --version flag that
// print the same.
func addVersion(root *cobra.Command) {
	root.Version = build.Version
	root.SetVersionTemplate(build.String())
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), build.String())
			return err
		},
	})
}
