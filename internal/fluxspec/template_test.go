package fluxspec_test

import (
	"encoding/json"
	"errors"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
)

// helmTemplate is a helm-app's Flux side with the built-in recovery defaults.
const helmTemplate = `{
	"kustomization": {"wait": true, "timeout": "5m", "healthChecks": [{"kind": "Deployment", "name": "edge", "namespace": "infra"}], "dependsOn": [{"name": "infra"}]},
	"helmRelease": {
		"chart": {"chart": "podinfo", "version": ">=6.0.0 <7.0.0", "source": {"helmRepository": {"url": "https://stefanprodan.github.io/podinfo", "interval": "1h"}}},
		"values": {"replicaCount": 2},
		"interval": "10m", "timeout": "5m", "maxHistory": 5,
		"install": {"remediation": {"retries": 3}},
		"upgrade": {"remediation": {"retries": 3, "remediateLastFailure": true, "strategy": "rollback"}, "cleanupOnFail": true}
	}
}`

// TestTemplateGeneratesHelmObjects: a template's HelmRelease becomes a HelmRepository config
// and a HelmRelease config that the resources API accepts, and the built object carries the
// remediation (retries, remediateLastFailure, rollback) and the release's placement.
func TestTemplateGeneratesHelmObjects(t *testing.T) {
	tpl, err := fluxspec.DecodeTemplate(json.RawMessage(helmTemplate))
	require.NoError(t, err)
	require.NoError(t, tpl.Validate(false))
	ht := tpl.HelmRelease
	require.Equal(t, fluxspec.KindHelmRepository, ht.SourceKind())

	src := ht.SourceConfig().(*fluxspec.HelmRepositoryConfig)
	require.Equal(t, "https://stefanprodan.github.io/podinfo", src.URL)
	require.Equal(t, "1h", src.Interval)

	rc := ht.ReleaseConfig(fluxspec.SourceRef{Kind: fluxspec.KindHelmRepository, Name: "shop-dev-web"}, "web", "shop-dev")
	raw, err := json.Marshal(rc)
	require.NoError(t, err)
	spec, err := fluxspec.Decode(fluxspec.KindHelmRelease, raw)
	require.NoError(t, err, "the resources API accepts it: %s", raw)
	obj, err := fluxspec.Build(spec, &fluxspec.Target{Namespace: "flux-system", Name: "shop-dev-web", ResourceID: 7, Project: "shop",
		Environment: "dev", ServiceAccount: "fluxbridge-dev"})
	require.NoError(t, err)
	hr := obj.(*helmv2.HelmRelease)
	require.Equal(t, "podinfo", hr.Spec.Chart.Spec.Chart)
	require.Equal(t, ">=6.0.0 <7.0.0", hr.Spec.Chart.Spec.Version)
	require.Equal(t, helmv2.CrossNamespaceObjectReference{Kind: "HelmRepository", Name: "shop-dev-web"}, hr.Spec.Chart.Spec.SourceRef)
	require.Equal(t, "web", hr.Spec.ReleaseName)
	require.Equal(t, "shop-dev", hr.Spec.TargetNamespace)
	require.Equal(t, "shop-dev", hr.Spec.StorageNamespace, "confined: Helm's records stay in the release's namespace")
	require.Equal(t, "fluxbridge-dev", hr.Spec.ServiceAccountName)
	require.JSONEq(t, `{"replicaCount": 2}`, string(hr.Spec.Values.Raw))
	require.Equal(t, 3, hr.Spec.Install.Remediation.Retries)
	up := hr.Spec.Upgrade
	require.True(t, up.CleanupOnFail)
	require.Equal(t, 3, up.Remediation.Retries)
	require.True(t, *up.Remediation.RemediateLastFailure)
	require.Equal(t, helmv2.RollbackRemediationStrategy, *up.Remediation.Strategy)
	require.Equal(t, 5, *hr.Spec.MaxHistory)
	require.Equal(t, "5m0s", hr.Spec.Timeout.Duration.String())

	// The template's Kustomization settings shape the environment's Kustomization.
	kc := fluxspec.KustomizationConfig{SourceRef: fluxspec.SourceRef{Kind: "GitRepository", Name: "fleet"}, Timeout: "10m"}
	tpl.Kustomization.ApplyTo(&kc)
	raw, err = json.Marshal(kc)
	require.NoError(t, err)
	spec, err = fluxspec.Decode(fluxspec.KindKustomization, raw)
	require.NoError(t, err)
	obj, err = fluxspec.Build(spec, &fluxspec.Target{Namespace: "flux-system", Name: "shop-dev"})
	require.NoError(t, err)
	ks := obj.(*kustomizev1.Kustomization)
	require.True(t, ks.Spec.Wait)
	require.Equal(t, "5m0s", ks.Spec.Timeout.Duration.String())
	require.Equal(t, "edge", ks.Spec.HealthChecks[0].Name)
	require.Equal(t, "infra", ks.Spec.DependsOn[0].Name)
}

// TestTemplateChartFromGit: a chart from Git gets a GitRepository config with its ref, and its
// HelmRelease reads the chart by path.
func TestTemplateChartFromGit(t *testing.T) {
	tpl, err := fluxspec.DecodeTemplate(json.RawMessage(`{"helmRelease": {"chart": {"chart": "./charts/hello",
		"source": {"gitRepository": {"url": "https://git.example.com/acme/charts.git", "ref": {"tag": "v1.2.0"}}}}}}`))
	require.NoError(t, err)
	require.NoError(t, tpl.Validate(false))
	require.Equal(t, fluxspec.KindGitRepository, tpl.HelmRelease.SourceKind())
	gc := tpl.HelmRelease.SourceConfig().(*fluxspec.GitRepositoryConfig)
	require.Equal(t, "v1.2.0", gc.Ref.Tag)
	rc := tpl.HelmRelease.ReleaseConfig(fluxspec.SourceRef{Kind: "GitRepository", Name: "charts"}, "hello", "shop-dev")
	raw, err := json.Marshal(rc)
	require.NoError(t, err)
	_, err = fluxspec.Decode(fluxspec.KindHelmRelease, raw)
	require.NoError(t, err)
	require.Equal(t, "./charts/hello", rc.Chart.Chart)
	require.Nil(t, rc.Install, "no remediation unless the template sets it")
}

func TestTemplateRejectsBadSettingsNamingTheField(t *testing.T) {
	hr := func(s string) string { return `{"helmRelease": ` + s + `}` }
	repo := `"source": {"helmRepository": {"url": "https://charts.example.com"}}`
	tests := []struct {
		name, raw, field string
		partial          bool
	}{
		{"unknown key", `{"kustomisation": {}}`, "flux.kustomisation", false},
		{"unknown section key", `{"kustomization": {"retry": "1m"}}`, "flux.kustomization.retry", false},
		{"unknown chart key", hr(`{"chart": {"chart": "p", "repo": "x"}}`), "flux.helmRelease.chart.repo", true},
		{"wrong type", `{"kustomization": {"wait": "yes"}}`, "flux.kustomization.wait", false},
		{"wrong chart type", hr(`{"chart": {"chart": "p", "version": 6}}`), "flux.helmRelease.chart.version", true},
		{"bad interval", `{"gitRepository": {"interval": "1d"}}`, "flux.gitRepository.interval", false},
		{"env source takes only a branch", `{"gitRepository": {"ref": {"tag": "v1"}}}`, "flux.gitRepository.ref", false},
		{"bad timeout", `{"kustomization": {"timeout": "forever"}}`, "flux.kustomization.timeout", false},
		{"health check kind", `{"kustomization": {"healthChecks": [{"name": "a"}]}}`, "flux.kustomization.healthChecks[0].kind", false},
		{"bad dependency", `{"kustomization": {"dependsOn": [{"name": "Bad_Name"}]}}`, "flux.kustomization.dependsOn[0].name", false},
		{"chart required", hr(`{}`), "flux.helmRelease.chart", false},
		{"chart may wait in a saved template", hr(`{}`), "", true},
		{"chart name", hr(`{"chart": {` + repo + `}}`), "flux.helmRelease.chart.chart", false},
		{"source required", hr(`{"chart": {"chart": "podinfo"}}`), "flux.helmRelease.chart.source", false},
		{"two sources", hr(`{"chart": {"chart": "p", "source": {"helmRepository": {"url": "https://c"}, "gitRepository": {}}}}`), "flux.helmRelease.chart.source", false},
		{"bad range", hr(`{"chart": {"chart": "podinfo", "version": ">=1 <<2", ` + repo + `}}`), "flux.helmRelease.chart.version", false},
		{"no version from git", hr(`{"chart": {"chart": "./c", "version": "1.x", "source": {"gitRepository": {}}}}`), "flux.helmRelease.chart.version", false},
		{"chart path escapes", hr(`{"chart": {"chart": "../c", "source": {"gitRepository": {}}}}`), "flux.helmRelease.chart.chart", false},
		{"repo url scheme", hr(`{"chart": {"chart": "p", "source": {"helmRepository": {"url": "ftp://c"}}}}`), "flux.helmRelease.chart.source.helmRepository.url", false},
		{"values not an object", hr(`{"values": [1]}`), "flux.helmRelease.values", true},
		{"retries", hr(`{"install": {"remediation": {"retries": 1000}}}`), "flux.helmRelease.install.remediation.retries", true},
		{"install strategy", hr(`{"install": {"remediation": {"strategy": "rollback"}}}`), "flux.helmRelease.install.remediation.strategy", true},
		{"upgrade strategy", hr(`{"upgrade": {"remediation": {"strategy": "pray"}}}`), "flux.helmRelease.upgrade.remediation.strategy", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := fluxspec.DecodeTemplate(json.RawMessage(tt.raw))
			if err == nil {
				err = tpl.Validate(tt.partial)
			}
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *fluxspec.FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tt.field, fe.Field, "%v", err)
		})
	}
}
