package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestFirstDeployBootstrapsEnvironment is scenario g: a project whose environments have no
// Flux objects and no namespace in the cluster. One UI deploy creates the GitRepository of the
// branch and the environment's Kustomization (through their apply jobs, with the alerting
// wired first), Flux creates the app's Namespace from the file the deploy wrote next to the
// app and then the Deployment, and the deployment succeeds from the event that came through
// the Alert. A second app in the same namespace leaves the Namespace file alone. A first
// deploy to a manual-sync environment creates its Kustomization suspended.
func TestFirstDeployBootstrapsEnvironment(t *testing.T) {
	ctx, c := context.Background(), rig.Env.Client
	p := newBareProject(t, "fresh", obj{"name": "ops", "kind": "dev", "cluster": clusterName, "gitops_config": obj{"syncPolicy": "manual"}})
	const (
		sourceName = "fresh-fleet-main" // <project>-<repository>-<branch>
		kustName   = "fresh-dev"        // <project>-<environment>
	)
	require.Error(t, c.Get(ctx, client.ObjectKey{Name: p.namespace}, &corev1.Namespace{}), "no namespace before the first deploy")

	out := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/deployments"), mergeForm(obj{"method": "gitops-ui"}, microservice("api", "1.0.0", 1)))
	depID := id(out, "deployment", "id")
	k, src := out["kustomization"].(obj), out["source"].(obj)
	require.Equal(t, true, k["created"], "%v", out)
	require.Equal(t, kustName, k["name"])
	require.Equal(t, true, src["created"], "%v", out)
	require.Equal(t, sourceName, src["name"])
	p.kustID, p.gitRepoID = id(k, "id"), id(src, "id")

	d := p.waitDeployment(t, depID, "succeeded")
	sha := d["commit_sha"].(string)
	require.Contains(t, d["revision"], sha)
	for _, rid := range []int64{p.gitRepoID, p.kustID} {
		require.Equal(t, "applied", p.resource(t, rid)["apply_status"])
	}

	// The objects fluxbridge created, as Flux sees them.
	var gr sourcev1.GitRepository
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: sourceName}, &gr))
	require.Equal(t, rig.Git.url(p.slug), gr.Spec.URL)
	require.Equal(t, "main", gr.Spec.Reference.Branch)
	require.Equal(t, "1m0s", gr.Spec.Interval.Duration.String())
	require.Equal(t, sourceName+"-auth", gr.Spec.SecretRef.Name, "the repository has credentials")
	var ks kustomizev1.Kustomization
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: kustName}, &ks))
	require.Equal(t, "./clusters/dev", ks.Spec.Path)
	require.Equal(t, sourceName, ks.Spec.SourceRef.Name)
	require.True(t, ks.Spec.Prune)
	require.True(t, ks.Spec.Wait)
	require.False(t, ks.Spec.Suspend)
	require.Equal(t, "10m0s", ks.Spec.Interval.Duration.String())
	require.Equal(t, "1m0s", ks.Spec.RetryInterval.Duration.String())
	require.Equal(t, "5m0s", ks.Spec.Timeout.Duration.String())
	require.Equal(t, shaOf(ks.Status.LastAppliedRevision), sha)

	// Flux created the namespace from the file in the environment's directory: it is in the
	// Kustomization's inventory, and Flux never prunes it.
	var ns corev1.Namespace
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: p.namespace}, &ns))
	require.Equal(t, "disabled", ns.Annotations["kustomize.toolkit.fluxcd.io/prune"])
	require.Equal(t, "fluxbridge", ns.Labels["app.kubernetes.io/managed-by"])
	require.True(t, inInventory(&ks, "_"+p.namespace+"__Namespace"), "%+v", ks.Status.Inventory)
	requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.0.0", 1)
	nsFile := "clusters/dev/namespaces/" + p.namespace + ".yaml"
	require.Contains(t, rig.Git.show(t, p.slug, sha, nsFile), "kind: Namespace")

	// The event came through the Alert fluxbridge wired for the new objects.
	require.Contains(t, alertSources(t, "fluxbridge-fresh-dev"), "Kustomization/"+kustName)
	require.Contains(t, alertSources(t, "fluxbridge-fresh"), "GitRepository/"+sourceName)
	ev := latestEvent(t, "Kustomization", kustName, sha)
	require.Equal(t, "dev", ev["environment"], "%v", ev)

	// A second app of the namespace: its commit holds its own files only, and Flux applies it
	// through the same objects.
	out = mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/deployments"), mergeForm(obj{"method": "gitops-ui"}, microservice("web", "1.0.0", 1)))
	require.Equal(t, false, out["kustomization"].(obj)["created"])
	require.Equal(t, float64(p.kustID), out["kustomization"].(obj)["id"])
	d = p.waitDeployment(t, id(out, "deployment", "id"), "succeeded")
	changed := rig.Git.git(t, rig.Git.bare(p.slug), "diff", "--name-only", sha, d["commit_sha"].(string))
	require.NotContains(t, changed, "namespaces/", "the namespace file is shared: %s", changed)
	requireImage(t, p.namespace, "web", "registry.example.com/acme/web:1.0.0", 1)

	// A manual-sync environment's Kustomization is created suspended: Flux applies its
	// directory only when someone asks.
	out = mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/ops/deployments"), mergeForm(obj{"method": "gitops-ui"}, microservice("api", "1.0.0", 1)))
	require.Equal(t, sourceName, out["source"].(obj)["name"], "the branch's GitRepository is shared")
	require.Equal(t, false, out["source"].(obj)["created"])
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var ops kustomizev1.Kustomization
		require.NoError(ct, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: "fresh-ops"}, &ops))
		require.True(ct, ops.Spec.Suspend)
		require.Equal(ct, "./clusters/ops", ops.Spec.Path)
	}, settleTimeout, pollEvery)
}

// newBareProject sets up a project as a team starts: an environment dev in the rig's cluster
// (and any others given), and the fleet repository over HTTPS with basic auth, GitOps enabled
// on it. No Flux object, no namespace: the first deploy brings them.
func newBareProject(t testing.TB, slug string, envs ...obj) *project {
	t.Helper()
	p := &project{slug: slug, namespace: slug + "-dev"}
	rig.Git.initRepo(t, slug)
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects", obj{"slug": slug, "name": slug})
	for _, env := range append([]obj{{"name": "dev", "kind": "dev", "cluster": clusterName}}, envs...) {
		mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/environments", env)
	}
	repo := mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/repositories", obj{
		"name": "fleet", "url": rig.Git.url(slug),
		"auth":   obj{"type": "https", "username": gitUser, "password": gitPass, "ca_cert": string(rig.Git.caPEM)},
		"gitops": obj{"enabled": true, "branch": "main", "path": "clusters"},
	})
	p.repoID = id(repo, "id")
	return p
}

// inInventory tells whether a Kustomization's inventory holds the entry id
// ("<namespace>_<name>_<group>_<kind>").
func inInventory(k *kustomizev1.Kustomization, id string) bool {
	if k.Status.Inventory == nil {
		return false
	}
	for _, e := range k.Status.Inventory.Entries {
		if strings.EqualFold(e.ID, id) {
			return true
		}
	}
	return false
}
