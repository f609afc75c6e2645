package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// apiForm is the deploy body most tests send.
func apiForm(tag string, replicas int) map[string]any {
	return map[string]any{"method": "gitops-ui", "template": "microservice", "app": "api", "image": "ghcr.io/acme/api",
		"tag": tag, "replicas": replicas, "ports": []any{map[string]any{"container_port": 8080}},
		"env": []any{map[string]any{"name": "DB_PASSWORD", "secret_key_ref": map[string]any{"name": "api-db", "key": "password"}}}}
}

// TestDeployFromTheAPI walks the whole UI → Git path: connect a repository over HTTPS with
// basic auth, validate it, preview a deploy, deploy twice, and let Flux's event settle it.
func TestDeployFromTheAPI(t *testing.T) {
	b := setupGitops(t, true)
	repoID := b.connect(t, gitPass)

	status, v := b.call(t, http.MethodPost, fmt.Sprintf("/repositories/%d/validate", repoID), nil)
	require.Equal(t, http.StatusOK, status, "%v", v)
	require.Equal(t, true, v["valid"], "%v", v)
	checks := v["checks"].([]any)
	require.Len(t, checks, 2)
	require.Equal(t, "environment production", checks[1].(map[string]any)["target"])
	require.Equal(t, "clusters/production", checks[1].(map[string]any)["path"])

	// Preview: files and a diff against the head, and no commit.
	head := b.git(t, "rev-parse", "main")
	status, p := b.call(t, http.MethodPost, "/environments/production/deployments/preview", apiForm("1.4.2", 2))
	require.Equal(t, http.StatusOK, status, "%v", p)
	require.Equal(t, head, p["head"])
	require.Len(t, p["files"], 4, "the app's three files and its namespace's")
	require.Contains(t, p["changed"], "clusters/production/namespaces/webapp-production.yaml")
	require.Contains(t, p["diff"], "+++ b/clusters/production/api/deployment.yaml")
	require.Contains(t, p["diff"], "+        image: ghcr.io/acme/api:1.4.2")
	require.Equal(t, head, b.git(t, "rev-parse", "main"), "a preview commits nothing")
	k := p["kustomization"].(map[string]any)
	require.Equal(t, "webapp-production", k["name"], "the environment's Kustomization row")
	require.Equal(t, float64(b.seed.Kustomization.ID), k["id"])
	require.Equal(t, false, k["created"])

	status, created := b.call(t, http.MethodPost, "/environments/production/deployments", apiForm("1.4.2", 2))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	first := created["deployment"].(map[string]any)
	require.Equal(t, "gitops-ui", first["deployment_method"])
	require.Equal(t, float64(b.seed.Kustomization.ID), first["gitops_resource_id"])
	d1 := b.waitStatus(t, int64(first["id"].(float64)))
	require.Equal(t, store.DeployPushed, d1["status"], "%v", d1)

	status, created = b.call(t, http.MethodPost, "/environments/production/deployments", apiForm("1.4.3", 3))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id2 := int64(created["deployment"].(map[string]any)["id"].(float64))
	d2 := b.waitStatus(t, id2)
	require.Equal(t, store.DeployPushed, d2["status"], "%v", d2)

	// Exactly one commit per deploy, on the environment's branch and path, as git shows it.
	require.Equal(t, "3", b.git(t, "rev-list", "--count", "main"))
	require.Equal(t, d2["commit_sha"], b.git(t, "rev-parse", "main"))
	require.Equal(t, "deploy api to production: image 1.4.2 → 1.4.3, replicas 2 → 3", b.git(t, "log", "-1", "--format=%s"))
	require.Equal(t, "Alice Example <alice@example.com> / fluxbridge <bot@fluxbridge.test>", b.git(t, "log", "-1", "--format=%an <%ae> / %cn <%ce>"))
	require.Equal(t, fmt.Sprintf("Deployment-Id: %d\nRequested-By: Alice Example <alice@example.com>\nEnvironment: production", id2),
		b.git(t, "log", "-1", "--format=%(trailers:only,unfold)"))
	require.Equal(t, "clusters/production/api/deployment.yaml", b.git(t, "diff", "--name-only", "main~1", "main"))
	require.Equal(t, "Alice Example <alice@example.com>", d2["commit_author"])
	// The deployment's commit diff is that commit's, as git shows it.
	status, diff := b.call(t, http.MethodGet, fmt.Sprintf("/deployments/%d/diff", id2), nil)
	require.Equal(t, http.StatusOK, status, "%v", diff)
	require.Equal(t, d2["commit_sha"], diff["sha"])
	require.Equal(t, b.git(t, "rev-parse", "main~1"), diff["parent"])
	require.Equal(t, []any{map[string]any{"path": "clusters/production/api/deployment.yaml", "action": "modified"}}, diff["files"])
	require.Contains(t, diff["diff"], "-        image: ghcr.io/acme/api:1.4.2\n+        image: ghcr.io/acme/api:1.4.3\n")
	manual, err := b.st.CreateDeployment(context.Background(), b.pool, store.NewDeployment{ProjectID: b.seed.Project.ID,
		EnvironmentID: b.seed.Env.ID, Method: store.MethodManual, Status: store.DeploySucceeded})
	require.NoError(t, err)
	status, diff = b.call(t, http.MethodGet, fmt.Sprintf("/deployments/%d/diff", manual.ID), nil)
	require.Equal(t, http.StatusConflict, status, "%v", diff)
	require.Contains(t, diff["error"], "made no commit")
	status, _ = b.call(t, http.MethodGet, "/deployments/987654/diff", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.True(t, strings.HasPrefix(d2["commit_message"].(string), "deploy api to production: image 1.4.2 → 1.4.3"))

	// Flux applies the head: both deployments succeed (the first through ancestry).
	body := fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"metadata.revision": "main@sha1:" + d2["commit_sha"].(string)})
	resp, _ := b.post(t, "/hooks/flux/"+storetest.Cluster, body, map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	for _, id := range []int64{int64(first["id"].(float64)), id2} {
		b.waitSucceeded(t, id)
	}

	b.requireNoSecret(t, gitPass)
	b.requireStored(t, gitPass)
}

// waitSucceeded waits for the event worker to settle deployment id.
func (b *gitopsBundle) waitSucceeded(t *testing.T, id int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, d := b.call(t, http.MethodGet, fmt.Sprintf("/deployments/%d", id), nil)
		return d["status"] == store.DeploySucceeded
	}, 30*time.Second, 50*time.Millisecond)
}

// requireNoSecret checks that secret appears in no text, jsonb or bytea column of any table
// (river_job args included) and in no log line of the receiver and worker.
func (b *gitopsBundle) requireNoSecret(t *testing.T, secret string) {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `
		SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')`)
	require.NoError(t, err)
	type col struct{ table, column, typ string }
	var cols []col
	for rows.Next() {
		var c col
		require.NoError(t, rows.Scan(&c.table, &c.column, &c.typ))
		cols = append(cols, c)
	}
	require.NoError(t, rows.Err())
	require.Greater(t, len(cols), 50, "every table's columns were found")
	scanned := map[string]bool{}
	for _, c := range cols {
		cond := fmt.Sprintf("strpos(%q::text, $1) > 0", c.column)
		if c.typ == "bytea" {
			cond = fmt.Sprintf("position(convert_to($1, 'UTF8') in %q) > 0", c.column)
		}
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %q WHERE %s", c.table, cond), secret).Scan(&n))
		require.Zero(t, n, "the secret is in %s.%s", c.table, c.column)
		scanned[c.table] = true
	}
	require.True(t, scanned["river_job"] && scanned["repositories"] && scanned["audit_logs"] && scanned["deployments"])
	require.Positive(t, b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'commit_push'"))
	logs := b.logs.String()
	require.Contains(t, logs, "deployment pushed", "the worker's log was captured")
	require.NotContains(t, logs, secret)
}

// requireStored checks that the secret store holds secret as the fleet repository's password.
func (b *gitopsBundle) requireStored(t *testing.T, secret string) {
	t.Helper()
	ctx := context.Background()
	var ref string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT credential_ref FROM repositories WHERE name = 'fleet'`).Scan(&ref))
	data, err := b.secrets.Get(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, secret, string(data["password"]))
}

func TestDeployWithWrongPasswordFailsFast(t *testing.T) {
	b := setupGitops(t, true)
	repoID := b.connect(t, "wrong-password-0042")
	status, v := b.call(t, http.MethodPost, fmt.Sprintf("/repositories/%d/validate", repoID), nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, v["valid"])
	c := v["checks"].([]any)[0].(map[string]any)
	require.Equal(t, "auth", c["field"])
	require.Contains(t, c["error"], "authentication required")

	status, created := b.call(t, http.MethodPost, "/environments/production/deployments", apiForm("1.0.0", 2))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id := int64(created["deployment"].(map[string]any)["id"].(float64))
	d := b.waitStatus(t, id)
	require.Equal(t, store.DeployFailed, d["status"])
	require.Contains(t, d["message"], "rotate the credentials")
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'commit_push' AND state = 'cancelled' AND attempt = 1") == 1
	}, 10*time.Second, 20*time.Millisecond, "cancelled after one attempt: no retry storm")

	// Rotating the credentials fixes it; the old password is gone everywhere.
	status, _ = b.call(t, http.MethodPut, fmt.Sprintf("/repositories/%d/credentials", repoID), map[string]any{
		"auth": map[string]any{"type": "https", "username": gitUser, "password": gitPass, "ca_cert": string(b.ca)}})
	require.Equal(t, http.StatusOK, status)
	status, created = b.call(t, http.MethodPost, "/environments/production/deployments", apiForm("1.0.0", 2))
	require.Equal(t, http.StatusCreated, status)
	d = b.waitStatus(t, int64(created["deployment"].(map[string]any)["id"].(float64)))
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	b.requireNoSecret(t, "wrong-password-0042")
	b.requireNoSecret(t, gitPass)
	b.requireStored(t, gitPass)
}

func TestDeployRejectsBadInput(t *testing.T) {
	b := setupGitops(t, false)
	b.connect(t, gitPass)
	with := func(k string, v any) map[string]any {
		f := apiForm("1.0.0", 2)
		f[k] = v
		return f
	}
	tests := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"app ..", with("app", ".."), "app"},
		{"app with slash", with("app", "api/../../etc"), "app"},
		{"absolute app", with("app", "/etc/passwd"), "app"},
		{"non-DNS app", with("app", "My_App"), "app"},
		{"namespace escape", with("namespace", "../kube-system"), "namespace"},
		{"bad port", with("ports", []any{map[string]any{"container_port": 0}}), "ports[0].container_port"},
		{"bad quantity", with("resources", map[string]any{"requests": map[string]any{"cpu": "a lot"}}), "resources.requests.cpu"},
		{"bad cron", with("schedule", "every day"), "schedule"},
		{"unknown field", with("replica", 3), "replica"},
		{"wrong type", with("replicas", "three"), "replicas"},
		{"unknown template", with("template", "helm-chart"), "template"},
		{"wrong method", map[string]any{"method": "ftp"}, "method"},
		{"latest", with("tag", "latest"), "tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/environments/production/deployments", "/environments/production/deployments/preview"} {
				status, body := b.call(t, http.MethodPost, path, tt.body)
				require.Equal(t, http.StatusBadRequest, status, "%s: %v", path, body)
				require.Equal(t, tt.field, body["field"], "%v", body)
			}
		})
	}
	require.Zero(t, b.count(t, "SELECT count(*) FROM deployments"))
	require.Zero(t, b.count(t, "SELECT count(*) FROM river_job"))

	// Repository settings: path attacks and bad branches name the field.
	for field, gitops := range map[string]map[string]any{
		"gitops.path":   {"enabled": true, "path": "../outside"},
		"gitops.branch": {"enabled": true, "branch": "main..evil"},
		"gitops.layout": {"enabled": true, "layout": "flat"},
	} {
		status, body := b.call(t, http.MethodPost, "/repositories", map[string]any{"name": "other", "url": "https://git.example.com/x.git", "gitops": gitops})
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, field, body["field"], "%v", body)
	}
	for field, body := range map[string]map[string]any{
		"url":              {"name": "x", "url": "https://user:pw@git.example.com/x.git"},
		"auth.type":        {"name": "x", "url": "http://git.example.com/x.git", "auth": map[string]any{"type": "https", "username": "u", "password": "p"}},
		"auth.known_hosts": {"name": "x", "url": "ssh://git@git.example.com/x.git", "auth": map[string]any{"type": "ssh", "private_key": testKey(t)}},
		"name":             {"name": "../x", "url": "https://git.example.com/x.git"},
	} {
		status, got := b.call(t, http.MethodPost, "/repositories", body)
		require.Equal(t, http.StatusBadRequest, status, "%v", got)
		require.Equal(t, field, got["field"], "%v", got)
	}
}

func TestDeployFromSavedTemplate(t *testing.T) {
	b := setupGitops(t, true)
	b.connect(t, gitPass)
	status, body := b.call(t, http.MethodPost, "/templates", map[string]any{
		"name": "standard-web", "kind": "web-app", "description": "our web apps",
		"form": map[string]any{"replicas": 3, "resources": map[string]any{"requests": map[string]any{"cpu": "250m"}},
			"ingress": map[string]any{"class_name": "nginx"}, "ports": []any{map[string]any{"container_port": 8080}}},
	})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	for _, bad := range []map[string]any{
		{"name": "web-app", "kind": "web-app"},
		{"name": "x", "kind": "web-app", "form": map[string]any{"replicas": -1}},
		{"name": "standard-web", "kind": "web-app"},
	} {
		status, body := b.call(t, http.MethodPost, "/templates", bad)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusConflict}, status, "%v", body)
		require.NotEmpty(t, body["field"])
	}
	_, list := b.call(t, http.MethodGet, "/templates", nil)
	require.Len(t, list["items"], 5, "four built-in templates and the saved one")

	status, created := b.call(t, http.MethodPost, "/environments/production/deployments", map[string]any{
		"method": "gitops-ui", "template": "standard-web", "app": "shop", "image": "ghcr.io/acme/shop", "tag": "2.0.0",
		"ingress": map[string]any{"host": "shop.example.com"},
	})
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Equal(t, "standard-web", created["target"].(map[string]any)["template"])
	d := b.waitStatus(t, int64(created["deployment"].(map[string]any)["id"].(float64)))
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	ing := b.git(t, "show", "main:clusters/production/shop/ingress.yaml")
	require.Contains(t, ing, "ingressClassName: nginx", "from the template")
	require.Contains(t, ing, "host: shop.example.com", "from the request")
	require.Contains(t, b.git(t, "show", "main:clusters/production/shop/hpa.yaml"), "minReplicas: 3")
	require.Contains(t, b.git(t, "log", "-1", "--format=%b"), "Template:  web-app (saved template standard-web)")

	status, _ = b.call(t, http.MethodDelete, "/templates/standard-web", nil)
	require.Equal(t, http.StatusNoContent, status)
	var spec json.RawMessage
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT form FROM deployment_specs`).Scan(&spec))
	require.Contains(t, string(spec), `"class_name": "nginx"`, "deployments keep their forms")
}

// TestProdDeployWaitsForApprovals: a gitops-ui deploy to production (two approvals by default)
// is held; the last approval releases its commit_push job, and the commit names the approvers.
func TestProdDeployWaitsForApprovals(t *testing.T) {
	b := setupGitops(t, true)
	_, err := b.pool.Exec(context.Background(), `UPDATE environments SET gitops_config = '{}' WHERE id = $1`, b.seed.Env.ID)
	require.NoError(t, err)
	b.connect(t, gitPass)
	head := b.git(t, "rev-parse", "main")

	status, created := b.call(t, http.MethodPost, "/environments/production/deployments", apiForm("2.0.0", 2))
	require.Equal(t, http.StatusAccepted, status, "%v", created)
	id := int64(created["deployment"].(map[string]any)["id"].(float64))
	require.Equal(t, store.DeployAwaitingApproval, created["deployment"].(map[string]any)["status"])
	approvalID := int64(created["approval"].(map[string]any)["id"].(float64))
	require.Zero(t, b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'commit_push'"), "the job is held")

	for _, name := range []string{"bob", "carol"} {
		u, err := b.st.CreateUser(context.Background(), b.pool, store.User{Username: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], Email: name + "@example.com"})
		require.NoError(t, err)
		require.NoError(t, b.st.AddMember(context.Background(), b.pool, b.seed.Project.ID, u.ID, "maintainer"))
		resp, got := b.do(t, b.token(t, u.ID, nil), http.MethodPost, fmt.Sprintf("/api/v1/projects/webapp/approvals/%d/approve", approvalID),
			map[string]any{"reason": "looks good"})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
	}
	d := b.waitStatus(t, id)
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	require.Equal(t, head, b.git(t, "rev-parse", "main~1"), "one commit")
	require.Equal(t, fmt.Sprintf("Deployment-Id: %d\nRequested-By: Alice Example <alice@example.com>\nEnvironment: production\nApproved-By: Bob <bob@example.com>\nApproved-By: Carol <carol@example.com>", id),
		b.git(t, "log", "-1", "--format=%(trailers:only,unfold)"))
}
