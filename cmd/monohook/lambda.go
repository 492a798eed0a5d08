package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	awslambdastart "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/httpserver"
	"github.com/monohook/monohook/internal/lambda"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
)

// lambdaEnv is the configuration of a Lambda function, set by the SAM
// template (deploy/aws/template.yaml).
type lambdaEnv struct {
	Role          string // MONOHOOK_LAMBDA_ROLE: webhook, eval, cfn or status
	Store         string // MONOHOOK_STORE: s3://bucket
	Prefix        string // MONOHOOK_PREFIX
	Secrets       string // MONOHOOK_WEBHOOK_SECRET (webhook)
	RequireSHA256 bool   // MONOHOOK_REQUIRE_SHA256 (webhook)
	EvalFunction  string // MONOHOOK_EVAL_FUNCTION (webhook)
	DryRun        bool   // MONOHOOK_DRY_RUN (eval)
	GitHub        githubapi.Config
	Report        string // MONOHOOK_GITHUB_REPORT (eval, status): checks, statuses, none or "" (by the credentials)
}

func readLambdaEnv() (lambdaEnv, error) {
	e := lambdaEnv{
		Role:          os.Getenv("MONOHOOK_LAMBDA_ROLE"),
		Store:         os.Getenv("MONOHOOK_STORE"),
		Prefix:        os.Getenv("MONOHOOK_PREFIX"),
		Secrets:       os.Getenv("MONOHOOK_WEBHOOK_SECRET"),
		RequireSHA256: os.Getenv("MONOHOOK_REQUIRE_SHA256") == "true",
		EvalFunction:  os.Getenv("MONOHOOK_EVAL_FUNCTION"),
		DryRun:        os.Getenv("MONOHOOK_DRY_RUN") == "true",
	}
	if e.Prefix == "" {
		e.Prefix = rulestore.DefaultPrefix
	}
	if err := readGitHubEnv(&e); err != nil {
		return e, err
	}
	var missing []string
	need := func(name, v string) {
		if v == "" {
			missing = append(missing, name)
		}
	}
	need("MONOHOOK_STORE", e.Store)
	switch e.Role {
	case "webhook":
		need("MONOHOOK_WEBHOOK_SECRET", e.Secrets)
		need("MONOHOOK_EVAL_FUNCTION", e.EvalFunction)
	case "eval", "cfn":
	case "status":
		if e.GitHub.Token == "" && e.GitHub.App == 0 {
			missing = append(missing, "MONOHOOK_GITHUB_TOKEN or MONOHOOK_GITHUB_APP_ID")
		}
	default:
		return e, fmt.Errorf("MONOHOOK_LAMBDA_ROLE is %q: want webhook, eval, cfn or status", e.Role)
	}
	if len(missing) > 0 {
		return e, fmt.Errorf("%s function: missing environment: %s", e.Role, strings.Join(missing, ", "))
	}
	return e, nil
}

// readGitHubEnv reads the GitHub credentials of the eval and status
// functions: MONOHOOK_GITHUB_TOKEN, or MONOHOOK_GITHUB_APP_ID with
// MONOHOOK_GITHUB_INSTALLATION_ID and MONOHOOK_GITHUB_APP_KEY (the PEM
// itself: a function has no key file), at MONOHOOK_GITHUB_API_URL.
func readGitHubEnv(e *lambdaEnv) error {
	e.GitHub = githubapi.Config{URL: os.Getenv("MONOHOOK_GITHUB_API_URL"), Token: os.Getenv("MONOHOOK_GITHUB_TOKEN"),
		Key: []byte(os.Getenv("MONOHOOK_GITHUB_APP_KEY")), MaxWait: 30 * time.Second}
	e.Report = os.Getenv("MONOHOOK_GITHUB_REPORT")
	for name, dst := range map[string]*int64{"MONOHOOK_GITHUB_APP_ID": &e.GitHub.App, "MONOHOOK_GITHUB_INSTALLATION_ID": &e.GitHub.Installation} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s is %q: want a positive number", name, v)
			}
			*dst = n
		}
	}
	return nil
}

// lambdaReporter returns the GitHub client (nil without credentials)
// and how the checks are posted (nil: not at all): check runs with a
// GitHub App, commit statuses with a token, unless MONOHOOK_GITHUB_REPORT
// says otherwise.
func lambdaReporter(env lambdaEnv) (*githubapi.Client, *lambda.Reporter, error) {
	if env.GitHub.Token == "" && env.GitHub.App == 0 {
		if env.Report == "checks" || env.Report == "statuses" {
			return nil, nil, fmt.Errorf("MONOHOOK_GITHUB_REPORT %s needs GitHub credentials (MONOHOOK_GITHUB_TOKEN, or MONOHOOK_GITHUB_APP_ID, _INSTALLATION_ID and _APP_KEY)", env.Report)
		}
		return nil, nil, nil
	}
	gh, err := githubapi.New(env.GitHub)
	if err != nil {
		return nil, nil, err
	}
	switch env.Report {
	case "":
		return gh, &lambda.Reporter{GitHub: gh, Statuses: !gh.IsApp()}, nil
	case "none":
		return gh, nil, nil
	case "statuses":
		return gh, &lambda.Reporter{GitHub: gh, Statuses: true}, nil
	case "checks":
		if !gh.IsApp() {
			return nil, nil, errors.New("MONOHOOK_GITHUB_REPORT checks needs a GitHub App: GitHub lets only Apps write check runs; with a token, use statuses")
		}
		return gh, &lambda.Reporter{GitHub: gh}, nil
	}
	return nil, nil, fmt.Errorf("MONOHOOK_GITHUB_REPORT is %q: want checks, statuses or none", env.Report)
}

// runLambda runs the binary as one of the four Lambda functions.
func runLambda() error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	env, err := readLambdaEnv()
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := rulestore.Open(ctx, env.Store, env.Prefix, log)
	if err != nil {
		return err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	switch env.Role {
	case "cfn":
		cr := &lambda.CustomResource{Store: st, Log: log}
		awslambdastart.Start(cfn.LambdaWrap(cr.Handle))
	case "eval":
		svc := &trigger.Service{Rules: st, Starter: trigger.DryRun{}, Log: log}
		// Targets as in serve, without exec; secrets and the GitHub token
		// come from the environment.
		tf := targetFlags{githubURL: os.Getenv("MONOHOOK_GITHUB_API_URL"), githubToken: os.Getenv("MONOHOOK_GITHUB_TOKEN"), githubMaxWait: 30 * time.Second,
			httpAllowPrivate: os.Getenv("MONOHOOK_HTTP_ALLOW_PRIVATE") == "true"}
		if cidrs := os.Getenv("MONOHOOK_HTTP_ALLOW_CIDR"); cidrs != "" {
			tf.httpAllowCIDR = strings.Split(cidrs, ",")
		}
		gh, rep, err := lambdaReporter(env)
		if err != nil {
			return err
		}
		if gh != nil {
			svc.Changes = gh
		}
		eval := &lambda.Eval{Service: svc, Bucket: st.Bucket(), Log: log}
		if !env.DryRun {
			if svc.Starter, err = tf.starters(&awsCfg, gh); err != nil {
				return err
			}
			eval.Reporter, svc.Report = rep, rep != nil
		}
		awslambdastart.Start(eval.Handle)
	case "status":
		_, rep, err := lambdaReporter(env)
		if err != nil {
			return err
		}
		if rep == nil {
			return errors.New("status function: MONOHOOK_GITHUB_REPORT is none: it has nothing to do")
		}
		awslambdastart.Start((&lambda.Status{Reporter: rep, Bucket: st.Bucket(), Log: log}).Handle)
	case "webhook":
		verifier, err := githubhook.NewVerifier(splitSecrets(env.Secrets), env.RequireSHA256)
		if err != nil {
			return err
		}
		inv := &lambda.Invoker{Client: awslambda.NewFromConfig(awsCfg), Function: env.EvalFunction, Bucket: st.Bucket(), Log: log}
		h := httpserver.Handler(httpserver.Config{
			Webhook: &githubhook.Handler{Verifier: verifier, Acceptor: inv, Log: log},
			Ready:   st.Ping,
			Log:     log,
		})
		awslambdastart.Start(lambda.NewWebhook(h).Handle)
	}
	return errors.New("lambda runtime returned")
}
