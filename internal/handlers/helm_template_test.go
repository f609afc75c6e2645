package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// podinfo is the chart of a helm-app deploy, from a Helm repository.
func podinfo(values map[string]any) map[string]any {
	return map[string]any{"helmRelease": map[string]any{
		"chart": map[string]any{"chart": "podinfo", "version": ">=6.0.0 <7.0.0",
			"source": map[string]any{"helmRepository": map[string]any{"url": "https://stefanprodan.github.io/podinfo"}}},
		"values": values,
	}}
}

func helmDeploy(app string, flux map[string]any) map[string]any {
	return map[string]any{"method": "gitops-ui", "template": "helm-app", "app": app, "flux": flux}
}

// obj is a JSON object of an answer.
func obj(v any) map[string]any { return v.(map[string]any) }

func idOf(v any) int64 { return int64(obj(v)["id"].(float64)) }

// helmConfig reads a resource's config as the apply job does.
func (b *gitopsBundle) helmConfig(t *testing.T, id int64) (*store.Resource, *fluxspec.HelmReleaseConfig) {
	t.Helper()
	res, err := b.st.ResourceByID(context.Background(), b.pool, id)
	require.NoError(t, err)
	spec, err := fluxspec.Decode(res.Kind, res.Config)
	require.NoError(t, err)
	return res, spec.(*fluxspec.HelmReleaseConfig)
}

// TestHelmAppTemplate: the built-in helm-app template shows its recovery defaults; a preview
// lists the HelmRelease and its HelmRepository with their YAML and writes nothing; the deploy
// creates both as resources with the remediation defaults, their applies carried by the push
// with the environment's GitRepository and Kustomization; new values change the HelmRelease;
// and a deploy of the app as a microservice removes them.
func TestHelmAppTemplate(t *testing.T) {
	b := withClusters(t, setupGitops(t, true))
	b.connect(t, gitPass)
	b.createEnv(t, "dev", "dev")

	status, tpl := b.call(t, http.MethodGet, "/templates/helm-app", nil)
	require.Equal(t, http.StatusOK, status, "%v", tpl)
	require.Equal(t, true, tpl["builtin"])
	require.Contains(t, tpl["description"], "rolled back to the last release that worked")
	require.Contains(t, tpl["flux_objects"], "HelmRelease")
	up := obj(obj(obj(tpl["flux"])["helmRelease"])["upgrade"])
	require.Equal(t, map[string]any{"retries": float64(3), "remediateLastFailure": true, "strategy": "rollback"}, up["remediation"])
	_, micro := b.call(t, http.MethodGet, "/templates/microservice", nil)
	require.Equal(t, true, obj(obj(micro["flux"])["kustomization"])["wait"], "health checks with a timeout")
	require.Equal(t, "5m", obj(obj(micro["flux"])["kustomization"])["timeout"])
	require.Contains(t, micro["description"], "progressDeadlineSeconds 600")

	// Bad input is a 400 naming the field.
	for field, body := range map[string]map[string]any{
		"flux.helmRelease.chart": helmDeploy("shop", nil),
		"flux.helmRelease.chart.version": helmDeploy("shop", map[string]any{"helmRelease": map[string]any{"chart": map[string]any{"chart": "podinfo", "version": "six",
			"source": map[string]any{"helmRepository": map[string]any{"url": "https://charts.example.com"}}}}}),
		"flux.helmRelease": {"method": "gitops-ui", "template": "microservice", "app": "api", "image": "nginx", "tag": "1", "ports": []any{map[string]any{"container_port": 80}}, "flux": podinfo(nil)},
		"image":            {"method": "gitops-ui", "template": "helm-app", "app": "shop", "image": "nginx", "flux": podinfo(nil)},
		"flux":             {"method": "gitops-ui", "template": "helm-app", "app": "shop", "flux": []any{}},
	} {
		status, got := b.call(t, http.MethodPost, "/environments/dev/deployments", body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", field, got)
		require.Equal(t, field, got["field"], "%v", got)
	}

	body := helmDeploy("shop", podinfo(map[string]any{"replicaCount": 2}))
	status, p := b.call(t, http.MethodPost, "/environments/dev/deployments/preview", body)
	require.Equal(t, http.StatusOK, status, "%v", p)
	hr, src := obj(p["helm_release"]), obj(p["chart_source"])
	require.Equal(t, true, hr["created"])
	require.Equal(t, "webapp-dev-shop", hr["name"])
	for _, want := range []string{"kind: HelmRelease", "releaseName: shop", "targetNamespace: webapp-dev", "storageNamespace: webapp-dev",
		"version: '>=6.0.0 <7.0.0'", "kind: HelmRepository", "remediateLastFailure: true", "strategy: rollback", "retries: 3", "cleanupOnFail: true",
		"replicaCount: 2", "serviceAccountName: fluxbridge-webapp-dev"} {
		require.Contains(t, hr["yaml"], want)
	}
	require.Equal(t, "HelmRepository", src["kind"])
	require.Contains(t, src["yaml"], "url: https://stefanprodan.github.io/podinfo")
	require.Equal(t, true, obj(p["kustomization"])["created"])
	require.Equal(t, []any{"clusters/dev/namespaces/webapp-dev.yaml"}, p["changed"], "a helm-app writes no manifests of its own")
	require.Zero(t, b.count(t, "SELECT count(*) FROM gitops_resources WHERE name IN ('webapp-dev', 'webapp-dev-shop', 'webapp-fleet-main')"), "a preview writes nothing")

	status, created := b.call(t, http.MethodPost, "/environments/dev/deployments", body)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	hrID, srcID := idOf(created["helm_release"]), idOf(created["chart_source"])
	require.Equal(t, true, obj(created["helm_release"])["created"])
	res, hc := b.helmConfig(t, hrID)
	require.Equal(t, b.seed.Project.ID, res.ProjectID)
	require.NotNil(t, res.EnvironmentID)
	require.Equal(t, "flux-system", res.Namespace)
	require.Equal(t, fluxspec.SourceRef{Kind: "HelmRepository", Name: "webapp-dev-shop"}, hc.Chart.SourceRef)
	require.Equal(t, &fluxspec.Remediation{Retries: 3}, hc.Install)
	last := true
	require.Equal(t, &fluxspec.Remediation{Retries: 3, RemediateLastFailure: &last, Strategy: "rollback"}, hc.Upgrade)
	require.True(t, hc.CleanupOnFail)
	require.Equal(t, "shop", hc.ReleaseName)
	require.Equal(t, "webapp-dev", hc.TargetNamespace)
	require.JSONEq(t, `{"replicaCount": 2}`, string(hc.Values))
	srcRow, err := b.st.ResourceByID(context.Background(), b.pool, srcID)
	require.NoError(t, err)
	require.Equal(t, "HelmRepository", srcRow.Kind)

	id := idOf(created["deployment"])
	carried := b.carried(t, `SELECT args FROM river_job WHERE kind = 'commit_push' AND (args->>'deployment_id')::bigint = $1`, id)
	require.Contains(t, carried, jobs.ResourceVersion{ResourceID: srcID, SpecVersion: 1})
	require.Contains(t, carried, jobs.ResourceVersion{ResourceID: hrID, SpecVersion: 1})
	require.Len(t, carried, 4, "with the environment's GitRepository and Kustomization")
	d := b.waitStatus(t, id)
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_resource' AND (args->>'resource_id')::bigint IN ($1, $2)`, srcID, hrID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'deployment.create' AND message LIKE '%(chart podinfo >=6.0.0 <7.0.0 from https://stefanprodan.github.io/podinfo)%HelmRepository flux-system/webapp-dev-shop, HelmRelease flux-system/webapp-dev-shop%'`))

	// New values change the HelmRelease, not the source; the preview says so first.
	body = helmDeploy("shop", podinfo(map[string]any{"replicaCount": 3}))
	status, p = b.call(t, http.MethodPost, "/environments/dev/deployments/preview", body)
	require.Equal(t, http.StatusOK, status, "%v", p)
	require.Equal(t, false, obj(p["helm_release"])["created"])
	require.Equal(t, true, obj(p["helm_release"])["changed"])
	require.Nil(t, obj(p["chart_source"])["changed"])
	status, created = b.call(t, http.MethodPost, "/environments/dev/deployments", body)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Equal(t, hrID, idOf(created["helm_release"]))
	res, hc = b.helmConfig(t, hrID)
	require.EqualValues(t, 2, res.SpecVersion)
	require.JSONEq(t, `{"replicaCount": 3}`, string(hc.Values))
	require.Contains(t, b.carried(t, `SELECT args FROM river_job WHERE kind = 'commit_push' AND (args->>'deployment_id')::bigint = $1`, idOf(created["deployment"])),
		jobs.ResourceVersion{ResourceID: hrID, SpecVersion: 2})
	b.waitStatus(t, idOf(created["deployment"]))

	// Creating or changing a HelmRelease is a maintainer's (R13.1); a developer redeploys it as
	// it is.
	u, err := b.st.CreateUser(context.Background(), b.pool, store.User{Username: "dan", DisplayName: "Dan", Email: "dan@example.com"})
	require.NoError(t, err)
	require.NoError(t, b.st.AddMember(context.Background(), b.pool, b.seed.Project.ID, u.ID, "developer"))
	dan := b.token(t, u.ID, nil)
	resp, denied := b.do(t, dan, http.MethodPost, "/api/v1/projects/webapp/environments/dev/deployments", helmDeploy("shop", podinfo(map[string]any{"replicaCount": 9})))
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%v", denied)
	require.Contains(t, denied["required_role"], "change the Helm release of shop")
	resp, ok := b.do(t, dan, http.MethodPost, "/api/v1/projects/webapp/environments/dev/deployments", body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", ok)
	b.waitStatus(t, idOf(ok["deployment"]))

	// The app as a microservice: its HelmRelease and chart source go.
	status, created = b.call(t, http.MethodPost, "/environments/dev/deployments", map[string]any{"method": "gitops-ui", "template": "microservice", "app": "shop",
		"image": "ghcr.io/acme/shop", "tag": "1.0.0", "ports": []any{map[string]any{"container_port": 8080}}})
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Nil(t, created["helm_release"])
	// Being deleted, or already gone: the delete jobs may have run by now.
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM (VALUES ($1::bigint), ($2::bigint)) v(id)
		LEFT JOIN gitops_resources r ON r.id = v.id WHERE r.id IS NULL OR r.apply_status = 'deleting'`, srcID, hrID))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'delete_resource' AND (args->>'resource_id')::bigint IN ($1, $2)`, srcID, hrID))
}

// TestHelmAppWaitsForApprovals: to an environment that requires approvals, a helm-app deploy
// records its HelmRelease and HelmRepository as proposals held by the deploy's approval
// request, with nothing that applies them; the last approval makes them live with the
// remediation defaults, and the push carries their applies.
func TestHelmAppWaitsForApprovals(t *testing.T) {
	b := withClusters(t, setupGitops(t, true))
	b.connect(t, gitPass)
	b.createEnv(t, "live", "prod")

	status, created := b.call(t, http.MethodPost, "/environments/live/deployments", helmDeploy("shop", podinfo(nil)))
	require.Equal(t, http.StatusAccepted, status, "%v", created)
	approval := obj(created["approval"])
	approvalID := int64(approval["id"].(float64))
	require.Contains(t, approval["summary"], "HelmRepository flux-system/webapp-live-shop, HelmRelease flux-system/webapp-live-shop in cluster")
	hrID, srcID := idOf(created["helm_release"]), idOf(created["chart_source"])
	require.Zero(t, b.count(t, "SELECT count(*) FROM river_job WHERE kind IN ('apply_resource', 'commit_push')"), "nothing runs before the approvals")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM gitops_resources WHERE id IN ($1, $2) AND NOT approved AND config = '{}'
		AND pending ? 'config' AND pending_request_id = $3`, srcID, hrID, approvalID), "proposals, not live rows")
	require.Contains(t, b.carried(t, `SELECT job_args FROM approval_requests WHERE id = $1`, approvalID), jobs.ResourceVersion{ResourceID: hrID, SpecVersion: 1})

	for _, name := range []string{"carol", "dave"} {
		resp, got := b.do(t, b.maintainer(t, name), http.MethodPost, fmt.Sprintf("/api/v1/projects/webapp/approvals/%d/approve", approvalID), map[string]any{})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
	}
	res, hc := b.helmConfig(t, hrID)
	require.True(t, res.Approved)
	require.Equal(t, "rollback", hc.Upgrade.Strategy)
	require.Equal(t, 3, hc.Install.Retries)
	d := b.waitStatus(t, idOf(created["deployment"]))
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_resource' AND (args->>'resource_id')::bigint IN ($1, $2)`, srcID, hrID))
}

// TestSavedTemplateCarriesFlux: a saved helm-app template carries its chart and the
// environment's Kustomization settings on top of the built-in's recovery defaults; a deploy
// with it creates the Kustomization with those settings and the HelmRelease with the
// template's values under the request's; a chart in the environment's own branch is read
// through the environment's GitRepository. Bad settings are 400s naming the field.
func TestSavedTemplateCarriesFlux(t *testing.T) {
	b := withClusters(t, setupGitops(t, true))
	b.connect(t, gitPass)
	b.createEnv(t, "dev", "dev")

	for field, bad := range map[string]map[string]any{
		"flux.helmRelease":            {"name": "x", "kind": "microservice", "flux": podinfo(nil)},
		"flux.kustomization.interval": {"name": "x", "kind": "helm-app", "flux": map[string]any{"kustomization": map[string]any{"interval": "1d"}}},
		"flux.kustomization.retry":    {"name": "x", "kind": "helm-app", "flux": map[string]any{"kustomization": map[string]any{"retry": "1m"}}},
		"flux":                        {"name": "x", "kind": "helm-app", "flux": "yes"},
	} {
		status, got := b.call(t, http.MethodPost, "/templates", bad)
		require.Equal(t, http.StatusBadRequest, status, "%v", got)
		require.Equal(t, field, got["field"], "%v", got)
	}

	flux := podinfo(map[string]any{"replicaCount": 2, "ui": map[string]any{"color": "#34577c"}})
	flux["kustomization"] = map[string]any{"timeout": "10m", "healthChecks": []any{map[string]any{"kind": "Deployment", "name": "edge", "namespace": "webapp-dev"}}}
	status, saved := b.call(t, http.MethodPost, "/templates", map[string]any{"name": "podinfo", "kind": "helm-app", "description": "our podinfo", "flux": flux})
	require.Equal(t, http.StatusCreated, status, "%v", saved)
	require.Equal(t, "5m", obj(obj(saved["flux"])["helmRelease"])["timeout"], "the built-in's defaults under the template's settings")
	require.Equal(t, "10m", obj(obj(saved["flux"])["kustomization"])["timeout"])
	require.Contains(t, saved["flux_objects"], "HelmRepository (the chart's source)")

	status, created := b.call(t, http.MethodPost, "/environments/dev/deployments", map[string]any{"method": "gitops-ui", "template": "podinfo", "app": "shop",
		"flux": map[string]any{"helmRelease": map[string]any{"values": map[string]any{"ui": map[string]any{"message": "hi"}}}}})
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Equal(t, "podinfo", obj(created["target"])["template"])
	_, hc := b.helmConfig(t, idOf(created["helm_release"]))
	require.JSONEq(t, `{"replicaCount": 2, "ui": {"color": "#34577c", "message": "hi"}}`, string(hc.Values))
	ks, err := b.st.ResourceByID(context.Background(), b.pool, idOf(created["kustomization"]))
	require.NoError(t, err)
	spec, err := fluxspec.Decode(ks.Kind, ks.Config)
	require.NoError(t, err)
	kc := spec.(*fluxspec.KustomizationConfig)
	require.Equal(t, "10m", kc.Timeout)
	require.True(t, kc.Wait)
	require.Equal(t, []fluxspec.HealthCheck{{Kind: "Deployment", Name: "edge", Namespace: "webapp-dev"}}, kc.HealthChecks)
	b.waitStatus(t, idOf(created["deployment"]))

	// A chart in the environment's branch: no source of its own.
	git := map[string]any{"helmRelease": map[string]any{"chart": map[string]any{"chart": "./charts/hello", "source": map[string]any{"gitRepository": map[string]any{}}}}}
	status, created = b.call(t, http.MethodPost, "/environments/dev/deployments", helmDeploy("hello", git))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Nil(t, created["chart_source"])
	_, hc = b.helmConfig(t, idOf(created["helm_release"]))
	require.Equal(t, fluxspec.SourceRef{Kind: "GitRepository", Name: obj(created["source"])["name"].(string)}, hc.Chart.SourceRef)
	require.Equal(t, "./charts/hello", hc.Chart.Chart)

	// A template's dependsOn names objects fluxbridge manages.
	b.createEnv(t, "qa", "staging")
	status, got := b.call(t, http.MethodPost, "/environments/qa/deployments/preview", helmDeploy("shop",
		map[string]any{"kustomization": map[string]any{"dependsOn": []any{map[string]any{"name": "infra"}}}, "helmRelease": podinfo(nil)["helmRelease"]}))
	require.Equal(t, http.StatusBadRequest, status, "%v", got)
	require.Equal(t, "flux.kustomization.dependsOn", got["field"], "%v", got)

	// The environment's GitRepository reads the branch deploys push to.
	status, got = b.call(t, http.MethodPost, "/environments/qa/deployments/preview", helmDeploy("other",
		map[string]any{"gitRepository": map[string]any{"ref": map[string]any{"branch": "release"}}, "helmRelease": podinfo(nil)["helmRelease"]}))
	require.Equal(t, http.StatusBadRequest, status, "%v", got)
	require.Equal(t, "flux.gitRepository.ref.branch", got["field"], "%v", got)
}
