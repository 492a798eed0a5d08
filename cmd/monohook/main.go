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
	decorateEnv(root)
	return root
}

// envName is the environment twin of a flag.
func envName(flag string) string {
	switch flag {
	case "secret":
		return "MONOHOOK_WEBHOOK_SECRET"
	case "secret-file":
		return "MONOHOOK_WEBHOOK_SECRET_FILE"
	}
	return "MONOHOOK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment twin.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	return errors.Join(errs...)
}

// decorateEnv appends each flag's environment variable to its help line.
func decorateEnv(cmd *cobra.Command) {
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != "version" && !strings.Contains(f.Usage, "$MONOHOOK_") {
			f.Usage += " [$" + envName(f.Name) + "]"
		}
	})
	for _, c := range cmd.Commands() {
		decorateEnv(c)
	}
}
