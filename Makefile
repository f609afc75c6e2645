# fluxbridge — a GitOps control plane for Flux v2.
#
#   make run    receiver + worker, with an embedded Postgres when DATABASE_URL is unset
#   make test   the whole suite on a throwaway Postgres (and the kube/Flux rig built from modules)
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN ?= $(CURDIR)/bin
export GOFLAGS ?= -buildvcs=false
# Everything built once for every checkout lives outside the clone, so that a fresh clone
# (CI's) compiles nothing a previous one compiled: Go's build cache stays where Go keeps it
# (`go env GOCACHE`), and the rig's binaries (apiserver, etcd, kwok, the Flux controllers,
# helm, the CRDs) go under $(CACHE_DIR), each in a directory keyed by a hash of the tools
# module that pins its version. bin/kube, bin/crds and bin/flux link to them.
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/fluxbridge
# key: a short hash of the files named, so a version bump builds into a new directory.
key = $(shell cat $(1) | sha256sum | cut -c1-12)

GO_TEST_FLAGS ?= -count=1 -timeout 30m
CHAOS_OUTAGE  ?= 60s
CHAOS_TESTS   := ^(TestKill9UnderWebhookLoad|TestKill9WorkerMidPush|TestPostgresRestartUnderLoad|TestGitServerDownThenBack|TestApiserverDownThenBack|TestHungGitServer|TestExportWithAHungCluster|TestWritersSharingACacheDir)$$
FUZZ_TIME     ?= 5s
FUZZ_EXECS    ?= 1000000
# package:target of every fuzz target; `make test` runs each for FUZZ_TIME, `make fuzz` for FUZZ_EXECS.
FUZZ_TARGETS  := internal/fluxevent:FuzzDecode internal/fluxevent:FuzzNormalizeMetadata internal/manifest:FuzzRender \
	internal/fluxspec:FuzzDecodeBuild internal/policy:FuzzEnvConfig internal/gitops:FuzzCheckPath internal/handlers:FuzzWebhook
# Prerequisites of `make test`; the kube and Flux fragments in hack/ add theirs.
TEST_DEPS     := $(BIN)/devenv rig-links

# Fragments: the kube test rig, the Flux controllers, helm. Included before the rules below
# so that their TEST_DEPS additions are seen by `test`.
-include hack/*.mk

# The end-to-end suite (internal/e2e) runs the Flux controllers against the kube rig. Under make
# missing assets fail it rather than skip it; SKIP_E2E=1 leaves it out of `make test`.
E2E_PKG  := ./internal/e2e
E2E_DEPS := $(KUBE_BIN)/etcd $(KUBE_BIN)/kube-apiserver $(CRDS_DIR) $(FLUX_CONTROLLER_BINS) rig-links
E2E_ENV  := FLUXBRIDGE_E2E_REQUIRE=1 KUBEBUILDER_ASSETS=$(KUBE_BIN) FLUX_CRDS_DIR=$(CRDS_DIR) FLUX_BIN_DIR=$(FLUX_BIN)
E2E_FLAGS ?= -count=1 -timeout 20m -v
ifeq ($(SKIP_E2E),1)
TEST_PKGS = $(shell go list ./... | grep -v '/internal/e2e$$')
else
TEST_PKGS = ./...
TEST_DEPS += $(E2E_DEPS)
endif

## help: list targets
.PHONY: help
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed 's/^## //' | awk -F': ' '{printf "  %-22s %s\n", $$1, $$2}'

## build: build receiver, worker and devenv into bin/
.PHONY: build
build:
	go build -o $(BIN)/ ./cmd/...

$(BIN)/devenv: $(shell find cmd/devenv internal/pgembed internal/config internal/auth internal/store internal/sandbox internal/kubetest internal/ncrelay internal/gittest internal/fluxscheme migrations -type f 2>/dev/null)
	go build -o $@ ./cmd/devenv

## run: run receiver and worker (Procfile) with an embedded Postgres unless DATABASE_URL is set
.PHONY: run
run: ensure-postgres build
	$(BIN)/devenv run

## run/receiver: run only the receiver (needs DATABASE_URL)
.PHONY: run/receiver
run/receiver: build
	$(BIN)/receiver

## run/worker: run only the worker (needs DATABASE_URL)
.PHONY: run/worker
run/worker: build
	$(BIN)/worker

## migrate: apply migrations to DATABASE_URL, or to the embedded Postgres
.PHONY: migrate
migrate: ensure-postgres $(BIN)/devenv
	$(BIN)/devenv migrate

## test: vet, format check, chart lint, every test (the e2e suite too, unless SKIP_E2E=1) on a throwaway Postgres, and a short run of every fuzz target
.PHONY: test
test: ensure-postgres ensure-chromium lint chart/lint $(TEST_DEPS)
	@mkdir -p $(BIN)/screenshots
	FLUXBRIDGE_BROWSER_REQUIRE=1 $(E2E_ENV) $(BIN)/devenv test -- go test $(GO_TEST_FLAGS) $(TEST_PKGS)
	hack/fuzz.sh $(BIN)/devenv $(FUZZ_TIME) $(FUZZ_TARGETS)

## fuzz: every fuzz target for at least FUZZ_EXECS executions each (default 1,000,000), with the counts
.PHONY: fuzz
fuzz: ensure-postgres $(BIN)/devenv
	hack/fuzz.sh $(BIN)/devenv $(FUZZ_EXECS)x $(FUZZ_TARGETS)

## e2e: the end-to-end suite on a real apiserver and real Flux controllers; prints the deploy → Ready latency figures
.PHONY: e2e
e2e: ensure-postgres $(BIN)/devenv $(E2E_DEPS)
	$(E2E_ENV) $(BIN)/devenv test -- go test $(E2E_FLAGS) $(E2E_PKG)/...

## bench: webhook throughput (durable path vs bare chi); UI deploy → pushed commit vs the git CLI; 100 concurrent deploys to one repository; the event worker at 1,000 events/s for 5 minutes; console overview of 1,000 objects; 500 SSE streams; the watch of 10,000 objects
.PHONY: bench
bench: ensure-postgres $(BIN)/devenv $(KUBE_BIN)/etcd $(KUBE_BIN)/kube-apiserver $(CRDS_DIR) rig-links
	PG_DURABLE=1 $(BIN)/devenv test -- go test -run '^$$' -bench . -benchtime 3x ./internal/handlers
	PG_DURABLE=1 $(BIN)/devenv test -- go test -run '^$$' -bench DeployVsGitCLI -benchtime 30x ./internal/jobs
	PG_DURABLE=1 $(BIN)/devenv test -- go test -run '^$$' -bench ConcurrentDeploys -benchtime 3x ./internal/jobs
	PG_DURABLE=1 $(BIN)/devenv test -- go test -run '^$$' -bench EventWorker -benchtime 1x -timeout 20m ./internal/jobs
	$(BIN)/devenv test -- go test -run '^$$' -bench Overview1000 -benchtime 50x ./internal/console
	$(BIN)/devenv test -- go test -run '^$$' -bench SSEStreams500 -benchtime 1x ./internal/feed
	KUBEBUILDER_ASSETS=$(KUBE_BIN) FLUX_CRDS_DIR=$(CRDS_DIR) $(BIN)/devenv test -- go test -run '^$$' -bench Watch10000Objects -benchtime 1x ./internal/fluxcontrol

## chaos: the fault suite with 60-second outages (make test runs it with 3-second ones), each printing its figure
.PHONY: chaos
chaos: ensure-postgres $(BIN)/devenv $(KUBE_BIN)/etcd $(KUBE_BIN)/kube-apiserver $(CRDS_DIR) rig-links
	set -o pipefail; FLUXBRIDGE_CHAOS_OUTAGE=$(CHAOS_OUTAGE) $(E2E_ENV) $(BIN)/devenv test -- go test -count=1 -timeout 30m -v \
		-run '$(CHAOS_TESTS)' ./cmd/receiver ./internal/jobs ./internal/gitops ./internal/handlers ./internal/fluxcontrol \
		| grep -E '^(=== RUN|--- |ok|FAIL|PASS)|_test.go:[0-9]+: '

## lint: go vet and gofmt
.PHONY: lint
lint:
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Debian's postgresql package provides the server binaries the embedded Postgres runs.
.PHONY: ensure-postgres
ensure-postgres:
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && [ -z "$$PG_BIN" ] && ! command -v initdb >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then echo "installing postgresql"; apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
		else echo "PostgreSQL server binaries not found: sudo apt-get install -y postgresql" >&2; exit 1; fi; \
	fi

# Debian's chromium runs the console's browser tests (internal/console, driven by chromedp).
.PHONY: ensure-chromium
ensure-chromium:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then echo "installing chromium"; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium not found: sudo apt-get install -y chromium" >&2; exit 1; fi; \
	fi

## rig-links: point bin/kube, bin/crds and bin/flux at the cached rig (for `go test` run by hand)
.PHONY: rig-links
rig-links: $(KUBE_ASSETS) $(CRDS_DIR) $(FLUX_CONTROLLER_BINS)
	@mkdir -p $(BIN); for l in kube:$(KUBE_BIN) crds:$(CRDS_DIR) flux:$(FLUX_BIN); do \
		n=$(BIN)/$${l%%:*}; t=$${l#*:}; [ -L $$n ] || rm -rf $$n; ln -sfn $$t $$n; done

## clean: remove built binaries (the cached rig under CACHE_DIR stays)
.PHONY: clean
clean:
	rm -f $(BIN)/receiver $(BIN)/worker $(BIN)/devenv
