package e2e

import (
	"context"
	"net/http"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestRollbackPin rolls back with the pin strategy (R11.3): the environment's Kustomization
// reads a GitRepository pinned to the earlier commit (spec.ref.commit) instead of the branch,
// no deploy goes to the environment meanwhile, and unlocking points it back at the branch.
func TestRollbackPin(t *testing.T) {
	p := newProject(t, "pin", projectOpts{})
	ctx, c := context.Background(), rig.Env.Client
	first := p.deploy(t, microservice("api", "1.0.0", 1))
	d1 := p.waitDeployment(t, first, "succeeded")
	p.waitDeployment(t, p.deploy(t, microservice("api", "2.0.0", 1)), "succeeded")
	requireImage(t, p.namespace, "api", "registry.example.com/acme/api:2.0.0", 1)
	head := rig.Git.head(t, p.slug)

	rb := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/apps/api/rollback"), obj{"deployment_id": first, "strategy": "pin"})
	got := p.waitRollback(t, id(rb, "rollback", "id"), "succeeded")
	require.Equal(t, d1["commit_sha"], got["expected_commit"])
	requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.0.0", 1)
	require.Equal(t, head, rig.Git.head(t, p.slug), "a pin commits nothing")

	var k kustomizev1.Kustomization
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: p.slug + "-dev"}, &k))
	require.Equal(t, p.slug+"-dev-pinned", k.Spec.SourceRef.Name)
	var pinned sourcev1.GitRepository
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: p.slug + "-dev-pinned"}, &pinned))
	require.Equal(t, d1["commit_sha"], pinned.Spec.Reference.Commit)
	require.Equal(t, rig.Git.url(p.slug), pinned.Spec.URL)

	// While pinned, a deploy would never be applied: it is refused.
	status, out := call(t, http.MethodPost, p.path("/environments/dev/deployments"), mergeForm(obj{"method": "gitops-ui"}, microservice("api", "3.0.0", 1)))
	require.Equal(t, http.StatusConflict, status, "%v", out)
	require.Contains(t, out["error"], "pinned")

	// Unlocking points the Kustomization back at the branch: Flux applies its head again.
	mustCall(t, http.StatusOK, http.MethodPost, p.path("/environments/dev/apps/api/unlock"), nil)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		require.NoError(ct, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: p.slug + "-dev"}, &k))
		require.Equal(ct, p.slug, k.Spec.SourceRef.Name)
		err := c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: p.slug + "-dev-pinned"}, &pinned)
		require.True(ct, apierrors.IsNotFound(err), "the pinned GitRepository is deleted: %v", err)
	}, settleTimeout, pollEvery)
	p.waitResource(t, p.kustID, "ready", head)
	requireImage(t, p.namespace, "api", "registry.example.com/acme/api:2.0.0", 1)
}
