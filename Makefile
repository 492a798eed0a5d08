# Release builds: static binaries that know their version, commit and build time.
#   make dist                   -> dist/monohook-{linux,darwin}-{amd64,arm64}, the Lambda zips,
#                                  and dist/SHA256SUMS of them all
#   make image                  -> the container image monohook:$(VERSION) (buildah, FROM scratch;
#                                  IMAGE_ARCH=arm64 for arm64)
# Lambda builds: the same binary for the four functions of deploy/aws/template.yaml.
#   make lambda                 -> dist/monohook-lambda-arm64.zip and dist/monohook-lambda-x86_64.zip
#   sam build -t deploy/aws/template.yaml   (uses the build-* targets below)

# One binary per platform serves every mode: lambda.norpc leaves out only
# the RPC mode of the retired go1.x Lambda runtime, unused on provided.al2023.
GOFLAGS_LAMBDA = -trimpath -tags lambda.norpc -ldflags "-s -w"
ARCH ?= arm64

# Each may be given (make dist VERSION=v1.0.0); evaluated once, so that
# every binary of one run carries the same values.
VERSION := $(or $(VERSION),$(shell git describe --tags --always --dirty 2>/dev/null),dev)
COMMIT := $(or $(COMMIT),$(shell git rev-parse HEAD 2>/dev/null),unknown)
BUILD_TIME := $(or $(BUILD_TIME),$(shell date -u +%Y-%m-%dT%H:%M:%SZ))
GOFLAGS_RELEASE = -trimpath -tags lambda.norpc -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildTime=$(BUILD_TIME)"
PLATFORMS = linux-amd64 linux-arm64 darwin-amd64 darwin-arm64

.PHONY: dist image lambda FORCE
dist: $(PLATFORMS:%=dist/monohook-%) lambda
	cd dist && sha256sum $(PLATFORMS:%=monohook-%) monohook-lambda-arm64.zip monohook-lambda-x86_64.zip > SHA256SUMS
	cat dist/SHA256SUMS

# CGO_ENABLED=0: static, runs on any Linux (and in an empty image) with no libc.
dist/monohook-%: FORCE
	mkdir -p dist
	GOOS=$(word 1,$(subst -, ,$*)) GOARCH=$(word 2,$(subst -, ,$*)) CGO_ENABLED=0 go build $(GOFLAGS_RELEASE) -o $@ ./cmd/monohook

# The zips hold the release binary of their architecture, named bootstrap.
lambda: dist/monohook-lambda-arm64.zip dist/monohook-lambda-x86_64.zip

dist/monohook-lambda-arm64.zip: dist/monohook-linux-arm64
dist/monohook-lambda-x86_64.zip: dist/monohook-linux-amd64
dist/monohook-lambda-%.zip:
	mkdir -p dist/$*
	cp $< dist/$*/bootstrap
	cd dist/$* && rm -f ../monohook-lambda-$*.zip && zip -q ../monohook-lambda-$*.zip bootstrap

# The image holds the static binary, the build host's CA certificates
# (Debian's ca-certificates) and an empty /data owned by the user it runs as;
# nothing is pulled from a registry.
IMAGE ?= monohook:$(VERSION)
IMAGE_ARCH ?= amd64
image: dist/monohook-linux-$(IMAGE_ARCH)
	rm -rf dist/image && mkdir -p dist/image/data dist/image/tmp
	cp dist/monohook-linux-$(IMAGE_ARCH) dist/image/monohook
	cp /etc/ssl/certs/ca-certificates.crt dist/image/ca-certificates.crt
	buildah build --arch $(IMAGE_ARCH) --os linux -f deploy/container/Containerfile -t $(IMAGE) dist/image

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-GitHubWebhookFunction build-GitHubEventEvalFunction build-MonoRepoS3ConfigCloudFormationResourceFunction build-ExecutionStatusFunction build-GitHubRecoverFunction:
	GOOS=linux GOARCH=$(if $(filter x86_64,$(ARCH)),amd64,$(ARCH)) CGO_ENABLED=0 go build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/monohook
