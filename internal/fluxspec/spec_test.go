package fluxspec_test

import (
	"encoding/json"
	"errors"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
)

func TestDecodeRejectsBadSettingsNamingTheField(t *testing.T) {
	tests := []struct {
		name, kind, config, field string
	}{
		{"unknown kind", "Deployment", `{}`, "kind"},
		{"unknown key", "Kustomization", `{"sourceRef":{"kind":"GitRepository","name":"a"},"pruen":true}`, "config.pruen"},
		{"wrong type", "Kustomization", `{"sourceRef":{"kind":"GitRepository","name":"a"},"prune":"yes"}`, "config.prune"},
		{"bad interval", "Kustomization", `{"sourceRef":{"kind":"GitRepository","name":"a"},"interval":"1d"}`, "config.interval"},
		{"interval too short", "GitRepository", `{"url":"https://h/r.git","interval":"1s"}`, "config.interval"},
		{"path escapes", "Kustomization", `{"sourceRef":{"kind":"GitRepository","name":"a"},"path":"../etc"}`, "config.path"},
		{"absolute path", "Kustomization", `{"sourceRef":{"kind":"GitRepository","name":"a"},"path":"/etc"}`, "config.path"},
		{"bad source kind", "Kustomization", `{"sourceRef":{"kind":"HelmRepository","name":"a"}}`, "config.sourceRef.kind"},
		{"missing source", "Kustomization", `{}`, "config.sourceRef.kind"},
		{"bad dependency name", "Kustomization", `{"sourceRef":{"kind":"GitRepository","name":"a"},"dependsOn":[{"name":"Bad_Name"}]}`, "config.dependsOn[0].name"},
		{"bad dependency timeout", "HelmRelease", `{"chartRef":{"kind":"OCIRepository","name":"a"},"dependencyTimeout":"soon"}`, "config.dependencyTimeout"},
		{"bad chart range", "HelmRelease", `{"chart":{"chart":"podinfo","version":">=1.0 <<2","sourceRef":{"kind":"HelmRepository","name":"p"}}}`, "config.chart.version"},
		{"values not an object", "HelmRelease", `{"chart":{"chart":"podinfo","sourceRef":{"kind":"HelmRepository","name":"p"}},"values":[1]}`, "config.values"},
		{"chart and chartRef", "HelmRelease", `{"chart":{"chart":"c","sourceRef":{"kind":"HelmRepository","name":"p"}},"chartRef":{"kind":"HelmChart","name":"c"}}`, "config.chartRef"},
		{"two git refs", "GitRepository", `{"url":"https://h/r.git","ref":{"branch":"main","tag":"v1"}}`, "config.ref"},
		{"bad branch", "GitRepository", `{"url":"https://h/r.git","ref":{"branch":"a..b"}}`, "config.ref.branch"},
		{"short commit", "GitRepository", `{"url":"https://h/r.git","ref":{"commit":"abc123"}}`, "config.ref.commit"},
		{"scp url", "GitRepository", `{"url":"git@github.com:acme/app.git"}`, "config.url"},
		{"password in url", "GitRepository", `{"url":"https://u:p@h/r.git"}`, "config.url"},
		{"oci scheme", "OCIRepository", `{"url":"https://ghcr.io/a"}`, "config.url"},
		{"helm repo type", "HelmRepository", `{"url":"https://charts.example.com","type":"s3"}`, "config.type"},
		{"bucket name", "Bucket", `{"endpoint":"minio:9000"}`, "config.bucketName"},
		{"image required", "ImageRepository", `{"interval":"1m"}`, "config.image"},
		{"two policies", "ImagePolicy", `{"imageRepositoryRef":"app","semver":"^1","numerical":"asc"}`, "config.semver"},
		{"bad policy range", "ImagePolicy", `{"imageRepositoryRef":"app","semver":"one"}`, "config.semver"},
		{"bad filter regexp", "ImagePolicy", `{"imageRepositoryRef":"app","alphabetical":"asc","filterTags":{"pattern":"(["}}`, "config.filterTags.pattern"},
		{"bad template", "ImageUpdateAutomation", `{"sourceRef":"app","authorEmail":"a@b.c","messageTemplate":"{{ .Bad "}`, "config.messageTemplate"},
		{"trailing data", "Bucket", `{"bucketName":"b","endpoint":"e"} {}`, "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fluxspec.Decode(tt.kind, json.RawMessage(tt.config))
			var fe *fluxspec.FieldError
			require.True(t, errors.As(err, &fe), "want a FieldError, got %v", err)
			require.Equal(t, tt.field, fe.Field, fe.Error())
		})
	}
}

func TestBuildAppliesEnvironmentAndTarget(t *testing.T) {
	env, err := fluxspec.ParseEnvSettings(json.RawMessage(`{"syncPolicy":"manual","branch":"release/prod","path":"deploy/prod","requiredApprovals":2}`))
	require.NoError(t, err)
	target := &fluxspec.Target{
		Namespace: "apps", Name: "web", Cluster: "eu", ResourceID: 42, Project: "shop", Environment: "prod", Env: env,
		Repo: &fluxspec.RepoSettings{URL: "https://git.example.com/shop.git", HasCredentials: true},
	}

	spec, err := fluxspec.Decode("GitRepository", json.RawMessage(`{"interval":"2m"}`))
	require.NoError(t, err)
	obj, err := fluxspec.Build(spec, target)
	require.NoError(t, err)
	gr := obj.(*sourcev1.GitRepository)
	require.Equal(t, "https://git.example.com/shop.git", gr.Spec.URL)
	require.Equal(t, "release/prod", gr.Spec.Reference.Branch)
	require.Equal(t, "web-auth", gr.Spec.SecretRef.Name)
	require.False(t, gr.Spec.Suspend, "a manual sync policy suspends appliers, not sources")
	require.Equal(t, "42", gr.Labels[fluxspec.LabelResourceID])
	require.Equal(t, "prod", gr.Annotations["event.toolkit.fluxcd.io/environment"])
	require.Equal(t, "42", gr.Annotations["event.toolkit.fluxcd.io/fluxbridge-resource-id"])

	spec, err = fluxspec.Decode("Kustomization", json.RawMessage(`{"sourceRef":{"kind":"GitRepository","name":"web"},"timeout":"3m","retryInterval":"30s","dependsOn":[{"name":"infra"}]}`))
	require.NoError(t, err)
	obj, err = fluxspec.Build(spec, target)
	require.NoError(t, err)
	ks := obj.(*kustomizev1.Kustomization)
	require.Equal(t, "./deploy/prod", ks.Spec.Path)
	require.True(t, ks.Spec.Suspend, "manual sync policy")
	require.True(t, ks.Spec.Prune)
	require.Equal(t, "3m0s", ks.Spec.Timeout.Duration.String())
	require.Equal(t, "infra", ks.Spec.DependsOn[0].Name)

	spec, err = fluxspec.Decode("HelmRelease", json.RawMessage(`{"chart":{"chart":"podinfo","version":"6.x","sourceRef":{"kind":"HelmRepository","name":"podinfo"}},"values":{"replicaCount":2},"upgrade":{"retries":3,"strategy":"rollback"}}`))
	require.NoError(t, err)
	obj, err = fluxspec.Build(spec, target)
	require.NoError(t, err)
	hr := obj.(*helmv2.HelmRelease)
	require.Equal(t, "6.x", hr.Spec.Chart.Spec.Version)
	require.JSONEq(t, `{"replicaCount":2}`, string(hr.Spec.Values.Raw))
	require.Equal(t, 3, hr.Spec.Upgrade.Remediation.Retries)
}

func TestCheckDependenciesNamesTheCycle(t *testing.T) {
	ks := func(name string) fluxspec.Ref {
		return fluxspec.Ref{Kind: "Kustomization", Namespace: "apps", Name: name}
	}
	g := fluxspec.Graph{ks("a"): {ks("b")}, ks("b"): {ks("c")}, ks("c"): nil, ks("d"): nil}

	require.NoError(t, fluxspec.CheckDependencies(g, ks("d"), []fluxspec.Ref{ks("a")}))
	require.NoError(t, fluxspec.CheckDependencies(g, ks("new"), []fluxspec.Ref{ks("a"), ks("c")}))

	err := fluxspec.CheckDependencies(g, ks("c"), []fluxspec.Ref{ks("a")})
	require.EqualError(t, err, "config.dependsOn: cycle: Kustomization/apps/c -> Kustomization/apps/a -> Kustomization/apps/b -> Kustomization/apps/c")

	err = fluxspec.CheckDependencies(g, ks("d"), []fluxspec.Ref{ks("zzz")})
	require.ErrorContains(t, err, "unknown Kustomization apps/zzz")
	err = fluxspec.CheckDependencies(g, ks("d"), []fluxspec.Ref{ks("d")})
	require.ErrorContains(t, err, "cannot depend on itself")
}
