package handlers_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Secret values the audit cases send; none may appear in an audit row.
const (
	webhookSecret = "s3cr3t-webhook-value"
	gitPassword   = "hunter2-password"
	cfgToken      = "tok-secret-value"
)

var tokenShape = regexp.MustCompile(`fxb_[A-Za-z0-9_-]{43}`)

// auditCase is one successful call of a mutating route.
type auditCase struct {
	name   string
	role   string // the caller
	method string
	path   string
	body   any
	status int
}

// auditCases returns, for each mutating action, calls that succeed, in an order where each
// finds what it needs.
func auditCases(t *testing.T, f *fixture) map[string][]auditCase {
	b := f.b
	tokenOf := func(username string) int {
		return b.count(t, `SELECT max(t.id) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.username = $1`, username)
	}
	viewerTokenID, samTokenID := tokenOf("vera"), tokenOf("sam")
	env := "/api/v1/projects/webapp/environments"
	restorable := f.appliedDeploy(t, "web2")
	f.lockedApp(t, "web3")
	require.NoError(t, b.st.UpsertDiscovered(context.Background(), b.pool, store.Discovered{Cluster: "staging", Kind: "Kustomization",
		Namespace: "flux-system", Name: "flux-system", Owner: "field manager kustomize-controller",
		Spec:       []byte(`{"interval":"10m0s","path":"./clusters/staging","prune":true,"sourceRef":{"kind":"GitRepository","name":"flux-system"}}`),
		ObservedAt: time.Now()}))
	return map[string][]auditCase{
		"user.create": {{"create a user", "admin", http.MethodPost, "/api/v1/users",
			map[string]any{"username": "newbie", "email": "newbie@example.com"}, 201}},
		"user.update":        {{"rename a user", "admin", http.MethodPatch, "/api/v1/users/sam", map[string]any{"display_name": "Sam S"}, 200}},
		"user.password_link": {{"issue sam a password link", "admin", http.MethodPost, "/api/v1/users/sam/password-link", nil, 201}},
		"user.token_create": {{"issue a token for sam", "admin", http.MethodPost, "/api/v1/users/sam/tokens",
			map[string]any{"name": "sam ci", "expires_in": "720h"}, 201}},
		"user.token_revoke": {{"revoke sam's token", "admin", http.MethodDelete, fmt.Sprintf("/api/v1/users/sam/tokens/%d", samTokenID), nil, 200}},
		"token.create":      {{"issue my own token", "viewer", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "laptop"}, 201}},
		"token.revoke":      {{"revoke my own token", "viewer", http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%d", viewerTokenID), nil, 200}},
		"project.create": {{"create a project", "admin", http.MethodPost, "/api/v1/projects",
			map[string]any{"slug": "shop", "name": "Shop", "owner": "olga"}, 201}},
		"project.update": {{"describe the project", "owner", http.MethodPatch, "/api/v1/projects/webapp", map[string]any{"description": "the web app"}, 200}},
		"member.set":     {{"add a member", "owner", http.MethodPut, "/api/v1/projects/webapp/members/nora", map[string]any{"role": "viewer"}, 201}},
		"member.remove":  {{"remove a member", "owner", http.MethodDelete, "/api/v1/projects/webapp/members/sam", nil, 204}},
		"environment.create": {{"create an environment with secrets in its config", "maintainer", http.MethodPost, env,
			map[string]any{"name": "qa", "kind": "test", "cluster": "staging", "gitops_config": map[string]any{
				"branch": "qa", "webhookSecret": webhookSecret, "auth": map[string]any{"username": "git", "password": gitPassword}}}, 201}},
		"environment.update": {
			{"change staging at once", "maintainer", http.MethodPatch, env + "/staging", map[string]any{"gitops_config": map[string]any{"path": "./staging", "token": cfgToken}}, 200},
			{"hold a change to production", "maintainer", http.MethodPatch, env + "/production", map[string]any{"gitops_config": map[string]any{"path": "./prod"}}, 202},
		},
		"environment.bootstrap": {{"bootstrap an environment", "maintainer", http.MethodPost, env + "/qa/bootstrap", nil, 201}},
		"resource.import": {{"import flux bootstrap's Kustomization", "admin", http.MethodPost, "/api/v1/projects/webapp/resources/import",
			map[string]any{"cluster": "staging", "kind": "Kustomization", "namespace": "flux-system", "name": "flux-system", "environment": "staging"}, 201}},
		"deployment.create": {
			{"deploy to staging at once", "developer", http.MethodPost, env + "/staging/deployments", map[string]any{"method": "manual", "app": "web", "revision": "v2"}, 201},
			{"hold a deploy to production", "owner", http.MethodPost, env + "/production/deployments", map[string]any{"method": "manual", "app": "web", "revision": "v3"}, 202},
			{"deploy a form to staging", "developer", http.MethodPost, env + "/staging/deployments", map[string]any{"method": "gitops-ui",
				"app": "web", "image": "ghcr.io/acme/web", "tag": "1.0.0", "ports": []any{map[string]any{"container_port": 8080}}}, 201},
		},
		"deployment.rollback": {{"roll an app in staging back", "developer", http.MethodPost, env + "/staging/apps/web2/rollback",
			map[string]any{"deployment_id": restorable}, 201}},
		"deployment.unlock": {{"unlock an app a rollback holds", "developer", http.MethodPost, env + "/staging/apps/web3/unlock", nil, 200}},
		"repository.create": {{"connect a repository with a password", "maintainer", http.MethodPost, "/api/v1/projects/webapp/repositories",
			map[string]any{"name": "fleet", "url": "https://git.example.com/acme/fleet.git",
				"auth": map[string]any{"type": "https", "username": "bot", "password": gitPassword}}, 201}},
		"repository.update": {{"enable GitOps", "maintainer", http.MethodPut, fmt.Sprintf("/api/v1/projects/webapp/repositories/%d/gitops", b.seed.Repo.ID),
			map[string]any{"enabled": true, "branch": "main", "path": "clusters"}, 200}},
		"repository.rotate_credentials": {{"rotate credentials", "maintainer", http.MethodPut, fmt.Sprintf("/api/v1/projects/webapp/repositories/%d/credentials", b.seed.Repo.ID),
			map[string]any{"auth": map[string]any{"type": "https", "username": "bot", "password": gitPassword}}, 200}},
		"template.create": {{"save a template", "maintainer", http.MethodPost, "/api/v1/projects/webapp/templates",
			map[string]any{"name": "standard", "kind": "microservice", "form": map[string]any{"replicas": 3}}, 201}},
		"template.delete": {{"delete a template", "maintainer", http.MethodDelete, "/api/v1/projects/webapp/templates/standard", nil, 204}},
		"resource.create": {
			{"create a HelmRepository in two clusters", "maintainer", http.MethodPost, "/api/v1/projects/webapp/resources",
				map[string]any{"kind": "HelmRepository", "namespace": "flux-system", "name": "charts", "clusters": []string{"prod-eu", "staging"},
					"config": map[string]any{"url": "https://charts.example.com"}}, 201},
			{"create a Kustomization in staging", "maintainer", http.MethodPost, env + "/staging/resources",
				map[string]any{"kind": "Kustomization", "namespace": "flux-system", "name": "api-staging",
					"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "webapp"}}}, 201},
			{"hold a Kustomization in production", "maintainer", http.MethodPost, env + "/production/resources",
				map[string]any{"kind": "Kustomization", "namespace": "flux-system", "name": "api-canary",
					"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "webapp"}}}, 202},
		},
		"resource.update": {{"propose a change of a GitRepository a production Kustomization reads", "maintainer", http.MethodPut, resourcePath(b.seed.GitRepository.ID, ""),
			map[string]any{"config": map[string]any{"ref": map[string]any{"branch": "release"}}}, 202}},
		"resource.reconcile": {{"reconcile a GitRepository", "developer", http.MethodPost, resourcePath(b.seed.GitRepository.ID, "/reconcile"),
			map[string]any{"with_source": false}, 202}},
		"resource.suspend": {{"suspend a HelmRelease", "maintainer", http.MethodPost, resourcePath(b.seed.HelmRelease.ID, "/suspend"), nil, 202}},
		"resource.resume":  {{"resume a HelmRelease", "maintainer", http.MethodPost, resourcePath(b.seed.HelmRelease.ID, "/resume"), nil, 202}},
		"resource.delete":  {{"propose deleting a HelmRelease of production", "maintainer", http.MethodDelete, resourcePath(b.seed.HelmRelease.ID, ""), nil, 202}},
		"approval.approve": {{"approve", "maintainer", http.MethodPost, approvePath(f.approval), map[string]any{"reason": "tested on staging"}, 200}},
		"approval.reject":  {{"reject", "owner", http.MethodPost, rejectPath(f.approval), map[string]any{"reason": "wrong revision"}, 200}},
	}
}

func resourcePath(id int64, suffix string) string {
	return fmt.Sprintf("/api/v1/projects/webapp/resources/%d%s", id, suffix)
}

// appliedDeploy records a gitops-ui deployment of app to staging that Flux applied, as the
// commit_push job and the event worker leave it, and returns its ID.
func (f *fixture) appliedDeploy(t *testing.T, app string) int64 {
	t.Helper()
	ctx, b := context.Background(), f.b
	d, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: f.staging.ID, Method: store.MethodGitopsUI, Status: store.DeploySucceeded,
		App: app, CommitSHA: strings.Repeat("ab", 20),
	})
	require.NoError(t, err)
	_, err = b.st.CreateDeploymentSpec(ctx, b.pool, store.DeploymentSpec{
		DeploymentID: d.ID, RepositoryID: b.seed.Repo.ID, Branch: "main", Path: "clusters/staging/" + app,
		Namespace: "webapp-staging", Kind: "microservice", Form: []byte(`{}`),
	})
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE deployment_specs SET pushed_at = now() WHERE deployment_id = $1`, d.ID)
	require.NoError(t, err)
	return d.ID
}

// lockedApp records a finished rollback of app in staging that still holds the app locked.
func (f *fixture) lockedApp(t *testing.T, app string) {
	t.Helper()
	ctx, b := context.Background(), f.b
	target := f.appliedDeploy(t, app)
	d, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: f.staging.ID, Method: store.MethodGitopsUI, Status: store.DeploySucceeded, App: app,
	})
	require.NoError(t, err)
	rb, err := b.st.CreateRollback(ctx, b.pool, store.NewRollback{
		DeploymentID: d.ID, ProjectID: b.seed.Project.ID, EnvironmentID: f.staging.ID, App: app, TargetDeploymentID: &target,
		TargetCommit: strings.Repeat("ab", 20), Strategy: store.RollbackRevert, RepositoryID: b.seed.Repo.ID, Branch: "main",
		Path: "clusters/staging/" + app,
	})
	require.NoError(t, err)
	rb.Phase, rb.Locked = store.RollbackSucceeded, true
	require.NoError(t, b.st.SaveRollback(ctx, b.pool, rb))
}

// readOnly are the POST routes that change nothing shared (a preview, a validation, the
// caller's own read marks): they write no audit row (TestNotificationReadState checks the last).
var readOnly = map[string]bool{"deployment.preview": true, "repository.validate": true, "notification.read": true}

// TestEveryMutatingCallWritesOneRedactedAuditRow calls every mutating route and checks that it
// left exactly one audit row, in its own name, with the request ID, the source IP, a diff, and
// no secret value: no token, no token hash, nothing from under a secret key. A mutating route
// without a case here fails the test.
func TestEveryMutatingCallWritesOneRedactedAuditRow(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	cases := auditCases(t, f)

	secrets := []string{webhookSecret, gitPassword, cfgToken}
	var tokens []string
	for _, tok := range f.tokens {
		tokens = append(tokens, tok)
	}
	noSecrets := func(t *testing.T, raw string) {
		t.Helper()
		for _, s := range append(secrets, tokens...) {
			if s != "" {
				require.NotContains(t, raw, s)
				require.NotContains(t, raw, hex.EncodeToString(auth.HashToken(s)))
			}
		}
		require.NotRegexp(t, tokenShape, raw)
	}

	order := []string{"user.create", "user.update", "user.password_link", "user.token_create", "user.token_revoke", "token.create",
		"token.revoke", "project.create", "project.update", "member.set", "member.remove", "environment.create",
		"environment.update", "repository.create", "repository.update", "repository.rotate_credentials", "environment.bootstrap", "resource.import",
		"deployment.create", "deployment.rollback", "deployment.unlock", "template.create", "template.delete", "resource.create", "resource.update",
		"resource.reconcile", "resource.suspend", "resource.resume", "resource.delete", "approval.approve", "approval.reject"}
	for _, rt := range handlers.APIRoutes(b.h) {
		if rt.Method != http.MethodGet && !readOnly[rt.Action] {
			require.NotEmpty(t, cases[rt.Action], "mutating route %s %s (%s) has no audit case: add one", rt.Method, rt.Pattern, rt.Action)
		}
	}
	require.Len(t, order, len(cases))

	for _, action := range order {
		for _, c := range cases[action] {
			t.Run(action+": "+c.name, func(t *testing.T) {
				before := b.count(t, `SELECT count(*) FROM audit_logs`)
				resp, got := b.do(t, f.tokens[c.role], c.method, c.path, c.body)
				require.Equal(t, c.status, resp.StatusCode, got)
				if tok, ok := got["token"].(string); ok {
					tokens = append(tokens, tok) // a created token: must not reach the log either
				}
				require.Equal(t, before+1, b.count(t, `SELECT count(*) FROM audit_logs`), "exactly one audit row")

				rows, err := b.st.ListAudit(context.Background(), b.pool, store.AuditFilter{Limit: 1})
				require.NoError(t, err)
				e := rows[0]
				require.Equal(t, action, e.Action)
				require.Equal(t, store.ActorToken, e.ActorType)
				caller := map[string]string{"admin": "root", "viewer": "vera", "developer": "dev", "maintainer": "max", "owner": "olga"}[c.role]
				require.Equal(t, caller, e.ActorName)
				require.NotNil(t, e.ActorID)
				require.NotEmpty(t, e.TargetType)
				require.NotEmpty(t, e.TargetID)
				require.Equal(t, resp.Header.Get("Request-Id"), e.RequestID)
				require.NotEmpty(t, e.RequestID)
				require.Equal(t, "127.0.0.1", e.SourceIP)
				raw := string(e.Details)
				require.Contains(t, raw, `"token_id"`, "which credential was used")
				noSecrets(t, raw)
				if action == "environment.create" || c.name == "change staging at once" {
					require.Contains(t, raw, `"[redacted]"`)
				}
				if strings.HasPrefix(c.path, "/api/v1/projects/webapp") && action != "project.create" {
					require.NotNil(t, e.ProjectID)
					require.Equal(t, b.seed.Project.ID, *e.ProjectID)
				}
				if strings.Contains(c.path, "/approvals/") {
					require.Equal(t, *e.EnvironmentID, b.seed.Env.ID)
					require.Equal(t, "prod-eu", e.Cluster)
				}
				if strings.Contains(c.path, "/environments/") {
					require.NotNil(t, e.EnvironmentID)
					require.NotEmpty(t, e.Cluster)
				}
			})
		}
	}
}

// TestRefusedCallsWriteNoAuditRow: a call that changes nothing (invalid, denied or refused)
// leaves no row.
func TestRefusedCallsWriteNoAuditRow(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	before := b.count(t, `SELECT count(*) FROM audit_logs`)
	for _, c := range []auditCase{
		{"invalid body", "admin", http.MethodPost, "/api/v1/users", map[string]any{"username": "Bad Name"}, 400},
		{"unknown field", "admin", http.MethodPost, "/api/v1/users", map[string]any{"username": "ok", "admin": true}, 400},
		{"denied", "developer", http.MethodPost, "/api/v1/projects/webapp/environments", map[string]any{"name": "x", "kind": "dev", "cluster": "staging"}, 403},
		{"self-approval", "requester", http.MethodPost, approvePath(f.approval), nil, 403},
		{"duplicate", "admin", http.MethodPost, "/api/v1/projects", map[string]any{"slug": "webapp", "name": "again"}, 409},
		{"anonymous", "anonymous", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x"}, 401},
		{"a path attack in a deploy form", "maintainer", http.MethodPost, "/api/v1/projects/webapp/environments/staging/deployments",
			map[string]any{"method": "gitops-ui", "app": "../../etc", "image": "nginx", "tag": "1"}, 400},
		{"a preview", "maintainer", http.MethodPost, "/api/v1/projects/webapp/environments/staging/deployments/preview",
			map[string]any{"app": "web", "image": "nginx", "tag": "1"}, 400},
		{"a developer's pin (R13.1)", "developer", http.MethodPost, "/api/v1/projects/webapp/environments/staging/apps/web4/rollback",
			map[string]any{"deployment_id": f.appliedDeploy(t, "web4"), "strategy": "pin"}, 403},
		{"a validation", "maintainer", http.MethodPost, fmt.Sprintf("/api/v1/projects/webapp/repositories/%d/validate", b.seed.Repo.ID), nil, 200},
	} {
		resp, got := b.do(t, f.tokens[c.role], c.method, c.path, c.body)
		require.Equal(t, c.status, resp.StatusCode, "%s: %v", c.name, got)
	}
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM audit_logs`))
}
