package fluxspec_test

import (
	"encoding/json"
	"errors"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
)

// A HelmRelease's chart may live in a GitRepository: the chart is a directory of the source,
// built into the HelmChart helm-controller makes next to the source.
func TestHelmReleaseChartFromGit(t *testing.T) {
	target := &fluxspec.Target{Namespace: "flux-system", Name: "hello", Cluster: "eu", ResourceID: 7, Project: "shop", Environment: "dev"}
	for _, chart := range []string{"./charts/hello", "charts/hello"} {
		spec, err := fluxspec.Decode("HelmRelease", json.RawMessage(`{"chart":{"chart":"`+chart+`","sourceRef":{"kind":"GitRepository","name":"charts"},"interval":"1m"},"targetNamespace":"shop-dev"}`))
		require.NoError(t, err, chart)
		obj, err := fluxspec.Build(spec, target)
		require.NoError(t, err)
		hr := obj.(*helmv2.HelmRelease)
		require.Equal(t, chart, hr.Spec.Chart.Spec.Chart)
		require.Equal(t, "GitRepository", hr.Spec.Chart.Spec.SourceRef.Kind)
		require.Equal(t, "charts", hr.Spec.Chart.Spec.SourceRef.Name)
		require.Empty(t, hr.Spec.Chart.Spec.Version)
		// The GitRepository is what the release reads (the approvals that gate it gate the source).
		require.Contains(t, fluxspec.Reads(spec, "flux-system"), fluxspec.Ref{Kind: "GitRepository", Namespace: "flux-system", Name: "charts"})
	}

	// The CRD's default version, as an imported HelmRelease has it, is accepted.
	_, err := fluxspec.Decode("HelmRelease", json.RawMessage(`{"chart":{"chart":"./charts/hello","version":"*","sourceRef":{"kind":"GitRepository","name":"charts"}}}`))
	require.NoError(t, err)

	// The same rules hold for a HelmChart of its own.
	spec, err := fluxspec.Decode("HelmChart", json.RawMessage(`{"chart":"./charts/hello","sourceRef":{"kind":"GitRepository","name":"charts"},"reconcileStrategy":"Revision"}`))
	require.NoError(t, err)
	obj, err := fluxspec.Build(spec, target)
	require.NoError(t, err)
	hc := obj.(*sourcev1.HelmChart)
	require.Equal(t, "./charts/hello", hc.Spec.Chart)
	require.Equal(t, "Revision", hc.Spec.ReconcileStrategy)
}

func TestChartFromGitRefusesWhatFluxWouldIgnoreOrEscape(t *testing.T) {
	tests := []struct {
		name, kind, config, field, msg string
	}{
		{"version range from git", "HelmRelease", `{"chart":{"chart":"./charts/hello","version":">=1.0.0","sourceRef":{"kind":"GitRepository","name":"c"}}}`, "config.chart.version", "ignored by Flux"},
		{"version from a bucket", "HelmRelease", `{"chart":{"chart":"charts/hello","version":"1.0.0","sourceRef":{"kind":"Bucket","name":"c"}}}`, "config.chart.version", "Chart.yaml"},
		{"path leaving the source", "HelmRelease", `{"chart":{"chart":"../other/hello","sourceRef":{"kind":"GitRepository","name":"c"}}}`, "config.chart.chart", ".."},
		{"absolute path", "HelmRelease", `{"chart":{"chart":"/charts/hello","sourceRef":{"kind":"GitRepository","name":"c"}}}`, "config.chart.chart", "relative path"},
		{"no chart", "HelmRelease", `{"chart":{"sourceRef":{"kind":"GitRepository","name":"c"}}}`, "config.chart.chart", "required"},
		{"helmchart version from git", "HelmChart", `{"chart":"./charts/hello","version":"1.x","sourceRef":{"kind":"GitRepository","name":"c"}}`, "config.version", "ignored by Flux"},
		{"helmchart path leaving the source", "HelmChart", `{"chart":"charts/../../x","sourceRef":{"kind":"GitRepository","name":"c"}}`, "config.chart", ".."},
		// From a Helm repository the version is still a semver range.
		{"bad range from a helm repository", "HelmRelease", `{"chart":{"chart":"hello","version":"one","sourceRef":{"kind":"HelmRepository","name":"c"}}}`, "config.chart.version", "semver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fluxspec.Decode(tt.kind, json.RawMessage(tt.config))
			var fe *fluxspec.FieldError
			require.True(t, errors.As(err, &fe), "want a FieldError, got %v", err)
			require.Equal(t, tt.field, fe.Field, fe.Error())
			require.Contains(t, fe.Error(), tt.msg)
		})
	}
}
