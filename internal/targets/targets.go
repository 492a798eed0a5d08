// Package targets is the registry of the kinds of target a rule may
// start. Each kind is a package of its own below this one (codepipeline,
// codebuild, githubactions, httptarget, exectarget) that validates its
// fields, starts it, and follows what it started to its result; render
// holds the templates they share. Registry validates a rule's target for
// the domain (trigger.TargetKinds), Starters builds what a process starts
// them with, and Followers what it follows them with. Adding a kind is a
// package and a line in kinds.
package targets

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/targets/codebuild"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/targets/exectarget"
	"github.com/monohook/monohook/internal/targets/githubactions"
	"github.com/monohook/monohook/internal/targets/httptarget"
	"github.com/monohook/monohook/internal/trigger"
)

// Config is what the starters need of the process.
type Config struct {
	// AWS configures codepipeline and codebuild; nil leaves them out.
	AWS *aws.Config
	// GitHub dispatches github-actions workflows; nil leaves them out.
	GitHub *githubapi.Client
	// SecretsDir and Network configure http targets (httptarget.Starter).
	SecretsDir string
	Network    netguard.Policy
	// Exec lets exec targets run commands on this host.
	Exec bool
}

// kind is one kind of target: how a rule's target of it is checked, and
// its Starter and Follower as cfg configures them (nil: not in this
// process; a kind whose answer is its result has no Follower).
type kind struct {
	typ      string
	check    func(trigger.Target) (trigger.Target, string, error)
	starter  func(cfg Config) trigger.Starter
	follower func(cfg Config) trigger.Follower
}

func noFollower(Config) trigger.Follower { return nil }

// kinds are every kind, in the order errors list them.
var kinds = []kind{
	{codepipeline.Type, codepipeline.Check, func(cfg Config) trigger.Starter {
		if cfg.AWS == nil {
			return nil
		}
		return codepipeline.New(*cfg.AWS)
	}, func(cfg Config) trigger.Follower {
		if cfg.AWS == nil {
			return nil
		}
		return codepipeline.NewFollower(*cfg.AWS)
	}},
	{codebuild.Type, codebuild.Check, func(cfg Config) trigger.Starter {
		if cfg.AWS == nil {
			return nil
		}
		return codebuild.New(*cfg.AWS)
	}, func(cfg Config) trigger.Follower {
		if cfg.AWS == nil {
			return nil
		}
		return codebuild.NewFollower(*cfg.AWS)
	}},
	{githubactions.Type, githubactions.Check, func(cfg Config) trigger.Starter {
		if cfg.GitHub == nil {
			return nil
		}
		return githubactions.Starter{Client: cfg.GitHub}
	}, noFollower},
	{httptarget.Type, httptarget.Check, func(cfg Config) trigger.Starter {
		return &httptarget.Starter{SecretsDir: cfg.SecretsDir, Network: cfg.Network}
	}, noFollower},
	{exectarget.Type, exectarget.Check, func(cfg Config) trigger.Starter {
		if !cfg.Exec {
			return nil
		}
		return &exectarget.Starter{}
	}, noFollower},
}

// Registry checks a rule's target by its kind: it is the domain's
// trigger.TargetKinds.
type Registry struct{}

// Check implements trigger.TargetKinds.
func (Registry) Check(t trigger.Target) (trigger.Target, string, error) {
	types := make([]string, len(kinds))
	for i, k := range kinds {
		if k.typ == t.Type {
			return k.check(t)
		}
		types[i] = k.typ
	}
	return t, t.Type, fmt.Errorf("target.type %q: one of %s", t.Type, strings.Join(types, ", "))
}

// Starters returns a Starter for each kind cfg configures; a start of
// another kind fails for good, saying so (trigger.Starters).
func Starters(cfg Config) trigger.Starters {
	s := trigger.Starters{}
	for _, k := range kinds {
		if st := k.starter(cfg); st != nil {
			s[k.typ] = st
		}
	}
	return s
}

// Followers returns a Follower for each kind cfg configures that has one;
// following a start of another kind fails for good (trigger.Followers).
func Followers(cfg Config) trigger.Followers {
	f := trigger.Followers{}
	for _, k := range kinds {
		if fl := k.follower(cfg); fl != nil {
			f[k.typ] = fl
		}
	}
	return f
}
