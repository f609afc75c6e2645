# Flux controllers as host-process binaries, built from their Go modules.
#
# Each controller has its own tools module under hack/flux/<name>/ (go.mod with a
# `tool` directive plus the controller's own replace lines); they cannot share
# one module because helm-controller pins different kustomize/go-digest versions.
# The versions below must match those modules' go.mod: bump both together with
#   cd hack/flux/<name> && go get -tool github.com/fluxcd/<name>@<version>
# then `make flux-controllers-clean flux-controllers`.

FLUX_SOURCE_CONTROLLER_VERSION    := v1.9.6
FLUX_KUSTOMIZE_CONTROLLER_VERSION := v1.9.6
FLUX_HELM_CONTROLLER_VERSION      := v1.4.0

FLUX_BIN         := $(CACHE_DIR)/flux/$(call key,hack/flux/*-controller/go.mod)
FLUX_CONTROLLERS := source-controller kustomize-controller helm-controller
FLUX_CONTROLLER_BINS := $(addprefix $(FLUX_BIN)/,$(FLUX_CONTROLLERS))

# The tools modules are self-contained: ignore any go.work of the user.
FLUX_GO := GOWORK=off CGO_ENABLED=0 go
FLUX_GO_BUILD_FLAGS := -trimpath -ldflags "-s -w"

# `make test` builds the controllers too (tests may run them as host processes).
TEST_DEPS += $(FLUX_CONTROLLER_BINS)

FLUX_VERSION.source-controller    = $(FLUX_SOURCE_CONTROLLER_VERSION)
FLUX_VERSION.kustomize-controller = $(FLUX_KUSTOMIZE_CONTROLLER_VERSION)
FLUX_VERSION.helm-controller      = $(FLUX_HELM_CONTROLLER_VERSION)

## flux-controllers: build source-, kustomize- and helm-controller into the cache (only those missing)
.PHONY: flux-controllers
flux-controllers: $(FLUX_CONTROLLER_BINS)

# One file target per controller: built only when the binary is missing.
# A cold build takes a few minutes per controller on 2 cores.
$(FLUX_BIN)/%-controller: | $(FLUX_BIN)
	@want='$(FLUX_VERSION.$*-controller)'; \
	have=$$(cd hack/flux/$*-controller && GOWORK=off go list -m -f '{{.Version}}' github.com/fluxcd/$*-controller); \
	if [ "$$have" != "$$want" ]; then \
		echo "hack/flux/$*-controller/go.mod has github.com/fluxcd/$*-controller $$have, hack/flux.mk wants $$want;" >&2; \
		echo "run: cd hack/flux/$*-controller && go get -tool github.com/fluxcd/$*-controller@$$want" >&2; \
		exit 1; \
	fi; \
	echo "building $*-controller $$want -> $@"
	cd hack/flux/$*-controller && $(FLUX_GO) build $(FLUX_GO_BUILD_FLAGS) -o $(abspath $@) github.com/fluxcd/$*-controller

$(FLUX_BIN):
	mkdir -p $@

## flux-controllers-clean: remove this version's cached Flux controller binaries
.PHONY: flux-controllers-clean
flux-controllers-clean:
	rm -f $(FLUX_CONTROLLER_BINS)

# The smoke test is its own Go module (hack/flux/smoke); FLUX_SMOKE_FLAGS=-update
# re-records hack/flux/smoke/testdata/events/. The kube rig targets are in hack/kube.mk.
FLUX_SMOKE_FLAGS ?=

## flux-smoke: run the Flux controllers as host processes on a throwaway apiserver; check apply + events
.PHONY: flux-smoke
flux-smoke: flux-controllers $(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/etcd $(CRDS_DIR)
	cd hack/flux/smoke && FLUX_SMOKE_REQUIRE=1 FLUX_BIN_DIR=$(FLUX_BIN) \
		KUBEBUILDER_ASSETS=$(KUBE_BIN) FLUX_CRDS_DIR=$(CRDS_DIR) \
		GOWORK=off go test -count=1 -v -timeout 10m . $(FLUX_SMOKE_FLAGS)
