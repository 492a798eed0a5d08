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
	"github.com/aws/aws-sdk-go-v2/aws"
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
	Role          string // MONOHOOK_LAMBDA_ROLE: webhook, eval, cfn, recover or status
	Store         string // MONOHOOK_STORE: s3://bucket
	Prefix        string // MONOHOOK_PREFIX
	Secrets       string // MONOHOOK_WEBHOOK_SECRET (webhook)
	RequireSHA256 bool   // MONOHOOK_REQUIRE_SHA256 (webhook)
	EvalFunction  string // MONOHOOK_EVAL_FUNCTION (webhook)
	DryRun        bool   // MONOHOOK_DRY_RUN (eval)
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
	var missing []string
	need := func(name, v string) {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if e.Role != "recover" { // it calls GitHub alone
		need("MONOHOOK_STORE", e.Store)
	}
	switch e.Role {
	case "webhook":
		need("MONOHOOK_WEBHOOK_SECRET", e.Secrets)
		need("MONOHOOK_EVAL_FUNCTION", e.EvalFunction)
	case "eval", "cfn":
	case "recover":
		if os.Getenv("MONOHOOK_GITHUB_ORG") == "" && os.Getenv("MONOHOOK_GITHUB_APP_HOOK") != "true" {
			missing = append(missing, "MONOHOOK_GITHUB_ORG (or MONOHOOK_GITHUB_APP_HOOK=true)")
		}
	case "status":
		if os.Getenv("MONOHOOK_GITHUB_TOKEN") == "" && os.Getenv("MONOHOOK_GITHUB_APP_ID") == "" {
			missing = append(missing, "MONOHOOK_GITHUB_TOKEN or MONOHOOK_GITHUB_APP_ID")
		}
	default:
		return e, fmt.Errorf("MONOHOOK_LAMBDA_ROLE is %q: want webhook, eval, cfn, recover or status", e.Role)
	}
	if len(missing) > 0 {
		return e, fmt.Errorf("%s function: missing environment: %s", e.Role, strings.Join(missing, ", "))
	}
	return e, nil
}

// lambdaTargetFlags are the targets and GitHub settings of the eval,
// status and recover functions, from serve's variables; the App's key may also be
// MONOHOOK_GITHUB_APP_KEY, the PEM itself (as the template passes it: a
// function has no key file).
func lambdaTargetFlags() (targetFlags, error) {
	tf := targetFlags{githubURL: os.Getenv("MONOHOOK_GITHUB_API_URL"), githubToken: os.Getenv("MONOHOOK_GITHUB_TOKEN"), githubMaxWait: 30 * time.Second,
		httpAllowPrivate: os.Getenv("MONOHOOK_HTTP_ALLOW_PRIVATE") == "true", githubKeyFile: os.Getenv("MONOHOOK_GITHUB_APP_KEY_FILE"),
		githubKey: []byte(os.Getenv("MONOHOOK_GITHUB_APP_KEY"))}
	if cidrs := os.Getenv("MONOHOOK_HTTP_ALLOW_CIDR"); cidrs != "" {
		tf.httpAllowCIDR = strings.Split(cidrs, ",")
	}
	return tf, lambdaGitHubApp(&tf)
}

// lambdaGitHubApp reads the GitHub App of the functions
// from MONOHOOK_GITHUB_APP_ID and MONOHOOK_GITHUB_INSTALLATION_ID, as
// serve's flags' twins.
func lambdaGitHubApp(tf *targetFlags) error {
	for name, dst := range map[string]*int64{"MONOHOOK_GITHUB_APP_ID": &tf.githubApp, "MONOHOOK_GITHUB_INSTALLATION_ID": &tf.githubInstallation} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s %q: want a positive number", name, v)
			}
			*dst = n
		}
	}
	return nil
}

// runLambda runs the binary as one of the four Lambda functions.
func runLambda() error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	env, err := readLambdaEnv()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if env.Role == "recover" {
		r, err := lambdaRedeliver(log)
		if err != nil {
			return err
		}
		awslambdastart.Start(r.Handle)
		return errors.New("lambda runtime returned")
	}
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
		eval, err := lambdaEval(env, &awsCfg, st, log)
		if err != nil {
			return err
		}
		awslambdastart.Start(eval.Handle)
	case "status":
		status, err := lambdaStatus(st, log)
		if err != nil {
			return err
		}
		awslambdastart.Start(status.Handle)
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

// lambdaRedeliver is the recover role's handler, configured from the
// environment the template sets: the GitHub credentials, the webhook
// (MONOHOOK_GITHUB_ORG with MONOHOOK_GITHUB_HOOK_ID or MONOHOOK_PUBLIC_URL,
// or MONOHOOK_GITHUB_APP_HOOK=true) and MONOHOOK_RECOVER_WINDOW.
func lambdaRedeliver(log *slog.Logger) (*lambda.Redeliver, error) {
	tf, err := lambdaTargetFlags()
	if err != nil {
		return nil, err
	}
	rf := recoverFlags{org: os.Getenv("MONOHOOK_GITHUB_ORG"), appHook: os.Getenv("MONOHOOK_GITHUB_APP_HOOK") == "true", publicURL: os.Getenv("MONOHOOK_PUBLIC_URL"), window: 24 * time.Hour}
	if v := os.Getenv("MONOHOOK_GITHUB_HOOK_ID"); v != "" {
		if rf.hookID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("MONOHOOK_GITHUB_HOOK_ID: %w", err)
		}
	}
	if v := os.Getenv("MONOHOOK_RECOVER_WINDOW"); v != "" {
		if rf.window, err = time.ParseDuration(v); err != nil || rf.window <= 0 {
			return nil, fmt.Errorf("MONOHOOK_RECOVER_WINDOW %q: a positive duration such as 24h", v)
		}
	}
	hooks, err := rf.hooks(&tf)
	if err != nil {
		return nil, err
	}
	return &lambda.Redeliver{GitHub: hooks, Window: rf.window, Handles: githubhook.Handles, Log: log}, nil
}

// lambdaEval is the eval function: the targets as in serve, without exec
// (secrets and the GitHub credentials come from the environment), and the
// checks posted as MONOHOOK_GITHUB_REPORT says.
func lambdaEval(env lambdaEnv, awsCfg *aws.Config, st *rulestore.Store, log *slog.Logger) (*lambda.Eval, error) {
	svc := &trigger.Service{Rules: st, Starter: trigger.DryRun{}, Log: log}
	tf, gh, mode, err := lambdaGitHub(env.DryRun)
	if err != nil {
		return nil, err
	}
	if gh != nil {
		svc.Changes = gh
	}
	if !env.DryRun {
		if svc.Starter, err = tf.starters(awsCfg, gh); err != nil {
			return nil, err
		}
	}
	eval := &lambda.Eval{Service: svc, Bucket: st.Bucket(), Log: log}
	if mode != reportNone {
		svc.Report = true
		eval.Checks = &lambda.Checks{GitHub: gh, Statuses: mode == reportStatuses}
	}
	return eval, nil
}

// lambdaGitHub is the eval and status functions' targets, GitHub client
// (nil without credentials) and reporting mode, from the environment.
func lambdaGitHub(dryRun bool) (targetFlags, *githubapi.Client, string, error) {
	tf, err := lambdaTargetFlags()
	if err != nil {
		return tf, nil, "", err
	}
	gh, err := tf.github()
	if err != nil {
		return tf, nil, "", err
	}
	mode, err := reportMode(os.Getenv("MONOHOOK_GITHUB_REPORT"), gh, dryRun)
	if err != nil {
		return tf, nil, "", fmt.Errorf("MONOHOOK_GITHUB_REPORT: %w", err)
	}
	return tf, gh, mode, nil
}

// lambdaStatus is the status function: it posts as the eval function does
// (a record says which of check runs or statuses its check is).
func lambdaStatus(st *rulestore.Store, log *slog.Logger) (*lambda.Status, error) {
	_, gh, mode, err := lambdaGitHub(false)
	if err != nil {
		return nil, err
	}
	if mode == reportNone {
		return nil, errors.New("status function: MONOHOOK_GITHUB_REPORT is none: it has nothing to do")
	}
	return &lambda.Status{Checks: &lambda.Checks{GitHub: gh, Statuses: mode == reportStatuses}, Bucket: st.Bucket(), Log: log}, nil
}
