package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// roles are the callers the RBAC tests try every route as: no token, a member of each role,
// a user who is not a member, and a platform admin.
var roles = []string{"anonymous", "nonmember", "viewer", "developer", "maintainer", "owner", "admin"}

// fixture is the seeded platform with a caller of every role, a second environment (staging),
// a user to act on ({user}) and a prod deployment held for approval, requested by someone who
// is none of the callers.
type fixture struct {
	b        *testBundle
	tokens   map[string]string // by role, and "requester" (rita, a maintainer); "" for anonymous
	users    map[string]*store.User
	subject  *store.User // the {user} of user and member routes; a developer
	staging  *store.Environment
	approval int64 // a pending approval request of a prod deployment
	deploy   int64 // that deployment
}

func newFixture(t *testing.T, b *testBundle) *fixture {
	t.Helper()
	f := &fixture{b: b, tokens: map[string]string{"anonymous": "", "admin": b.admin}, users: map[string]*store.User{}}
	for _, role := range roles[1:6] {
		name := map[string]string{"nonmember": "nora", "viewer": "vera", "developer": "dev", "maintainer": "max", "owner": "olga"}[role]
		member := role
		if role == "nonmember" {
			member = ""
		}
		f.users[role], f.tokens[role] = b.user(t, name, member)
	}
	f.subject, _ = b.user(t, "sam", "developer")
	var err error
	f.staging, err = b.st.CreateEnvironment(context.Background(), b.pool, store.Environment{
		ProjectID: b.seed.Project.ID, Name: "staging", Kind: "staging", Cluster: "staging",
	})
	require.NoError(t, err)
	f.users["requester"], f.tokens["requester"] = b.user(t, "rita", "maintainer")
	f.approval, f.deploy = f.holdDeploy(t, f.tokens["requester"])
	return f
}

// holdDeploy asks for a prod deployment as token's user and returns the approval request and
// deployment IDs; prod requires two approvals by default.
func (f *fixture) holdDeploy(t *testing.T, token string) (approvalID, deploymentID int64) {
	t.Helper()
	resp, got := f.b.do(t, token, http.MethodPost, "/api/v1/projects/webapp/environments/production/deployments",
		map[string]string{"method": "manual", "app": "web", "revision": "v1.0.0", "message": "release"})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, got)
	return int64(got["approval"].(map[string]any)["id"].(float64)), int64(got["deployment"].(map[string]any)["id"].(float64))
}

// path fills a route pattern's parameters; env names the environment for {env}.
func (f *fixture) path(pattern, env string) string {
	id := "999999" // tokens: one the caller does not own answers 404, which is not a denial
	switch {
	case strings.HasPrefix(pattern, "/projects/{project}/approvals/"):
		id = fmt.Sprint(f.approval)
	case strings.HasPrefix(pattern, "/projects/{project}/deployments/"):
		id = fmt.Sprint(f.deploy)
	case strings.HasPrefix(pattern, "/projects/{project}/repositories/"):
		id = fmt.Sprint(f.b.seed.Repo.ID)
	case strings.HasPrefix(pattern, "/projects/{project}/resources/"):
		id = fmt.Sprint(f.b.seed.HelmRelease.ID)
	}
	return "/api/v1" + strings.NewReplacer("{project}", "webapp", "{env}", env, "{user}", f.subject.Username, "{app}", "web", "{id}", id).Replace(pattern)
}
