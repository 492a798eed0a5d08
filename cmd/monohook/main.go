// Command monohook starts the CI/CD pipelines whose watched paths changed in
// a GitHub push. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// Under AWS Lambda the same binary is one of the three functions of the
	// SAM template, chosen by MONOHOOK_LAMBDA_ROLE.
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		if err := runLambda(); err != nil {
			fmt.Fprintln(os.Stderr, "monohook:", printableLines(err.Error()))
			os.Exit(1)
		}
		return
	}
	if err := newRoot().Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		fmt.Fprintln(os.Stderr, "monohook:", printableLines(err.Error()))
		os.Exit(1)
	}
}

// exitError ends the program with a status after the command has already
// said what went wrong (rules validate does this).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "monohook",
		Short: "Start the pipelines whose watched paths changed in a GitHub push",
		Long: `monohook receives a GitHub organization's webhooks and, for every push, starts
exactly the pipelines whose watched paths changed. Rules are stored in a blob
bucket (a local folder by default, S3 in production) in the layout of the
TrainingPeaks aws-codepipeline-mono-repo project, which it replaces.

Every flag can also be set with the environment variable shown in its help.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
	}
	root.AddCommand(newServe(), newRules(), newEval(), newSend(), newDeliveries())
	addVersion(root)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return withUsage(cmd, err) })
	root.SetHelpCommand(newHelp())
	root.InitDefaultCompletionCmd() // now, not when it runs, so that behave reaches it too
	behave(root)
	decorateEnv(root)
	return root
}

// execTargetEnv are the variables an exec target sets for its command
// (internal/exectarget). A flag whose twin would be one of them has no
// twin: a monohook command run by an exec target would otherwise take the
// push's repository or branch as a filter, or send with its delivery id.
var execTargetEnv = map[string]bool{
	"MONOHOOK_EVENT": true, "MONOHOOK_REPO": true, "MONOHOOK_REPO_NAME": true, "MONOHOOK_REF": true,
	"MONOHOOK_BRANCH": true, "MONOHOOK_TAG": true, "MONOHOOK_SHA": true, "MONOHOOK_BEFORE": true,
	"MONOHOOK_PULL_REQUEST": true, "MONOHOOK_DELIVERY": true, "MONOHOOK_TOKEN": true,
	"MONOHOOK_CHANGED_PATHS_FILE": true, "MONOHOOK_CHANGED_PATHS_COUNT": true,
}

// envName is the environment twin of a flag, "" for a flag without one.
func envName(flag string) string {
	switch flag {
	case "secret":
		return "MONOHOOK_WEBHOOK_SECRET"
	case "secret-file":
		return "MONOHOOK_WEBHOOK_SECRET_FILE"
	case "help", "version":
		return ""
	}
	name := "MONOHOOK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	if execTargetEnv[name] {
		return ""
	}
	return name
}

// applyEnv sets every flag not given on the command line from its
// environment twin.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		name := envName(f.Name)
		if f.Changed || name == "" {
			return
		}
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// decorateEnv appends each flag's environment variable to its help line.
func decorateEnv(cmd *cobra.Command) {
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if name := envName(f.Name); name != "" && !strings.Contains(f.Usage, "$MONOHOOK_") {
			f.Usage += " [$" + name + "]"
		}
	})
	for _, c := range cmd.Commands() {
		decorateEnv(c)
	}
}

// behave makes every command answer a mistake the same way: a group
// (rules, deliveries) given an unknown subcommand fails and suggests the
// nearest, where cobra would print the group's help and exit 0 (it
// suggests only for the root), and a command given the wrong arguments
// says so with its usage line.
func behave(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		behave(c)
	}
	if cmd.HasSubCommands() {
		if cmd.Run == nil && cmd.RunE == nil {
			cmd.Args = unknownSubcommand
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			cmd.DisableFlagsInUseLine = true // runnable only to show its help
		}
		return
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return withUsage(cmd, err)
			}
			return nil
		}
	}
}

// unknownSubcommand refuses any argument to a group, naming the nearest
// subcommands.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := nearest(cmd, args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return fmt.Errorf("%s\nRun '%s --help' for its commands", msg, cmd.CommandPath())
}

// withUsage adds the command's usage line, and where to read more, to an
// error about how it was called.
func withUsage(cmd *cobra.Command, err error) error {
	return fmt.Errorf("%w\nUsage: %s\nRun '%s --help' for more", err, cmd.UseLine(), cmd.CommandPath())
}

// newHelp is "monohook help [command]", which fails on a command that does
// not exist (cobra's prints the root's help and exits 0).
func newHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return unknownSubcommand(cmd, rest)
			}
			return cmd.Help()
		},
	}
}

// nearest returns the subcommands of cmd whose names begin with typed, or
// else those at the least edit distance from it, up to 2.
func nearest(cmd *cobra.Command, typed string) []string {
	var prefixed, near []string
	best := 3
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		name := c.Name()
		if strings.HasPrefix(name, typed) {
			prefixed = append(prefixed, name)
			continue
		}
		switch d := distance(typed, name); {
		case d < best:
			best, near = d, []string{name}
		case d == best:
			near = append(near, name)
		}
	}
	if len(prefixed) > 0 {
		return prefixed
	}
	return near
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
