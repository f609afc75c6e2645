package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

func TestReadAPI(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for i := range 5 {
		_, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
			ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID, GitopsResourceID: &b.seed.Kustomization.ID,
			Method: store.MethodGitopsUI, Status: store.DeployPushed, CommitSHA: fmt.Sprintf("%040x", i+1),
		})
		require.NoError(t, err)
	}
	_, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID, Method: store.MethodManual, Status: store.DeploySucceeded,
	})
	require.NoError(t, err)

	t.Run("filter by method", func(t *testing.T) {
		resp, got := b.get(t, "/api/v1/projects/webapp/deployments?method=manual")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, got["items"], 1)
	})
	t.Run("keyset paging", func(t *testing.T) {
		resp, got := b.get(t, "/api/v1/projects/webapp/deployments?method=gitops-ui&limit=2")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, got["items"], 2)
		seen := 2
		for got["next_before"] != nil {
			_, got = b.get(t, fmt.Sprintf("/api/v1/projects/webapp/deployments?method=gitops-ui&limit=2&before=%.0f", got["next_before"]))
			seen += len(got["items"].([]any))
		}
		require.Equal(t, 5, seen)
	})
	t.Run("resources by cluster and kind", func(t *testing.T) {
		resp, got := b.get(t, "/api/v1/projects/webapp/resources?cluster=prod-eu&kind=Kustomization")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		items := got["items"].([]any)
		require.Len(t, items, 1)
		require.Equal(t, "webapp-production", items[0].(map[string]any)["name"])
	})
	t.Run("another project's resource is not found", func(t *testing.T) {
		other, err := b.st.CreateProject(ctx, b.pool, store.Project{Slug: "other", Name: "Other"})
		require.NoError(t, err)
		_ = other
		resp, _ := b.get(t, fmt.Sprintf("/api/v1/projects/other/resources/%d", b.seed.HelmRelease.ID))
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, got := b.get(t, "/api/v1/projects/other/deployments")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, got["items"])
	})
	t.Run("projects and environments", func(t *testing.T) {
		resp, got := b.get(t, "/api/v1/projects/webapp/environments")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "production", got["items"].([]any)[0].(map[string]any)["name"])
		resp, got = b.get(t, "/api/v1/projects/webapp")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "Web app", got["name"])
	})
	t.Run("all resources across projects, by cluster", func(t *testing.T) {
		resp, got := b.get(t, "/api/v1/resources?cluster=prod-eu")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, got["items"], 3)
	})
	t.Run("one resource", func(t *testing.T) {
		resp, got := b.get(t, fmt.Sprintf("/api/v1/projects/webapp/resources/%d", b.seed.HelmRelease.ID))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "HelmRelease", got["kind"])
	})
	t.Run("repositories with sync status", func(t *testing.T) {
		resp, got := b.get(t, "/api/v1/projects/webapp/repositories")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		repo := got["items"].([]any)[0].(map[string]any)
		require.Equal(t, "unknown", repo["flux_sync_status"])
		require.Equal(t, "webapp-git", repo["credential_ref"], "a reference, never a secret")
	})

	bad := []struct {
		path, field string
		status      int
	}{
		{"/api/v1/projects/webapp/deployments?method=ftp", "method", 400},
		{"/api/v1/projects/webapp/deployments?status=done", "status", 400},
		{"/api/v1/projects/webapp/deployments?environment_id=abc", "environment_id", 400},
		{"/api/v1/projects/webapp/deployments?limit=100000", "limit", 400},
		{"/api/v1/projects/webapp/deployments?before=-1", "before", 400},
		{"/api/v1/projects/webapp/resources?kind=Pod", "kind", 400},
		{"/api/v1/resources?kind=Pod", "kind", 400},
		{"/api/v1/projects/webapp/audit?since=yesterday", "since", 400},
		{"/api/v1/audit?actor_type=robot", "actor_type", 400},
		{"/api/v1/projects/webapp/resources/abc", "id", 400},
		{"/api/v1/projects/webapp/resources/999999", "", 404},
		{"/api/v1/projects/webapp/deployments/999999", "", 404},
		{"/api/v1/projects/nope/deployments", "", 404},
		{"/api/v1/nothing", "", 404},
	}
	for _, tt := range bad {
		t.Run(tt.path, func(t *testing.T) {
			resp, got := b.get(t, tt.path)
			require.Equal(t, tt.status, resp.StatusCode, got)
			require.NotEmpty(t, got["error"])
			if tt.field != "" {
				require.Equal(t, tt.field, got["field"])
			}
		})
	}
}

func TestHealthAndMetrics(t *testing.T) {
	b := setup(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, got := b.get(t, p)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "ok", got["status"])
	}
	b.post(t, "/hooks/flux/prod-eu", []byte(`{}`), nil) // a 401, counted
	b.get(t, "/api/v1/projects/webapp/events/stream")   // counted, but no latency
	resp, err := http.Get(b.srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(raw), `fluxbridge_webhook_events_total{cluster="prod-eu",result="unauthorized"} 1`)
	require.Contains(t, string(raw), `fluxbridge_http_requests_total{code="200",method="GET",route="/readyz"} 1`)
	require.Contains(t, string(raw), `fluxbridge_http_request_duration_seconds_bucket`)
	require.Contains(t, string(raw), `route="/api/v1/projects/{project}/events/stream"}`)
	require.NotContains(t, string(raw), `fluxbridge_http_request_duration_seconds_count{method="GET",route="/api/v1/projects/{project}/events/stream"}`)

	b.pool.Close() // the database goes away: not ready any more, still alive
	resp, _ = b.get(t, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, _ = b.get(t, "/healthz")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
