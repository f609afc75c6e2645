package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// withClusters is b served by a receiver that manages the seeded clusters, as cmd/receiver
// does with kubeconfigs (unreachableClusters: nothing calls them before a job runs).
func withClusters(t *testing.T, b *gitopsBundle) *gitopsBundle {
	t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	h := handlers.New(handlers.Deps{Store: b.st, River: rc, Logger: zerolog.Nop(), Git: gitops.NewWriter(t.TempDir()), Secrets: b.secrets,
		WebhookTokens: map[string][]byte{storetest.Cluster: prodKey}, Clusters: unreachableClusters(t)})
	srv := httptest.NewServer(h.Routes())
	t.Cleanup(srv.Close)
	nb := *b
	nb.h, nb.srv = h, srv
	return &nb
}

// createEnv adds an environment of kind to the seeded project, in the seeded cluster.
func (b *gitopsBundle) createEnv(t *testing.T, name, kind string) {
	t.Helper()
	status, body := b.call(t, http.MethodPost, "/environments", map[string]any{"name": name, "kind": kind, "cluster": storetest.Cluster})
	require.Equal(t, http.StatusCreated, status, "%v", body)
}

// carried returns the applies a commit_push job (or the approval request holding it) carries.
func (b *gitopsBundle) carried(t *testing.T, query string, id int64) []jobs.ResourceVersion {
	t.Helper()
	var raw []byte
	require.NoError(t, b.pool.QueryRow(context.Background(), query, id).Scan(&raw))
	var args jobs.CommitPushArgs
	require.NoError(t, json.Unmarshal(raw, &args))
	return args.Apply
}

// TestFirstDeployBootstrapsEnvironment: a deploy to an environment without a Kustomization
// creates the GitRepository of its branch and the Kustomization of its directory, both with
// configs the resources API accepts; their applies ride on the commit_push job and are
// enqueued when the push is recorded; the preview shows them; a second environment on the
// same branch shares the GitRepository; the Namespace file is written once.
func TestFirstDeployBootstrapsEnvironment(t *testing.T) {
	b := withClusters(t, setupGitops(t, true))
	b.connect(t, gitPass)
	b.createEnv(t, "dev", "dev")

	status, p := b.call(t, http.MethodPost, "/environments/dev/deployments/preview", apiForm("1.0.0", 1))
	require.Equal(t, http.StatusOK, status, "%v", p)
	k, src := p["kustomization"].(map[string]any), p["source"].(map[string]any)
	require.Equal(t, true, k["created"])
	require.Contains(t, k["yaml"], "path: ./clusters/dev")
	require.Contains(t, k["yaml"], "name: webapp-fleet-main")
	require.Contains(t, src["yaml"], "branch: main")
	require.Contains(t, src["yaml"], "name: webapp-fleet-main-auth", "the repository has credentials")
	require.Contains(t, p["changed"], "clusters/dev/namespaces/webapp-dev.yaml")
	require.Zero(t, b.count(t, "SELECT count(*) FROM gitops_resources WHERE name IN ('webapp-dev', 'webapp-fleet-main')"), "a preview writes nothing")

	status, created := b.call(t, http.MethodPost, "/environments/dev/deployments", apiForm("1.0.0", 1))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	k, src = created["kustomization"].(map[string]any), created["source"].(map[string]any)
	require.Equal(t, true, k["created"])
	require.Equal(t, "webapp-dev", k["name"])
	require.Equal(t, "webapp-fleet-main", src["name"])
	kID, srcID := int64(k["id"].(float64)), int64(src["id"].(float64))
	dep := created["deployment"].(map[string]any)
	require.Equal(t, float64(kID), dep["gitops_resource_id"])

	// Configs in Flux's spelling that decode as the resources API decodes them.
	ks, err := b.st.ResourceByID(context.Background(), b.pool, kID)
	require.NoError(t, err)
	spec, err := fluxspec.Decode(ks.Kind, ks.Config)
	require.NoError(t, err)
	kc := spec.(*fluxspec.KustomizationConfig)
	require.Equal(t, "./clusters/dev", kc.Path)
	require.Equal(t, fluxspec.SourceRef{Kind: "GitRepository", Name: "webapp-fleet-main"}, kc.SourceRef)
	require.True(t, *kc.Prune)
	require.True(t, kc.Wait)
	require.Equal(t, []string{"10m", "1m", "5m"}, []string{kc.Interval, kc.RetryInterval, kc.Timeout})
	gr, err := b.st.ResourceByID(context.Background(), b.pool, srcID)
	require.NoError(t, err)
	require.Nil(t, gr.EnvironmentID, "project-wide: the environments on the branch share it")
	spec, err = fluxspec.Decode(gr.Kind, gr.Config)
	require.NoError(t, err)
	gc := spec.(*fluxspec.GitRepositoryConfig)
	require.Equal(t, b.gitURL, gc.URL)
	require.Equal(t, "main", gc.Ref.Branch)
	require.Equal(t, "1m", gc.Interval)
	require.Equal(t, "webapp-fleet-main-auth", gc.SecretRef)

	// The commit_push job carries their first applies; the push enqueues them.
	id := int64(dep["id"].(float64))
	require.ElementsMatch(t, []jobs.ResourceVersion{{ResourceID: srcID, SpecVersion: 1}, {ResourceID: kID, SpecVersion: 1}},
		b.carried(t, `SELECT args FROM river_job WHERE kind = 'commit_push' AND (args->>'deployment_id')::bigint = $1`, id))
	d := b.waitStatus(t, id)
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	for _, rid := range []int64{srcID, kID} {
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_resource' AND (args->>'resource_id')::bigint = $1`, rid))
	}
	require.Contains(t, b.git(t, "show", "main:clusters/dev/namespaces/webapp-dev.yaml"), "kind: Namespace")
	audit := b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'deployment.create' AND message LIKE '%applies GitRepository flux-system/webapp-fleet-main, Kustomization flux-system/webapp-dev%'`)
	require.Equal(t, 1, audit, "the audit row names what the deploy creates")

	// Another app of the environment: the Kustomization exists (this worker cannot reach the
	// cluster, so the deploy carries its first apply again); the shared Namespace file stays
	// as it is.
	status, created = b.call(t, http.MethodPost, "/environments/dev/deployments", map[string]any{"method": "gitops-ui", "app": "web",
		"image": "ghcr.io/acme/web", "tag": "1.0.0", "ports": []any{map[string]any{"container_port": 8080}}})
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Equal(t, false, created["kustomization"].(map[string]any)["created"])
	d = b.waitStatus(t, int64(created["deployment"].(map[string]any)["id"].(float64)))
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	require.NotContains(t, b.git(t, "diff", "--name-only", "main~1", "main"), "namespaces/")

	// A second environment on the branch gets a Kustomization of its own, reading the same
	// GitRepository.
	b.createEnv(t, "qa", "staging")
	status, created = b.call(t, http.MethodPost, "/environments/qa/deployments", apiForm("1.0.0", 1))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Equal(t, "webapp-qa", created["kustomization"].(map[string]any)["name"])
	require.Equal(t, false, created["source"].(map[string]any)["created"])
	require.Equal(t, float64(srcID), created["source"].(map[string]any)["id"])
}

// TestBootstrapWaitsForApprovals: in an environment that requires approvals, a first deploy
// records the environment's GitRepository and Kustomization as proposals: rows that reserve
// the names, unapproved, their settings pending, and nothing that applies them. A reject
// discards them (the rows go); the next deploy proposes them again, and its approvals make
// them live, their applies carried by the push.
func TestBootstrapWaitsForApprovals(t *testing.T) {
	b := withClusters(t, setupGitops(t, true))
	b.connect(t, gitPass)
	b.createEnv(t, "live", "prod")

	status, created := b.call(t, http.MethodPost, "/environments/live/deployments", apiForm("1.0.0", 1))
	require.Equal(t, http.StatusAccepted, status, "%v", created)
	approval := created["approval"].(map[string]any)
	require.Contains(t, approval["summary"], "applies GitRepository flux-system/webapp-fleet-main, Kustomization flux-system/webapp-live in cluster "+storetest.Cluster)
	kID := int64(created["kustomization"].(map[string]any)["id"].(float64))
	srcID := int64(created["source"].(map[string]any)["id"].(float64))
	require.Zero(t, b.count(t, "SELECT count(*) FROM river_job WHERE kind IN ('apply_resource', 'commit_push')"), "nothing runs before the approvals")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM gitops_resources WHERE id IN ($1, $2) AND NOT approved AND config = '{}'
		AND pending ? 'config' AND pending_request_id = $3`, srcID, kID, int64(approval["id"].(float64))), "proposals, not live rows")
	want := []jobs.ResourceVersion{{ResourceID: srcID, SpecVersion: 1}, {ResourceID: kID, SpecVersion: 1}}
	require.ElementsMatch(t, want, b.carried(t, `SELECT job_args FROM approval_requests WHERE id = $1`, int64(approval["id"].(float64))))

	// A second deploy meanwhile waits for the bootstrap to be decided.
	status, body := b.call(t, http.MethodPost, "/environments/live/deployments", apiForm("1.0.1", 1))
	require.Equal(t, http.StatusConflict, status, "%v", body)
	require.Contains(t, body["error"], "awaiting approval")

	// Bob rejects it: the proposed rows go, and the next deploy proposes them again.
	bob := b.maintainer(t, "bob")
	resp, got := b.do(t, bob, http.MethodPost, fmt.Sprintf("/api/v1/projects/webapp/approvals/%d/reject", int64(approval["id"].(float64))), map[string]any{"reason": "not today"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
	require.Zero(t, b.count(t, `SELECT count(*) FROM gitops_resources WHERE id IN ($1, $2)`, srcID, kID))
	status, created = b.call(t, http.MethodPost, "/environments/live/deployments", apiForm("1.0.1", 1))
	require.Equal(t, http.StatusAccepted, status, "%v", created)
	require.Equal(t, true, created["kustomization"].(map[string]any)["created"])
	approval = created["approval"].(map[string]any)
	kID = int64(created["kustomization"].(map[string]any)["id"].(float64))
	srcID = int64(created["source"].(map[string]any)["id"].(float64))

	// Two approvals make them live in the approving transaction; the push enqueues the applies.
	for _, name := range []string{"carol", "dave"} {
		resp, got := b.do(t, b.maintainer(t, name), http.MethodPost, fmt.Sprintf("/api/v1/projects/webapp/approvals/%d/approve", int64(approval["id"].(float64))), map[string]any{})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
	}
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM gitops_resources WHERE id IN ($1, $2) AND approved AND pending IS NULL AND config ? 'sourceRef' = (kind = 'Kustomization')`, srcID, kID))
	d := b.waitStatus(t, int64(created["deployment"].(map[string]any)["id"].(float64)))
	require.Equal(t, store.DeployPushed, d["status"], "%v", d)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_resource' AND (args->>'resource_id')::bigint IN ($1, $2)`, srcID, kID))
}

// TestBootstrapInWebhookOnlyCluster: a cluster fluxbridge has no kubeconfig for gets the rows
// (their events settle deployments) and a note that people must create the objects; no job
// applies them.
func TestBootstrapInWebhookOnlyCluster(t *testing.T) {
	b := setupGitops(t, true) // its receiver manages no cluster
	b.connect(t, gitPass)
	b.createEnv(t, "dev", "dev")
	status, created := b.call(t, http.MethodPost, "/environments/dev/deployments", apiForm("1.0.0", 1))
	require.Equal(t, http.StatusCreated, status, "%v", created)
	require.Equal(t, true, created["kustomization"].(map[string]any)["created"])
	require.True(t, strings.Contains(created["note"].(string), "webhook only"), "%v", created)
	id := int64(created["deployment"].(map[string]any)["id"].(float64))
	require.Empty(t, b.carried(t, `SELECT args FROM river_job WHERE kind = 'commit_push' AND (args->>'deployment_id')::bigint = $1`, id))
	b.waitStatus(t, id)
	require.Zero(t, b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'apply_resource'"))
}

// maintainer creates a maintainer of the seeded project and returns their API token.
func (b *gitopsBundle) maintainer(t *testing.T, name string) string {
	t.Helper()
	u, err := b.st.CreateUser(context.Background(), b.pool, store.User{Username: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], Email: name + "@example.com"})
	require.NoError(t, err)
	require.NoError(t, b.st.AddMember(context.Background(), b.pool, b.seed.Project.ID, u.ID, "maintainer"))
	return b.token(t, u.ID, nil)
}
