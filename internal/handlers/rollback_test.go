package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// deployApplied deploys form through the API and lets a Flux event settle it; it returns the
// deployment's ID and commit.
func (b *gitopsBundle) deployApplied(t *testing.T, form map[string]any) (int64, string) {
	t.Helper()
	status, created := b.call(t, http.MethodPost, "/environments/production/deployments", form)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id := int64(created["deployment"].(map[string]any)["id"].(float64))
	d := b.waitStatus(t, id)
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	sha := d["commit_sha"].(string)
	b.fluxApplied(t, sha)
	b.waitSucceeded(t, id)
	return id, sha
}

// fluxApplied posts the event of the environment's Kustomization applying commit sha.
func (b *gitopsBundle) fluxApplied(t *testing.T, sha string) {
	t.Helper()
	body := fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"metadata.revision": "main@sha1:" + sha, "message": "Reconciliation finished at " + sha,
	})
	resp, _ := b.post(t, "/hooks/flux/"+storetest.Cluster, body, map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// TestRollbackAPI rolls an app back to an earlier deployment: the targets it can go back to,
// the checks on the request, and the revert commit on the Git server as git shows it.
func TestRollbackAPI(t *testing.T) {
	b := setupGitops(t, true)
	b.connect(t, gitPass)
	d1, sha1 := b.deployApplied(t, apiForm("1.4.2", 2))
	d2, sha2 := b.deployApplied(t, apiForm("1.4.3", 3))
	const file = "clusters/production/api/deployment.yaml"
	v1 := b.git(t, "show", sha1+":"+file)
	require.NotEqual(t, v1, b.git(t, "show", sha2+":"+file))

	// What the app can go back to: both deployments, newest (current) first.
	status, targets := b.call(t, http.MethodGet, "/environments/production/apps/api/rollback-targets", nil)
	require.Equal(t, http.StatusOK, status, "%v", targets)
	items := targets["items"].([]any)
	require.Len(t, items, 2)
	first, second := items[0].(map[string]any), items[1].(map[string]any)
	require.Equal(t, sha2, first["commit_sha"])
	require.Equal(t, true, first["current"])
	require.Equal(t, sha1, second["commit_sha"])
	require.Equal(t, false, second["current"])
	require.Equal(t, "deploy api to production: new microservice, image ghcr.io/acme/api:1.4.2, replicas 2", second["subject"])
	require.Equal(t, float64(d1), second["deployment"].(map[string]any)["id"])
	require.Nil(t, targets["lock"])

	for name, tc := range map[string]struct {
		app    string
		body   map[string]any
		status int
		field  string
	}{
		"no deployment":        {"api", map[string]any{}, http.StatusBadRequest, "deployment_id"},
		"unknown strategy":     {"api", map[string]any{"deployment_id": d1, "strategy": "force-push"}, http.StatusBadRequest, "strategy"},
		"unknown deployment":   {"api", map[string]any{"deployment_id": 999999}, http.StatusBadRequest, "deployment_id"},
		"another app's deploy": {"web", map[string]any{"deployment_id": d1}, http.StatusBadRequest, "deployment_id"},
		"unknown field":        {"api", map[string]any{"deployment_id": d1, "force": true}, http.StatusBadRequest, "force"},
		"bad app name":         {"API", map[string]any{"deployment_id": d1}, http.StatusBadRequest, "app"},
	} {
		t.Run(name, func(t *testing.T) {
			status, got := b.call(t, http.MethodPost, "/environments/production/apps/"+tc.app+"/rollback", tc.body)
			require.Equal(t, tc.status, status, "%v", got)
			require.Equal(t, tc.field, got["field"], "%v", got)
		})
	}

	status, created := b.call(t, http.MethodPost, "/environments/production/apps/api/rollback", map[string]any{"deployment_id": d1})
	require.Equal(t, http.StatusCreated, status, "%v", created)
	rb := created["rollback"].(map[string]any)
	require.Equal(t, "revert", rb["strategy"])
	require.Equal(t, sha1, rb["target_commit"])
	require.Equal(t, "clusters/production/api", rb["path"])
	dep := created["deployment"].(map[string]any)
	require.Equal(t, "gitops-ui", dep["deployment_method"])
	require.Equal(t, "api", dep["app"])
	depID := int64(dep["id"].(float64))

	// One new commit, restoring the app's directory to its content at the first deploy.
	d := b.waitStatus(t, depID)
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	rev := d["commit_sha"].(string)
	require.Equal(t, rev, b.git(t, "rev-parse", "main"))
	require.Equal(t, sha2, b.git(t, "rev-parse", "main~1"), "a new commit on top; nothing rewritten")
	require.Equal(t, v1, b.git(t, "show", "main:"+file))
	require.Equal(t, fmt.Sprintf("roll back api in production to %s (deployment %d)", sha1[:12], d1), b.git(t, "log", "-1", "--format=%s"))
	require.Equal(t, fmt.Sprintf("Deployment-Id: %d\nRollback-To: %s\nRequested-By: Alice Example <alice@example.com>\nEnvironment: production", depID, sha1),
		b.git(t, "log", "-1", "--format=%(trailers:only,unfold)"))
	require.Equal(t, "Alice Example <alice@example.com> / fluxbridge <bot@fluxbridge.test>", b.git(t, "log", "-1", "--format=%an <%ae> / %cn <%ce>"))

	rbID := int64(rb["id"].(float64))
	var got map[string]any
	require.Eventually(t, func() bool {
		_, got = b.call(t, http.MethodGet, fmt.Sprintf("/environments/production/rollbacks/%d", rbID), nil)
		return got["phase"] != store.RollbackPending
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, rev, got["expected_commit"], "%v", got)

	// A second rollback of the app waits for the first.
	status, busy := b.call(t, http.MethodPost, "/environments/production/apps/api/rollback", map[string]any{"deployment_id": d2})
	require.Equal(t, http.StatusConflict, status, "%v", busy)

	// The audit log has the request (by alice) and the push (by the worker).
	var actions []string
	rows, err := b.pool.Query(context.Background(), `SELECT action || ':' || actor_name FROM audit_logs WHERE target_type = 'deployment' AND target_id = $1 ORDER BY id`, fmt.Sprint(depID))
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actions = append(actions, a)
	}
	require.Equal(t, []string{"deployment.rollback:alice", "deployment.pushed:rollback"}, actions)

	// The next deploy describes its change against what the rollback restored.
	status, created = b.call(t, http.MethodPost, "/environments/production/deployments", apiForm("1.4.4", 2))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	d = b.waitStatus(t, int64(created["deployment"].(map[string]any)["id"].(float64)))
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	require.Equal(t, "deploy api to production: image 1.4.2 → 1.4.4", b.git(t, "log", "-1", "--format=%s"))
	b.requireNoSecret(t, gitPass)
}
