# Kubernetes test rig: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok built from Go modules into $(CACHE_DIR)/kube/<key>/
# (bin/kube links there), and the Flux CRDs into $(CACHE_DIR)/crds/<key>/. Both are built only when missing; `make kube-clean`
# removes them so that a version bump takes effect.
#
# The binaries come from the tools modules under hack/kube/ (one per program
# family, because their dependencies clash); their go.mod files hold the
# versions. To move to another Kubernetes release run
#   hack/kube/kubernetes/update.sh v1.X.Y
#
# The CRDs come from Flux's own Go modules at the versions below: the
# controllers' config/crd/bases/*.yaml where the controller module can be
# fetched, otherwise generated with controller-gen (hack/crdgen) from the api
# module. The controller versions match hack/flux.mk; the api versions match
# the main go.mod.
CRDS_SOURCE_CONTROLLER_VERSION    := v1.9.6
CRDS_KUSTOMIZE_CONTROLLER_VERSION := v1.9.6
CRDS_HELM_CONTROLLER_VERSION      := v1.4.0
CRDS_NOTIFICATION_API_VERSION     := v1.9.4
CRDS_IMAGE_REFLECTOR_API_VERSION  := v1.2.5
CRDS_IMAGE_AUTOMATION_API_VERSION := v1.2.5

KUBE_HACK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/kube
CRDGEN_HACK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/crdgen

KUBE_BIN       := $(CACHE_DIR)/kube/$(call key,$(KUBE_HACK)/*/go.mod)
CRDS_CONTROLLER_GEN := $(CACHE_DIR)/crdgen/$(call key,$(CRDGEN_HACK)/go.mod)/controller-gen
CRDS_DIR       := $(CACHE_DIR)/crds/$(shell { echo $(CRDS_SOURCE_CONTROLLER_VERSION) $(CRDS_KUSTOMIZE_CONTROLLER_VERSION) $(CRDS_HELM_CONTROLLER_VERSION) $(CRDS_NOTIFICATION_API_VERSION) $(CRDS_IMAGE_REFLECTOR_API_VERSION) $(CRDS_IMAGE_AUTOMATION_API_VERSION); cat $(CRDGEN_HACK)/go.mod; } | sha256sum | cut -c1-12)

KUBE_PROGRAMS := etcd kube-apiserver kube-controller-manager kube-scheduler kwok
KUBE_ASSETS   := $(addprefix $(KUBE_BIN)/,$(KUBE_PROGRAMS)) $(KUBE_BIN)/kwok-stages

# kwok exits with "no stages found" without these; they ship in its module.
KWOK_STAGE_FILES := \
	kustomize/stage/node/fast/node-initialize.yaml \
	kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
	kustomize/stage/pod/fast/pod-ready.yaml \
	kustomize/stage/pod/fast/pod-complete.yaml \
	kustomize/stage/pod/fast/pod-delete.yaml

CRDS_CONTROLLER_MODULES := \
	github.com/fluxcd/source-controller@$(CRDS_SOURCE_CONTROLLER_VERSION) \
	github.com/fluxcd/kustomize-controller@$(CRDS_KUSTOMIZE_CONTROLLER_VERSION) \
	github.com/fluxcd/helm-controller@$(CRDS_HELM_CONTROLLER_VERSION)
CRDS_API_MODULES := \
	github.com/fluxcd/notification-controller/api@$(CRDS_NOTIFICATION_API_VERSION) \
	github.com/fluxcd/image-reflector-controller/api@$(CRDS_IMAGE_REFLECTOR_API_VERSION) \
	github.com/fluxcd/image-automation-controller/api@$(CRDS_IMAGE_AUTOMATION_API_VERSION)

# The tools modules are self-contained: ignore any go.work of the user.
KUBE_GO := GOWORK=off CGO_ENABLED=0 go

# The Kubernetes version is whatever hack/kube/kubernetes/go.mod requires; it
# is stamped into the binaries, which otherwise report v0.0.0-master.
KUBE_VERSION = $(shell awk '$$1 == "k8s.io/kubernetes" { print $$2 }' $(KUBE_HACK)/kubernetes/go.mod)
KUBE_VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
KUBE_LDFLAGS = -s -w $(foreach p,$(KUBE_VERSION_PKGS), \
	-X $(p).gitVersion=$(KUBE_VERSION) \
	-X $(p).gitMajor=$(word 1,$(subst ., ,$(patsubst v%,%,$(KUBE_VERSION)))) \
	-X $(p).gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) \
	-X $(p).gitTreeState=clean)

# KUBE_MOD_DIR_FN defines the shell function mod_dir, which prints the module
# cache directory of module[@version] $1, downloading the module if needed.
# It runs go in the tools module directory $2, never in the main module.
KUBE_MOD_DIR_FN := mod_dir() { \
	local out; \
	out=$$(cd "$$2" && GOWORK=off go mod download -json "$$1") || { echo "$$out" >&2; return 1; }; \
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p' <<<"$$out"; \
}

## kube-assets: build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok into the cache (only those missing)
.PHONY: kube-assets
kube-assets: $(KUBE_ASSETS)

## crds: fetch and generate the Flux CRDs into the cache (only when missing)
.PHONY: crds
crds: $(CRDS_DIR)

# make test runs tests against the real apiserver.
TEST_DEPS += $(KUBE_ASSETS) $(CRDS_DIR)

## kube-clean: remove this version's cached kube binaries, CRDs and controller-gen
.PHONY: kube-clean
kube-clean:
	rm -rf $(KUBE_BIN) $(CRDS_DIR) $(CRDS_DIR).tmp $(dir $(CRDS_CONTROLLER_GEN))

# Each binary is a file target with no prerequisites: it is built only when
# missing. go build writes the output only on success.
$(KUBE_BIN)/etcd:
	mkdir -p $(@D)
	cd $(KUBE_HACK)/etcd && $(KUBE_GO) build -trimpath -ldflags "-s -w" -o $@ .

$(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/kube-controller-manager $(KUBE_BIN)/kube-scheduler:
	@[ -n "$(KUBE_VERSION)" ] || { echo "no k8s.io/kubernetes in $(KUBE_HACK)/kubernetes/go.mod" >&2; exit 1; }
	mkdir -p $(@D)
	cd $(KUBE_HACK)/kubernetes && $(KUBE_GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/$(@F)

$(KUBE_BIN)/kwok:
	mkdir -p $(@D)
	cd $(KUBE_HACK)/kwok && $(KUBE_GO) build -trimpath -ldflags "-s -w" -o $@ sigs.k8s.io/kwok/cmd/kwok

# The stage files are copied from the kwok module version the kwok tools
# module requires, into a temporary directory first so that a failed copy
# leaves nothing behind.
$(KUBE_BIN)/kwok-stages:
	@set -euo pipefail; \
	$(KUBE_MOD_DIR_FN); \
	dir=$$(mod_dir sigs.k8s.io/kwok $(KUBE_HACK)/kwok); \
	rm -rf $@.tmp && mkdir -p $@.tmp; \
	for f in $(KWOK_STAGE_FILES); do install -m 0644 "$$dir/$$f" $@.tmp/; done; \
	mv $@.tmp $@; \
	echo "copied kwok stages from $$dir -> $@"

$(CRDS_CONTROLLER_GEN):
	mkdir -p $(@D)
	cd $(CRDGEN_HACK) && $(KUBE_GO) build -trimpath -ldflags "-s -w" -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

# The CRDs are assembled in a temporary directory and moved into place at the
# end, so that bin/crds/ exists only when complete. controller-gen runs inside
# each api module's own (read-only) directory, with the dependency versions
# that module pins.
$(CRDS_DIR): | $(CRDS_CONTROLLER_GEN)
	@set -euo pipefail; \
	$(KUBE_MOD_DIR_FN); \
	rm -rf $@.tmp && mkdir -p $@.tmp; \
	for m in $(CRDS_CONTROLLER_MODULES); do \
		dir=$$(mod_dir $$m $(CRDGEN_HACK)); \
		echo "copying CRDs of $$m"; \
		install -m 0644 "$$dir"/config/crd/bases/*.yaml $@.tmp/; \
	done; \
	for m in $(CRDS_API_MODULES); do \
		dir=$$(mod_dir $$m $(CRDGEN_HACK)); \
		echo "generating CRDs of $$m"; \
		(cd "$$dir" && GOWORK=off GOFLAGS=-mod=readonly $(CRDS_CONTROLLER_GEN) \
			crd:crdVersions=v1 paths=./... output:crd:artifacts:config=$@.tmp); \
	done; \
	mv $@.tmp $@; \
	echo "wrote $$(ls $@ | wc -l) CRDs -> $@"
