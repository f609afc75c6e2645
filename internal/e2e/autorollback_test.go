package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAutoRollback is R7b.5's opt-in on the rig: in an environment with autoRollback, a
// console deploy whose Kustomization fails its health checks within its timeout (the new
// version's pods cannot be scheduled) is rolled back by fluxbridge itself — a revert commit
// to the previous successful deployment, as a person's rollback — audited and notified, and
// the real kustomize-controller applies it.
func TestAutoRollback(t *testing.T) {
	p := newProject(t, "autorb", projectOpts{envConfig: obj{"autoRollback": true}, timeout: "20s"})
	first := p.deploy(t, microservice("web", "1.0.0", 1))
	good := p.waitDeployment(t, first, "succeeded")

	bad := microservice("web", "1.1.0", 1)
	bad["resources"] = obj{"requests": obj{"cpu": "64"}, "limits": obj{"cpu": "64"}} // more than the node has
	second := p.deploy(t, bad)
	failed := p.waitDeployment(t, second, "failed")
	require.NotEmpty(t, failed["message"])

	// The automatic rollback: a console deployment of web, triggered by the failure.
	var rb obj
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		items := mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments?method=gitops-ui"), nil)["items"].([]any)
		rb = nil
		for _, it := range items {
			if d := it.(obj); d["trigger"] == "auto-rollback" {
				rb = d
			}
		}
		assert.NotNil(c, rb)
	}, settleTimeout, pollEvery)
	require.Equal(t, fmt.Sprint(second), rb["trigger_ref"])
	require.Equal(t, "web", rb["app"])
	done := p.waitDeployment(t, id(rb, "id"), "succeeded")
	requireImage(t, p.namespace, "web", "registry.example.com/acme/web:1.0.0", 1)

	msg := rig.Git.git(t, rig.Git.bare(p.slug), "log", "-1", "--format=%B", done["commit_sha"].(string))
	require.Contains(t, msg, "roll back web in dev to "+good["commit_sha"].(string)[:12])
	require.Contains(t, msg, "Rolled back automatically by fluxbridge: deployment "+fmt.Sprint(second)+" failed")
	require.Contains(t, msg, "Auto-Rollback-Of: "+fmt.Sprint(second))

	audit := mustCall(t, http.StatusOK, http.MethodGet, p.path("/audit?action=deployment.auto_rollback"), nil)["items"].([]any)
	require.Len(t, audit, 1)
	require.Equal(t, "system", audit[0].(obj)["actor_type"])
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		notes := mustCall(t, http.StatusOK, http.MethodGet, p.path("/notifications"), nil)["items"].([]any)
		found := false
		for _, n := range notes {
			if n.(obj)["title"] == fmt.Sprintf("web in dev failed: rolling back to deployment %d", first) {
				found = true
			}
		}
		assert.True(c, found, "%v", notes)
	}, settleTimeout, pollEvery)

	// The rollback is not rolled back again, and exactly one was made.
	n := 0
	for _, it := range mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments"), nil)["items"].([]any) {
		if it.(obj)["trigger"] == "auto-rollback" {
			n++
		}
	}
	require.Equal(t, 1, n)
}
