package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestHelmRelease is scenario e: a HelmRelease installs a chart from the loopback Helm
// repository, then upgrades within its semver range when a new version is published; both are
// recorded as deployments with their chart versions.
func TestHelmRelease(t *testing.T) {
	const slug = "charts"
	require.NoError(t, rig.Helm.publish("hello", "1.0.0"))
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects", obj{"slug": slug, "name": slug})
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/environments", obj{"name": "dev", "kind": "dev", "cluster": clusterName})
	p := &project{slug: slug, namespace: slug + "-dev"}
	repo := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/resources"), obj{
		"kind": "HelmRepository", "namespace": fluxNamespace, "name": "charts", "cluster": clusterName,
		"config": obj{"url": rig.Helm.url(), "interval": "10m"},
	})
	repoID := id(repo["items"].([]any)[0].(obj), "id")
	hr := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/resources"), obj{
		"kind": "HelmRelease", "namespace": fluxNamespace, "name": "hello",
		"config": obj{
			"chart": obj{"chart": "hello", "version": ">=1.0.0 <2.0.0", "interval": "10m",
				"sourceRef": obj{"kind": "HelmRepository", "name": "charts"}},
			"releaseName": "hello", "targetNamespace": p.namespace, "interval": "10m",
			"values": obj{"greeting": "hi from fluxbridge"},
		},
	})
	hrID := id(hr["items"].([]any)[0].(obj), "id")

	t.Run("install", func(t *testing.T) {
		d := p.waitChartDeployment(t, "1.0.0")
		require.Equal(t, float64(hrID), d["gitops_resource_id"])
		p.waitResource(t, hrID, "ready", "")
		// The chart version comes from the object's status through the watch, which may trail
		// the event that made the resource ready.
		require.Eventually(t, func() bool { return p.resource(t, hrID)["chart_version"] == "1.0.0" }, settleTimeout, pollEvery)
		requireChartConfig(t, p.namespace, "1.0.0", "hi from fluxbridge")
	})

	t.Run("upgrade within the range", func(t *testing.T) {
		require.NoError(t, rig.Helm.publish("hello", "1.1.0"))
		require.NoError(t, rig.Helm.publish("hello", "2.0.0")) // outside the range: ignored
		// The repository's index is read on its interval; ask for it now, as a person would.
		mustCall(t, http.StatusAccepted, http.MethodPost, p.path("/resources/%d/reconcile", repoID), nil)
		d := p.waitChartDeployment(t, "1.1.0")
		require.Equal(t, float64(hrID), d["gitops_resource_id"])
		require.Eventually(t, func() bool { return p.resource(t, hrID)["chart_version"] == "1.1.0" }, settleTimeout, pollEvery)
		requireChartConfig(t, p.namespace, "1.1.0", "hi from fluxbridge")
		r := p.resource(t, hrID)
		require.GreaterOrEqual(t, len(r["helm_history"].([]any)), 2, "%v", r["helm_history"])

		// One deployment per chart version, newest first.
		var versions []string
		for _, it := range mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments?resource_id=%d", hrID), nil)["items"].([]any) {
			versions = append(versions, it.(obj)["revision"].(string))
		}
		require.Equal(t, []string{"1.1.0", "1.0.0"}, versions)
	})
}

// waitChartDeployment waits for the succeeded deployment of a HelmRelease at a chart version.
func (p *project) waitChartDeployment(t testing.TB, version string) obj {
	t.Helper()
	var found obj
	if !assert.Eventually(t, func() bool {
		for _, it := range mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments"), nil)["items"].([]any) {
			if d := it.(obj); d["revision"] == version && d["status"] == "succeeded" {
				found = d
				return true
			}
		}
		return false
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("no succeeded deployment of chart version %s", version)
	}
	return found
}

// requireChartConfig reads the chart's ConfigMap from the apiserver.
func requireChartConfig(t testing.TB, namespace, version, greeting string) {
	t.Helper()
	var cm corev1.ConfigMap
	require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "hello-config"}, &cm))
	require.Equal(t, version, cm.Data["chartVersion"])
	require.Equal(t, greeting, cm.Data["greeting"])
}
