# The helm CLI, built from its Go module (hack/helm) only when missing, to lint and render
# fluxbridge's own chart.
HELM := $(CACHE_DIR)/helm/$(call key,hack/helm/go.mod)/helm

$(HELM):
	mkdir -p $(@D)
	cd hack/helm && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(abspath $@) helm.sh/helm/v3/cmd/helm

## chart/lint: helm lint (strict) and render the chart with default and CI values
.PHONY: chart/lint
chart/lint: $(HELM)
	$(HELM) lint --strict charts/fluxbridge
	$(HELM) lint --strict charts/fluxbridge -f charts/fluxbridge/ci-values.yaml
	$(HELM) template fluxbridge charts/fluxbridge -f charts/fluxbridge/ci-values.yaml >/dev/null
