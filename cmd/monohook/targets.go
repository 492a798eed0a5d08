package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/pflag"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// targetFlags configure the targets rules start and the GitHub API.
type targetFlags struct {
	githubURL          string
	githubToken        string
	githubApp          int64
	githubInstallation int64
	githubKeyFile      string
	githubKey          []byte // the key itself, when there is no file (Lambda)
	githubMaxWait      time.Duration
	secretsDir         string
	allowExec          bool
	httpAllowPrivate   bool
	httpAllowCIDR      []string
}

func (f *targetFlags) register(fs *pflag.FlagSet) {
	f.registerGitHub(fs)
	fs.StringVar(&f.secretsDir, "secrets-dir", "", `directory of secrets for http targets ({{secret "NAME"}} reads the file NAME; MONOHOOK_SECRET_NAME wins)`)
	fs.BoolVar(&f.allowExec, "allow-exec", false, "let exec targets run commands on this host (whoever can write rules can then run commands here)")
	fs.BoolVar(&f.httpAllowPrivate, "http-allow-private", false, "let http targets connect to loopback and private addresses (link-local and metadata addresses stay refused)")
	fs.StringSliceVar(&f.httpAllowCIDR, "http-allow-cidr", nil, "networks http targets may connect to although private, e.g. 10.1.0.0/16,fd12::/64 (link-local and metadata addresses stay refused)")
}

// registerGitHub registers the flags of the GitHub API alone (the
// commands that call GitHub and start nothing).
func (f *targetFlags) registerGitHub(fs *pflag.FlagSet) {
	fs.StringVar(&f.githubURL, "github-api-url", "https://api.github.com/", "GitHub REST API root (GitHub Enterprise Server: https://HOST/api/v3/)")
	fs.StringVar(&f.githubToken, "github-token", "", "GitHub token for full change sets, pull request files, github-actions targets, commit statuses (--github-report) and recovering missed deliveries (that needs admin:org_hook) (prefer the environment variable)")
	fs.Int64Var(&f.githubApp, "github-app-id", 0, "GitHub App id, to authenticate as its installation instead of a token")
	fs.Int64Var(&f.githubInstallation, "github-installation-id", 0, "GitHub App installation id")
	fs.StringVar(&f.githubKeyFile, "github-app-key-file", "", "GitHub App private key (PEM)")
	fs.DurationVar(&f.githubMaxWait, "github-max-wait", 30*time.Second, "longest a GitHub API call waits for a rate limit to reset; past it the evaluation is retried later, a report job waits for the reset, a reconciliation fails (the next tries again)")
}

// network is what http targets may connect to besides public addresses.
func (f *targetFlags) network() (netguard.Policy, error) {
	nets, err := netguard.ParsePrefixes(strings.Join(f.httpAllowCIDR, ","))
	if err != nil {
		return netguard.Policy{}, fmt.Errorf("--http-allow-cidr: %w", err)
	}
	return netguard.Policy{AllowPrivate: f.httpAllowPrivate, Allow: nets}, nil
}

// github returns the GitHub API client, or nil when no credentials are
// configured.
func (f *targetFlags) github() (*githubapi.Client, error) {
	cfg, err := f.githubConfig()
	if err != nil || (cfg.Token == "" && cfg.App == 0) {
		return nil, err
	}
	return githubapi.New(cfg)
}

// githubConfig is the GitHub API's configuration, the App's key read.
func (f *targetFlags) githubConfig() (githubapi.Config, error) {
	cfg := githubapi.Config{URL: f.githubURL, Token: f.githubToken, App: f.githubApp, Installation: f.githubInstallation, MaxWait: f.githubMaxWait}
	cfg.Key = f.githubKey
	if f.githubKeyFile != "" {
		key, err := os.ReadFile(f.githubKeyFile)
		if err != nil {
			return cfg, fmt.Errorf("GitHub App key: %w", err)
		}
		cfg.Key = key
	}
	return cfg, nil
}

// starters returns a Starter per target type; awsCfg is nil in a dry run.
func (f *targetFlags) starters(awsCfg *aws.Config, gh *githubapi.Client) (trigger.Starters, error) {
	network, err := f.network()
	if err != nil {
		return nil, err
	}
	return targets.Starters(targets.Config{AWS: awsCfg, GitHub: gh, SecretsDir: f.secretsDir, Network: network, Exec: f.allowExec}), nil
}
