package handlers_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const envs = "/api/v1/projects/webapp/environments"

// TestEnvironmentChangeIsHeldForApproval: in production (two approvals by default), changing
// gitops_config is itself held, so one maintainer cannot switch the two-person rule off. Once
// two others approve, the worker applies it, and the next prod deploy runs at once.
func TestEnvironmentChangeIsHeldForApproval(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	rita := f.tokens["requester"]
	off := map[string]any{"gitops_config": map[string]any{"requiredApprovals": 0}}

	resp, got := b.do(t, f.tokens["developer"], http.MethodPatch, envs+"/production", off)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
	require.Equal(t, "environment.update", got["action"])

	resp, got = b.do(t, rita, http.MethodPatch, envs+"/production", off)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, got)
	require.Equal(t, float64(2), got["environment"].(map[string]any)["access"].(map[string]any)["required_approvals"])
	require.JSONEq(t, `{"requiredApprovals": 0}`, mustJSON(t, got["proposed_gitops_config"]))
	id := int64(got["approval"].(map[string]any)["id"].(float64))

	resp, got = b.do(t, rita, http.MethodPatch, envs+"/production", map[string]any{"gitops_config": map[string]any{"path": "x"}})
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	require.Contains(t, got["error"], "already awaiting approval")
	resp, got = b.do(t, rita, http.MethodPost, approvePath(id), nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
	_, got = b.get(t, envs+"/production")
	require.Equal(t, float64(2), got["access"].(map[string]any)["required_approvals"], "nothing changed yet")

	b.startWorker(t)
	for _, role := range []string{"maintainer", "owner"} {
		resp, got = b.do(t, f.tokens[role], http.MethodPost, approvePath(id), nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, got)
	}
	require.Equal(t, true, got["released"])
	require.Eventually(t, func() bool {
		_, got := b.get(t, envs+"/production")
		return got["access"].(map[string]any)["required_approvals"] == float64(0)
	}, 10*time.Second, 50*time.Millisecond, "the worker applied the approved change")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'environment.update_applied' AND details->'approved_by' = '["Max", "Olga"]'`))

	resp, got = b.do(t, rita, http.MethodPost, envs+"/production/deployments", map[string]any{"method": "manual", "app": "web", "revision": "v9"})
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)
	require.Nil(t, got["approval"])
	dep := int64(got["deployment"].(map[string]any)["id"].(float64))
	require.Eventually(t, func() bool { return f.deployment(t, dep)["status"] == "succeeded" }, 10*time.Second, 50*time.Millisecond)
}

func TestCreateEnvironment(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	tok := f.tokens["maintainer"]
	bad := []struct {
		body  string
		field string
	}{
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": {"requiredApprovals": 0}}`, "gitops_config.requiredApprovals"},
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": {"requiredApprovals": 1}}`, "gitops_config.requiredApprovals"},
		{`{"name": "Prod", "kind": "prod", "cluster": "prod-eu"}`, "name"},
		{`{"name": "prod2", "kind": "production", "cluster": "prod-eu"}`, "kind"},
		{`{"name": "prod2", "kind": "prod", "cluster": "mars"}`, "cluster"},
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": [1]}`, "gitops_config"},
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": {"deployRoles": ["root"]}}`, "gitops_config.deployRoles"},
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": {"approvalTTL": 5}}`, "gitops_config.approvalTTL"},
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": {"autoRollback": "yes"}}`, "gitops_config.autoRollback"},
		{`{"name": 7}`, "name"},
		{`{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "extra": 1}`, "extra"},
	}
	for _, c := range bad {
		resp, got := b.do(t, tok, http.MethodPost, envs, c.body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %v", c.body, got)
		require.Equal(t, c.field, got["field"], c.body)
		require.NotEmpty(t, got["error"])
	}
	resp, got := b.do(t, tok, http.MethodPost, envs, `{"name": "prod2", "kind": "prod", "cluster": "prod-eu", "gitops_config": {"requiredApprovals": 3, "approvalTTL": "24h"}}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)
	require.Equal(t, map[string]any{"deploy_roles": []any{"maintainer", "owner"}, "deploy_users": []any{},
		"required_approvals": float64(3), "approval_ttl": "24h0m0s"}, got["access"])
	resp, got = b.do(t, tok, http.MethodPost, envs, `{"name": "prod2", "kind": "prod", "cluster": "prod-eu"}`)
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	resp, got = b.do(t, tok, http.MethodPost, envs, `{"name": "dev", "kind": "dev", "cluster": "staging", "gitops_config": {"requiredApprovals": 0}}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)

	// A dev environment changes at once; deployRoles narrows who may deploy there.
	resp, got = b.do(t, tok, http.MethodPatch, envs+"/dev", `{"gitops_config": {"deployRoles": ["maintainer"], "deployUsers": ["dev"]}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	resp, got = b.do(t, f.tokens["developer"], http.MethodPost, envs+"/dev/deployments", `{"method": "manual", "app": "web", "revision": "1"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got, "dev is listed in deployUsers")
	resp, got = b.do(t, f.tokens["owner"], http.MethodPost, envs+"/dev/deployments", `{"method": "manual", "app": "web", "revision": "1"}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
	require.Equal(t, `the deploy permission of environment "dev": project role maintainer, or being one of the users dev`, got["required_role"])
	require.Equal(t, "project role owner", got["your_role"])
	resp, got = b.do(t, tok, http.MethodPatch, envs+"/dev", `{"gitops_config": {"requiredApprovals": 42}}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, got)
	require.Equal(t, "gitops_config.requiredApprovals", got["field"])
}

func TestDeployRequestValidation(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	path := envs + "/staging/deployments"
	for _, c := range []struct{ body, field string }{
		{`{"method": "ftp", "app": "web", "revision": "1"}`, "method"},
		{`{"method": "gitops-ui", "app": "web", "revision": "1"}`, "revision"}, // the form has no revision
		{`{"method": "manual", "app": "Web App", "revision": "1"}`, "app"},
		{`{"method": "manual", "app": "web", "revision": ""}`, "revision"},
		{`{"method": "manual", "app": "web", "revision": "v 1"}`, "revision"},
		{`{"method": "manual", "app": "web", "revision": "1", "message": "` + strings.Repeat("x", 2001) + `"}`, "message"},
		{`{"method": "manual", "app": "web", "revision": "1", "message": "bell\u0007"}`, "message"},
		{`{"method": "manual", "app": "web", "revision": 1}`, "revision"},
	} {
		resp, got := b.do(t, f.tokens["developer"], http.MethodPost, path, c.body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %v", c.body, got)
		require.Equal(t, c.field, got["field"], c.body)
	}
	for _, c := range []struct {
		body   string
		ctype  string
		status int
	}{
		{``, "application/json", 400},
		{`{"method": "manual"} {}`, "application/json", 400},
		{`{"method": `, "application/json", 400},
		{`[]`, "application/json", 400},
		{`method=manual`, "application/x-www-form-urlencoded", 415},
		{`{"message": "` + strings.Repeat("x", 1<<20) + `"}`, "application/json", 413},
	} {
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+path, bytes.NewReader([]byte(c.body)))
		req.Header.Set("Authorization", "Bearer "+f.tokens["developer"])
		req.Header.Set("Content-Type", c.ctype)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		got := decodeBody(t, resp.Body)
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, "%.40s: %v", c.body, got)
		require.NotEmpty(t, got["error"])
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM deployments WHERE environment_id = $1`, f.staging.ID))
}

func TestTokenLifecycle(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	resp, got := b.do(t, f.tokens["viewer"], http.MethodPost, "/api/v1/tokens", `{"name": "ci", "expires_in": "24h"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)
	tok := got["token"].(string)
	require.True(t, strings.HasPrefix(tok, "fxb_"))
	require.Equal(t, tok[:12], got["prefix"])
	require.NotNil(t, got["expires_at"])
	id := got["id"].(float64)

	resp, got = b.do(t, tok, http.MethodGet, "/api/v1/tokens", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.Len(t, got["items"], 2)
	require.NotContains(t, mustJSON(t, got), tok, "a token is shown once")
	require.NotContains(t, mustJSON(t, got), "hash")

	resp, got = b.do(t, f.tokens["developer"], http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%.0f", id), nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "someone else's token: %v", got)
	resp, got = b.do(t, f.tokens["viewer"], http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%.0f", id), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.NotNil(t, got["revoked_at"])
	resp, _ = b.do(t, tok, http.MethodGet, "/api/v1/me", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	for _, body := range []string{`{"name": ""}`, `{"name": "x", "expires_in": "soon"}`, `{"name": "x", "expires_in": "-1h"}`,
		`{"name": "x", "expires_in": "1h", "expires_at": "2099-01-01T00:00:00Z"}`} {
		resp, got = b.do(t, f.tokens["viewer"], http.MethodPost, "/api/v1/tokens", body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %v", body, got)
	}
	resp, got = b.do(t, b.admin, http.MethodPost, "/api/v1/users/vera/tokens", `{"name": "for vera"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)
	resp, got = b.do(t, got["token"].(string), http.MethodGet, "/api/v1/me", nil)
	require.Equal(t, "vera", got["user"].(map[string]any)["username"])
}

func TestProjectsAndMembers(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	resp, got := b.do(t, b.admin, http.MethodPost, "/api/v1/projects", `{"slug": "shop", "name": "Shop", "owner": "nora"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)

	slugs := func(token string) []string {
		_, got := b.do(t, token, http.MethodGet, "/api/v1/projects", nil)
		var out []string
		for _, p := range got["items"].([]any) {
			out = append(out, p.(map[string]any)["slug"].(string))
		}
		return out
	}
	require.Equal(t, []string{"shop"}, slugs(f.tokens["nonmember"]), "only one's own projects")
	require.Equal(t, []string{"webapp"}, slugs(f.tokens["viewer"]))
	require.Equal(t, []string{"shop", "webapp"}, slugs(b.admin))

	resp, got = b.do(t, f.tokens["viewer"], http.MethodGet, "/api/v1/projects/shop", nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
	require.Equal(t, "not a member of project shop", got["your_role"])

	owner := f.tokens["owner"]
	resp, got = b.do(t, owner, http.MethodPut, "/api/v1/projects/webapp/members/olga", `{"role": "maintainer"}`)
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	require.Contains(t, got["error"], "without an owner")
	resp, got = b.do(t, owner, http.MethodDelete, "/api/v1/projects/webapp/members/olga", nil)
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	resp, got = b.do(t, owner, http.MethodPut, "/api/v1/projects/webapp/members/nora", `{"role": "owner"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)
	resp, got = b.do(t, owner, http.MethodPut, "/api/v1/projects/webapp/members/nora", `{"role": "superuser"}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, got)
	resp, _ = b.do(t, owner, http.MethodDelete, "/api/v1/projects/webapp/members/olga", nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "another owner exists now")
	resp, got = b.do(t, owner, http.MethodGet, "/api/v1/projects/webapp", nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "olga is no member any more: %v", got)
	resp, got = b.do(t, owner, http.MethodPut, "/api/v1/projects/webapp/members/nobody", `{"role": "viewer"}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
	resp, got = b.do(t, b.admin, http.MethodPut, "/api/v1/projects/webapp/members/nobody", `{"role": "viewer"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, got)
}

func TestUsers(t *testing.T) {
	b := setup(t)
	resp, got := b.do(t, b.admin, http.MethodPost, "/api/v1/users", `{"username": "erin", "email": "Erin <erin@example.com>"}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, got)
	require.Equal(t, "email", got["field"])
	resp, got = b.do(t, b.admin, http.MethodPost, "/api/v1/users", `{"username": "erin", "email": "erin@example.com", "is_admin": true}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, got)
	resp, got = b.do(t, b.admin, http.MethodPost, "/api/v1/users", `{"username": "erin"}`)
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)

	resp, got = b.do(t, b.admin, http.MethodPatch, "/api/v1/users/erin", `{"disabled": true}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	resp, got = b.do(t, b.admin, http.MethodPatch, "/api/v1/users/root", `{"is_admin": false}`)
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	require.Contains(t, got["error"], "last enabled admin")
	resp, got = b.do(t, b.admin, http.MethodPatch, "/api/v1/users/erin", `{"disabled": false}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	resp, got = b.do(t, b.admin, http.MethodPatch, "/api/v1/users/root", `{"disabled": true}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "erin is an admin too: %v", got)
	resp, _ = b.do(t, b.admin, http.MethodGet, "/api/v1/me", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
