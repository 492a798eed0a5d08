# Lambda builds: the same binary for the three functions of deploy/aws/template.yaml.
#   make lambda                 -> dist/monohook-lambda-arm64.zip and dist/monohook-lambda-x86_64.zip
#   sam build -t deploy/aws/template.yaml   (uses the build-* targets below)

GOFLAGS_LAMBDA = -trimpath -tags lambda.norpc -ldflags "-s -w"
ARCH ?= arm64

.PHONY: lambda
lambda: dist/monohook-lambda-arm64.zip dist/monohook-lambda-x86_64.zip

dist/monohook-lambda-%.zip:
	mkdir -p dist/$*
	GOOS=linux GOARCH=$(if $(filter x86_64,$*),amd64,$*) CGO_ENABLED=0 go build $(GOFLAGS_LAMBDA) -o dist/$*/bootstrap ./cmd/monohook
	cd dist/$* && rm -f ../monohook-lambda-$*.zip && zip -q ../monohook-lambda-$*.zip bootstrap

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-GitHubWebhookFunction build-GitHubEventEvalFunction build-MonoRepoS3ConfigCloudFormationResourceFunction:
	GOOS=linux GOARCH=$(if $(filter x86_64,$(ARCH)),amd64,$(ARCH)) CGO_ENABLED=0 go build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/monohook
