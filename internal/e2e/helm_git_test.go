package e2e

import (
	"context"
	"net/http"
	"path"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestHelmFromGit: a HelmRelease whose chart is a directory of a GitRepository (R7a.2). The
// real source-controller builds the chart from the commit the developer pushed, the real
// helm-controller installs 1.0.0, and upgrades when 1.1.0 is committed to Git; both are
// recorded as deployments with their chart versions. A version range on a Git chart, which
// Flux would ignore, is refused at the API.
func TestHelmFromGit(t *testing.T) {
	const (
		slug     = "gitcharts"
		chartDir = "charts/hello"
		hrName   = "hello-git" // not scenario e's: helm-controller names the HelmChart after it
	)
	rig.Git.initRepo(t, slug)
	w := rig.Git.clone(t, slug)
	writeChart(t, w, chartDir, "hello", "1.0.0")
	first := w.commitAndPush(t, "hello chart 1.0.0")

	mustCall(t, http.StatusCreated, http.MethodPost, "/projects", obj{"slug": slug, "name": slug})
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/environments", obj{"name": "dev", "kind": "dev", "cluster": clusterName})
	p := &project{slug: slug, namespace: slug + "-dev"}
	// The charts' repository is connected like a fleet repository, without GitOps: fluxbridge
	// never writes to it, Flux only reads it.
	repo := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/repositories"), obj{
		"name": "charts", "url": rig.Git.url(slug),
		"auth": obj{"type": "https", "username": gitUser, "password": gitPass, "ca_cert": string(rig.Git.caPEM)},
	})
	p.repoID = id(repo, "id")
	gr := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/resources"), obj{
		"kind": "GitRepository", "namespace": fluxNamespace, "name": slug, "cluster": clusterName, "repository_id": p.repoID,
		"config": obj{"ref": obj{"branch": "main"}, "interval": "10m"},
	})
	p.gitRepoID = id(gr["items"].([]any)[0].(obj), "id")
	chart := obj{"chart": "./" + chartDir, "interval": "10m", "sourceRef": obj{"kind": "GitRepository", "name": slug}}
	hrConfig := obj{"chart": chart, "releaseName": "hello", "targetNamespace": p.namespace, "interval": "10m",
		"values": obj{"greeting": "hi from git"}}

	// Flux ignores chart.version for a chart from Git; fluxbridge says so rather than let a range
	// look like an upgrade policy.
	status, out := call(t, http.MethodPost, p.path("/environments/dev/resources"), obj{
		"kind": "HelmRelease", "namespace": fluxNamespace, "name": hrName,
		"config": mergeForm(hrConfig, obj{"chart": mergeForm(chart, obj{"version": ">=1.0.0 <2.0.0"})}),
	})
	require.Equal(t, http.StatusBadRequest, status, "%v", out)
	require.Equal(t, "config.chart.version", out["field"], "%v", out)

	hr := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/resources"), obj{
		"kind": "HelmRelease", "namespace": fluxNamespace, "name": hrName, "config": hrConfig,
	})
	hrID := id(hr["items"].([]any)[0].(obj), "id")

	if !t.Run("install from the pushed commit", func(t *testing.T) {
		d := p.waitChartDeployment(t, "1.0.0")
		require.Equal(t, float64(hrID), d["gitops_resource_id"])
		p.waitResource(t, hrID, "ready", "")
		require.Eventually(t, func() bool { return p.resource(t, hrID)["chart_version"] == "1.0.0" }, settleTimeout, pollEvery)
		requireChartConfig(t, p.namespace, "1.0.0", "hi from git")
		requireChartBuiltFrom(t, hrName, "./"+chartDir, first, "1.0.0")
	}) {
		return // the upgrade needs the install
	}

	t.Run("upgrade by a commit of the next version", func(t *testing.T) {
		w.pull(t)
		writeChart(t, w, chartDir, "hello", "1.1.0")
		second := w.commitAndPush(t, "hello chart 1.1.0")
		// The GitRepository reads the branch on its interval; ask for it now, as a person
		// (or a push webhook) would. source-controller rebuilds the chart from the new
		// artifact and helm-controller upgrades from the new chart, each on its own watch.
		mustCall(t, http.StatusAccepted, http.MethodPost, p.path("/resources/%d/reconcile", p.gitRepoID), nil)
		d := p.waitChartDeployment(t, "1.1.0")
		require.Equal(t, float64(hrID), d["gitops_resource_id"])
		require.Eventually(t, func() bool { return p.resource(t, hrID)["chart_version"] == "1.1.0" }, settleTimeout, pollEvery)
		requireChartConfig(t, p.namespace, "1.1.0", "hi from git")
		requireChartBuiltFrom(t, hrName, "./"+chartDir, second, "1.1.0")
		r := p.resource(t, hrID)
		require.GreaterOrEqual(t, len(r["helm_history"].([]any)), 2, "%v", r["helm_history"])

		var versions []string
		for _, it := range mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments?resource_id=%d", hrID), nil)["items"].([]any) {
			versions = append(versions, it.(obj)["revision"].(string))
		}
		require.Equal(t, []string{"1.1.0", "1.0.0"}, versions)
	})
}

// writeChart writes chart name at version into dir of a clone, the files the rig's Helm
// repository packs into its tarballs.
func writeChart(t testing.TB, w *workTree, dir, name, version string) {
	t.Helper()
	for f, body := range chartFiles(name, version) {
		w.write(t, path.Join(dir, f), body)
	}
}

// requireChartBuiltFrom waits until the HelmChart helm-controller made for the HelmRelease
// (in the source's namespace, "<namespace>-<name>") is built from the GitRepository at commit
// sha, at chart version.
func requireChartBuiltFrom(t testing.TB, hrName, chartPath, sha, version string) {
	t.Helper()
	key := client.ObjectKey{Namespace: fluxNamespace, Name: fluxNamespace + "-" + hrName}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var hc sourcev1.HelmChart
		if !assert.NoError(c, rig.Env.Client.Get(context.Background(), key, &hc)) {
			return
		}
		assert.Equal(c, sourcev1.GitRepositoryKind, hc.Spec.SourceRef.Kind)
		assert.Equal(c, chartPath, hc.Spec.Chart)
		assert.Equal(c, sha, shaOf(hc.Status.ObservedSourceArtifactRevision))
		if assert.NotNil(c, hc.Status.Artifact) {
			assert.Equal(c, version, hc.Status.Artifact.Revision)
		}
	}, settleTimeout, pollEvery)
}
