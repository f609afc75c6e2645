package e2e

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDependencyWaiting checks R16.2/R16.4 on real Flux: a Kustomization whose dependency
// fails is not applied, and the resource API shows it waiting on that dependency, named, with
// the dependency's own failure; once the dependency is fixed it goes ahead.
func TestDependencyWaiting(t *testing.T) {
	// The environment owns the namespace its infra Kustomization creates: its Kustomizations
	// impersonate the environment's ServiceAccount, which may write nowhere else.
	p := newProject(t, "deps", projectOpts{envConfig: obj{"namespaces": []any{"deps-infra"}}})
	infra := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/resources"), obj{
		"kind": "Kustomization", "namespace": fluxNamespace, "name": "deps-infra",
		"config": obj{"sourceRef": obj{"kind": "GitRepository", "name": p.slug}, "path": "./infra", "prune": true,
			"interval": "10m", "retryInterval": "5s"},
	})
	infraID := id(infra["items"].([]any)[0].(obj), "id")
	apps := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/resources"), obj{
		"kind": "Kustomization", "namespace": fluxNamespace, "name": "deps-apps",
		"config": obj{"sourceRef": obj{"kind": "GitRepository", "name": p.slug}, "path": "./", "prune": false,
			"interval": "10m", "retryInterval": "5s", "dependsOn": []any{obj{"name": "deps-infra"}}},
	})
	appsID := id(apps["items"].([]any)[0].(obj), "id")

	// ./infra does not exist: infra fails, apps waits on it.
	var r obj
	if !assert.Eventually(t, func() bool {
		r = p.resource(t, appsID)
		w, _ := r["waiting_on"].(obj)
		return w != nil && w["reason"] == "ArtifactFailed"
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("apps never shown waiting on a failed infra: %v", r)
	}
	require.Equal(t, "DependencyNotReady", r["status_reason"])
	require.Equal(t, "reconciling", r["status"], "waiting, not failed")
	w := r["waiting_on"].(obj)
	require.Equal(t, "deps-infra", w["name"])
	require.Equal(t, fluxNamespace, w["namespace"])
	require.Equal(t, float64(infraID), w["id"])
	require.NotEqual(t, "ready", w["status"])
	require.Contains(t, w["message"], "infra", "the dependency's own failure")
	require.Empty(t, r["last_applied_revision"], "Flux applied nothing while waiting")

	// The developer adds ./infra; infra becomes ready and apps goes ahead.
	wt := rig.Git.clone(t, p.slug)
	wt.write(t, "infra/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: deps-infra\n")
	sha := wt.commitAndPush(t, "add infra")
	mustCall(t, http.StatusAccepted, http.MethodPost, p.path("/resources/%d/reconcile", infraID), obj{"with_source": true})
	p.waitResource(t, infraID, "ready", sha)
	r = p.waitResource(t, appsID, "ready", sha)
	require.Nil(t, r["waiting_on"])
}
