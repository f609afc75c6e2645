package fluxcontrol_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestHelmAppReachesTheCluster: a helm-app deploy's HelmRelease and HelmRepository, applied as
// its push would (this bundle has no Git, so the test enqueues the applies the push carries),
// are accepted by the real apiserver's Flux CRDs with the built-in recovery defaults, the
// release confined to the environment (its ServiceAccount, its namespace as Helm's storage).
// helm-controller does not run here; the e2e suite installs charts.
func TestHelmAppReachesTheCluster(t *testing.T) {
	b := setup(t)
	var out struct {
		HelmRelease struct {
			ID int64 `json:"id"`
		} `json:"helm_release"`
		ChartSource struct {
			ID int64 `json:"id"`
		} `json:"chart_source"`
		Error string `json:"error"`
	}
	body := map[string]any{"method": "gitops-ui", "template": "helm-app", "app": "shop", "namespace": b.ns,
		"flux": map[string]any{"helmRelease": map[string]any{
			"chart": map[string]any{"chart": "podinfo", "version": ">=6.0.0 <7.0.0",
				"source": map[string]any{"helmRepository": map[string]any{"url": "https://stefanprodan.github.io/podinfo"}}},
			"values": map[string]any{"replicaCount": 2},
		}}}
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/environments/staging/deployments", body, &out), "%s", out.Error)
	require.NotZero(t, out.HelmRelease.ID)
	for _, id := range []int64{out.ChartSource.ID, out.HelmRelease.ID} {
		b.insertJob(t, jobs.ApplyResourceArgs{ResourceID: id})
	}
	src, hr := b.waitApplied(t, out.ChartSource.ID), b.waitApplied(t, out.HelmRelease.ID)

	require.Equal(t, "https://stefanprodan.github.io/podinfo", specField(live(t, src), "url"))
	u := live(t, hr)
	require.Equal(t, int64(3), specField(u, "install", "remediation", "retries"))
	require.Equal(t, int64(3), specField(u, "upgrade", "remediation", "retries"))
	require.Equal(t, true, specField(u, "upgrade", "remediation", "remediateLastFailure"))
	require.Equal(t, "rollback", specField(u, "upgrade", "remediation", "strategy"))
	require.Equal(t, true, specField(u, "upgrade", "cleanupOnFail"))
	require.Equal(t, "5m0s", specField(u, "timeout"))
	require.Equal(t, int64(5), specField(u, "maxHistory"))
	require.Equal(t, ">=6.0.0 <7.0.0", specField(u, "chart", "spec", "version"))
	require.Equal(t, src.Name, specField(u, "chart", "spec", "sourceRef", "name"))
	require.Equal(t, "shop", specField(u, "releaseName"))
	require.Equal(t, b.ns, specField(u, "targetNamespace"))
	require.Equal(t, b.ns, specField(u, "storageNamespace"))
	require.Equal(t, "fluxbridge-shop-staging", specField(u, "serviceAccountName"))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM gitops_resources WHERE id = $1 AND environment_id = $2`, hr.ID, b.staging.ID))
	require.Equal(t, store.ApplyApplied, b.resource(t, hr.ID).ApplyStatus, fmt.Sprint(hr.ApplyError))
}
