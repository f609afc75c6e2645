package fluxcontrol_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestProdChangeWaitsForApprovals: in a prod environment with the default two-person rule, a
// new Kustomization is stored but not applied until two other maintainers approve; a
// developer may not create one at all (deploy permission).
func TestProdChangeWaitsForApprovals(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	liveEnv, err := b.st.CreateEnvironment(ctx, b.pool, store.Environment{ProjectID: b.project.ID, Name: "live", Kind: "prod", Cluster: "west",
		GitopsConfig: json.RawMessage(`{"path":"deploy/live"}`)})
	require.NoError(t, err)
	body := map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "live-app",
		"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}}}

	maintainer := b.token
	b.token = b.member(t, "dan", "developer")
	var e apiError
	require.Equal(t, http.StatusForbidden, b.do(t, http.MethodPost, "/projects/shop/environments/live/resources", body, &e))
	require.Contains(t, e.Error, "permission denied")
	b.token = maintainer

	var out struct {
		Items []store.Resource
		Held  map[string]int64
	}
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/projects/shop/environments/live/resources", body, &out))
	res := out.Items[0]
	approvalID := out.Held[fmt.Sprint(res.ID)]
	require.NotZero(t, approvalID)
	require.Equal(t, *res.EnvironmentID, liveEnv.ID)
	require.Equal(t, store.ApplyPending, b.resource(t, res.ID).ApplyStatus)
	_, err = flux.Get(ctx, west.Client, flux.Ref{Kind: "Kustomization", Namespace: b.ns, Name: "live-app"})
	require.True(t, apierrors.IsNotFound(err), "held: not applied yet")

	for _, name := range []string{"ann", "bob"} {
		b.token = b.member(t, name, "maintainer")
		require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/approvals/%d/approve", approvalID),
			map[string]any{"reason": "reviewed"}, nil))
	}
	b.token = maintainer
	res = b.waitApplied(t, res.ID)
	require.Equal(t, "./deploy/live", specField(live(t, res), "path"))
}

// TestEnvironmentSyncPolicyReapplies: switching an environment to manual sync through the
// environments API suspends its Kustomization in the cluster; a bad sync policy is a 400.
func TestEnvironmentSyncPolicyReapplies(t *testing.T) {
	b := setup(t)
	_, ks := b.gitSourceAndKustomization(t, "staging")
	require.Equal(t, nil, specField(live(t, ks), "suspend"))

	var e apiError
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPatch, "/projects/shop/environments/staging",
		map[string]any{"gitops_config": map[string]any{"syncPolicy": "sometimes"}}, &e))
	require.Equal(t, "gitops_config.syncPolicy", e.Field)

	require.Equal(t, http.StatusOK, b.do(t, http.MethodPatch, "/projects/shop/environments/staging",
		map[string]any{"gitops_config": map[string]any{"syncPolicy": "manual", "path": "deploy/staging-v2"}}, nil))
	require.Eventually(t, func() bool {
		u := live(t, ks)
		return specField(u, "suspend") == true && specField(u, "path") == "./deploy/staging-v2"
	}, waitFor, poll, "the environment's objects are applied again with its new settings")
}
