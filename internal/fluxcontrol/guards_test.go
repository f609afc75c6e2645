package fluxcontrol_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// The tests of the guards of #10 (README "Permissions, approvals and audit"): one per class of
// hole, each on real apiservers with the worker and the watch running.

// held is a create's or change's answer when it waits for approvals.
type held struct {
	Items             []store.Resource `json:"items"`
	Held              map[string]int64 `json:"held"`
	ApprovalRequestID *int64           `json:"approval_request_id"`
	store.Resource
}

// prodEnv adds a prod environment with the default two-person rule in cluster west, owning the
// test's namespace.
func (b *bundle) prodEnv(t *testing.T, name string) *store.Environment {
	t.Helper()
	env, err := b.st.CreateEnvironment(context.Background(), b.pool, store.Environment{ProjectID: b.project.ID, Name: name, Kind: "prod", Cluster: "west",
		GitopsConfig: json.RawMessage(`{"path":"deploy/` + name + `","namespaces":["` + b.ns + `"]}`)})
	require.NoError(t, err)
	return env
}

// as runs fn with the bundle's calls made with token.
func (b *bundle) as(token string, fn func()) {
	saved := b.token
	b.token = token
	defer func() { b.token = saved }()
	fn()
}

// approve has two new maintainers approve request id, which releases it.
func (b *bundle) approve(t *testing.T, id int64) {
	t.Helper()
	for _, name := range []string{"ann", "bob"} {
		name = fmt.Sprintf("%s%d", name, id)
		b.as(b.member(t, name, "maintainer"), func() {
			var out map[string]any
			require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/approvals/%d/approve", id), map[string]any{}, &out), "%v", out)
		})
	}
}

// admin makes a platform admin and returns their token.
func (b *bundle) admin(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	u, err := b.st.CreateUser(ctx, b.pool, store.User{Username: "root", IsAdmin: true})
	require.NoError(t, err)
	token, hash, err := auth.NewToken()
	require.NoError(t, err)
	_, err = b.st.CreateToken(ctx, b.pool, store.NewAPIToken{UserID: u.ID, Name: "test", Hash: hash, Prefix: auth.DisplayPrefix(token)})
	require.NoError(t, err)
	return token
}

// insertJob enqueues a job as something other than the API would (a retry, a repair).
func (b *bundle) insertJob(t *testing.T, args river.JobArgs) {
	t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	_, err = rc.Insert(context.Background(), args, nil)
	require.NoError(t, err)
}

// waitJobsDone waits until no job of kind is left to run.
func (b *bundle) waitJobsDone(t *testing.T, kind string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = $1 AND state NOT IN ('completed', 'cancelled', 'discarded')`, kind) == 0
	}, waitFor, poll, "%s jobs never finished", kind)
}

func kustomizationBody(ns, name, source, timeout string) map[string]any {
	return map[string]any{"kind": "Kustomization", "namespace": ns, "name": name,
		"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": source}, "timeout": timeout}}
}

// TestHeldChangesNeverReachTheCluster (hole 1): a change that waits for approvals is a proposal
// beside the live row. Every path that applies the row — suspend and resume, an environment's
// settings (apply_environment), unlocking after a rollback, a repeated or repairing apply job —
// puts the approved settings into the cluster and never the proposal; a reject and an expiry
// discard it; only the last approval makes it live. A held create is not in the cluster at all
// until approved, whatever job runs for it.
func TestHeldChangesNeverReachTheCluster(t *testing.T) {
	b := setup(t)
	liveEnv := b.prodEnv(t, "live")
	ctx := context.Background()

	var out held
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/projects/shop/environments/live/resources", kustomizationBody(b.ns, "live-app", "app-src", "1m"), &out))
	res := out.Items[0]
	require.False(t, res.Approved)
	reqID := out.Held[fmt.Sprint(res.ID)]
	b.insertJob(t, jobs.ApplyResourceArgs{ResourceID: res.ID}) // a stray apply of the held create
	b.waitJobsDone(t, "apply_resource")
	_, err := flux.Get(ctx, west.Client, flux.Ref{Kind: "Kustomization", Namespace: b.ns, Name: "live-app"})
	require.True(t, apierrors.IsNotFound(err), "a held create is not in the cluster: %v", err)
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/suspend", res.ID), nil, nil), "nothing to suspend yet")
	b.approve(t, reqID)
	res = b.waitApplied(t, res.ID)
	require.Equal(t, "1m0s", specField(live(t, res), "timeout"))

	// A change is held: the live config stays, the proposal is shown beside it.
	propose := func(timeout string) int64 {
		t.Helper()
		var ch held
		require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", res.ID),
			map[string]any{"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}, "timeout": timeout}}, &ch))
		require.NotNil(t, ch.ApprovalRequestID)
		require.JSONEq(t, `{"sourceRef":{"kind":"GitRepository","name":"app-src"},"timeout":"1m"}`, string(ch.Config), "live config unchanged")
		require.Contains(t, string(ch.Pending), `"timeout":"`+timeout+`"`)
		return *ch.ApprovalRequestID
	}
	stillLive := func(what string) {
		t.Helper()
		r := b.waitApplied(t, res.ID)
		require.Equal(t, "1m0s", specField(live(t, r), "timeout"), "%s applied the approved config only", what)
	}
	first := propose("9m")
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", res.ID),
		map[string]any{"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}}}, nil), "one proposal at a time")

	for _, step := range []string{"suspend", "resume"} {
		require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/%s", res.ID, step), nil, nil))
		stillLive(step)
	}
	require.Equal(t, nil, specField(live(t, b.resource(t, res.ID)), "suspend"))

	b.insertJob(t, jobs.ApplyEnvironmentArgs{EnvironmentID: liveEnv.ID}) // the environment's settings changed
	require.Eventually(t, func() bool { return b.resource(t, res.ID).SpecVersion > res.SpecVersion+2 }, waitFor, poll)
	stillLive("apply_environment")

	b.insertJob(t, jobs.ApplyResourceArgs{ResourceID: res.ID}) // a repeated or repairing apply
	b.waitJobsDone(t, "apply_resource")
	stillLive("a repeated apply")

	// Unlocking an app after a rollback resumes what the rollback suspended: approved state.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/suspend", res.ID), nil, nil))
	b.waitApplied(t, res.ID)
	d, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{ProjectID: b.project.ID, EnvironmentID: liveEnv.ID,
		Method: store.MethodGitopsUI, Status: store.DeploySucceeded, App: "web"})
	require.NoError(t, err)
	rb, err := b.st.CreateRollback(ctx, b.pool, store.NewRollback{DeploymentID: d.ID, ProjectID: b.project.ID, EnvironmentID: liveEnv.ID,
		App: "web", TargetCommit: strings.Repeat("ab", 20), Strategy: store.RollbackRevert, RepositoryID: b.repo.ID, Branch: "main", Path: "deploy/live/web"})
	require.NoError(t, err)
	rb.Phase, rb.Locked, rb.LockedResourceIDs = store.RollbackSucceeded, true, []int64{res.ID}
	require.NoError(t, b.st.SaveRollback(ctx, b.pool, rb))
	var unlocked map[string]any
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, "/projects/shop/environments/live/apps/web/unlock", nil, &unlocked), "%v", unlocked)
	stillLive("unlock")
	require.Equal(t, nil, specField(live(t, b.resource(t, res.ID)), "suspend"), "resumed")

	// A reject discards the proposal.
	b.as(b.member(t, "rita", "maintainer"), func() {
		require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/approvals/%d/reject", first), map[string]any{"reason": "no"}, nil))
	})
	r := b.resource(t, res.ID)
	require.Equal(t, "null", string(r.Pending))
	require.Nil(t, r.PendingRequestID)

	// So does an expiry.
	second := propose("8m")
	_, err = b.pool.Exec(ctx, `UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, second)
	require.NoError(t, err)
	b.insertJob(t, jobs.ApprovalExpiryArgs{})
	require.Eventually(t, func() bool { return string(b.resource(t, res.ID).Pending) == "null" }, waitFor, poll, "expired: discarded")
	stillLive("after the expiry")

	// The last approval makes a proposal live.
	b.approve(t, propose("7m"))
	require.Eventually(t, func() bool {
		r := b.resource(t, res.ID)
		return r.ApplyStatus == store.ApplyApplied && specField(live(t, r), "timeout") == "7m0s"
	}, waitFor, poll)
}

// TestSourceReadByProdWaitsForProdApprovals (hole 2): a project-wide GitRepository belongs to
// no environment, but once a prod Kustomization reads it, changing or deleting it needs prod's
// approvals; and a stricter reader arriving raises a change already waiting for fewer.
func TestSourceReadByProdWaitsForProdApprovals(t *testing.T) {
	b := setup(t)
	b.prodEnv(t, "live")
	qa, err := b.st.CreateEnvironment(context.Background(), b.pool, store.Environment{ProjectID: b.project.ID, Name: "qa", Kind: "test", Cluster: "west",
		GitopsConfig: json.RawMessage(`{"path":"deploy/qa","requiredApprovals":1,"namespace":"shop-qa"}`)})
	require.NoError(t, err)
	source := func(name string) store.Resource {
		return b.create(t, "/projects/shop/resources", map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": name, "cluster": "west",
			"config": map[string]any{"url": "https://git.example.com/acme/" + name + ".git", "ref": map[string]any{"branch": "main"}}})
	}
	src := source("prod-src")
	require.Nil(t, src.EnvironmentID)
	b.waitApplied(t, src.ID)

	var out held
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/projects/shop/environments/live/resources", kustomizationBody(b.ns, "live-app", "prod-src", "1m"), &out))
	b.approve(t, out.Held[fmt.Sprint(out.Items[0].ID)])

	// Repointing prod's source is held for prod's two approvals, in prod's name.
	var ch held
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", src.ID),
		map[string]any{"config": map[string]any{"url": "https://evil.example.com/x.git", "ref": map[string]any{"branch": "main"}}}, &ch))
	require.NotNil(t, ch.ApprovalRequestID)
	var req store.ApprovalRequest
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/approvals/%d", *ch.ApprovalRequestID), nil, &req))
	require.Equal(t, 2, req.RequiredApprovals)
	require.Contains(t, req.Summary, "read by environment live")
	require.Equal(t, "https://git.example.com/acme/prod-src.git", specField(live(t, b.resource(t, src.ID)), "url"), "not repointed")

	// A source only qa reads (its Kustomization still a proposal) needs qa's one approval.
	src2 := source("shared-src")
	b.waitApplied(t, src2.ID)
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/projects/shop/environments/qa/resources", kustomizationBody(b.ns, "qa-app", "shared-src", "1m"), nil))
	var del held
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", src2.ID),
		map[string]any{"config": map[string]any{"url": "https://git.example.com/acme/other.git"}}, &del))
	require.NotNil(t, del.ApprovalRequestID)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/approvals/%d", *del.ApprovalRequestID), nil, &req))
	require.Equal(t, 1, req.RequiredApprovals, "read by qa only")
	require.Equal(t, qa.ID, *req.EnvironmentID)

	// A prod Kustomization starts reading it: the waiting change now needs prod's approvals.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/projects/shop/environments/live/resources", kustomizationBody(b.ns, "live-two", "shared-src", "1m"), nil))
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/approvals/%d", *del.ApprovalRequestID), nil, &req))
	require.Equal(t, 2, req.RequiredApprovals, "raised by the stricter reader")
}

// TestForeignObjectsAreNeverChanged (hole 3): fluxbridge neither creates over, changes nor
// deletes an object it did not make. The watch lists such objects as discovered; a create over
// one is a 409 naming it and its owner, and `flux bootstrap`'s own objects are refused by name;
// an apply that finds one (it appeared after the create) is refused on the row; deleting such a
// row leaves the object. An admin's import makes an object manageable.
func TestForeignObjectsAreNeverChanged(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	foreign := &sourcev1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.GitRepositoryKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "team-b", Labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "team-b", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://git.example.com/team-b.git", Interval: metav1.Duration{Duration: time.Minute}},
	}
	require.NoError(t, flux.EnsureNamespace(ctx, east.Client, b.ns))
	require.NoError(t, east.Apply(ctx, foreign, "kustomize-controller"))
	admin := b.admin(t)
	var disc struct{ Items []store.Discovered }
	require.Eventually(t, func() bool {
		b.as(admin, func() { b.do(t, http.MethodGet, "/clusters/east/discovered", nil, &disc) })
		for _, d := range disc.Items {
			if d.Namespace == b.ns && d.Name == "team-b" {
				return true
			}
		}
		return false
	}, waitFor, poll, "the watch discovers the foreign object")
	require.Equal(t, http.StatusForbidden, b.do(t, http.MethodGet, "/clusters/east/discovered", nil, nil), "admins only")

	body := map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": "team-b", "cluster": "east",
		"config": map[string]any{"url": "https://evil.example.com/x.git"}}
	var e apiError
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPost, "/projects/shop/resources", body, &e))
	require.Contains(t, e.Error, "Kustomization flux-system/team-b")
	require.Contains(t, e.Error, "import")
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPost, "/projects/shop/environments/staging/resources",
		kustomizationBody("flux-system", "flux-system", "flux-system", "1m"), &e))
	require.Contains(t, e.Error, "flux bootstrap")

	// A row for it all the same (the object appeared after the row was made): the apply is
	// refused, the object unchanged; deleting the row leaves the object.
	row, err := b.st.CreateResource(ctx, b.pool, store.NewResource{ProjectID: b.project.ID, Cluster: "east", Kind: "GitRepository",
		Namespace: b.ns, Name: "team-b", Config: json.RawMessage(`{"url":"https://evil.example.com/x.git"}`)})
	require.NoError(t, err)
	b.insertJob(t, jobs.ApplyResourceArgs{ResourceID: row.ID})
	require.Eventually(t, func() bool { return b.resource(t, row.ID).ApplyStatus == store.ApplyFailed }, waitFor, poll)
	require.Contains(t, b.resource(t, row.ID).ApplyError, "not fluxbridge's (managed by Kustomization flux-system/team-b)")
	require.Equal(t, "https://git.example.com/team-b.git", specField(live(t, *row), "url"))
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodDelete, fmt.Sprintf("/projects/shop/resources/%d", row.ID), nil, nil))
	b.waitDeleted(t, row.ID)
	require.Equal(t, "https://git.example.com/team-b.git", specField(live(t, *row), "url"), "left alone")

	// The admin imports it; from then on it is fluxbridge's to change.
	require.Eventually(t, func() bool {
		_, err := b.st.DiscoveredByRef(ctx, b.pool, store.ObjectRef{Cluster: "east", Kind: "GitRepository", Namespace: b.ns, Name: "team-b"})
		return err == nil
	}, waitFor, poll, "discovered again once its row is gone")
	require.Equal(t, http.StatusForbidden, b.do(t, http.MethodPost, "/projects/shop/resources/import",
		map[string]any{"cluster": "east", "kind": "GitRepository", "namespace": b.ns, "name": "team-b"}, nil), "admins only")
	var imp struct {
		store.Resource
		IgnoredFields []string `json:"ignored_fields"`
		Owner         string   `json:"previous_owner"`
	}
	b.as(admin, func() {
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/resources/import",
			map[string]any{"cluster": "east", "kind": "GitRepository", "namespace": b.ns, "name": "team-b"}, &imp))
	})
	require.Equal(t, "Kustomization flux-system/team-b", imp.Owner)
	require.JSONEq(t, `{"url":"https://git.example.com/team-b.git","interval":"1m0s","timeout":"60s"}`, string(imp.Config))
	res := b.waitApplied(t, imp.ID)
	u := live(t, res)
	require.Equal(t, "fluxbridge", u.GetLabels()["app.kubernetes.io/managed-by"])
	require.Equal(t, fmt.Sprint(res.ID), u.GetAnnotations()["event.toolkit.fluxcd.io/fluxbridge-resource-id"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'resource.import' AND target_id = $1`, fmt.Sprint(res.ID)))
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", res.ID),
		map[string]any{"config": map[string]any{"url": "https://git.example.com/team-b.git", "interval": "2m"}}, nil))
	require.Eventually(t, func() bool { return specField(live(t, res), "interval") == "2m0s" }, waitFor, poll)
	require.GreaterOrEqual(t, refusals(t, b, "foreign_object"), 1.0)
	require.GreaterOrEqual(t, testutil.ToFloat64(b.workerMetrics.Refusals.WithLabelValues("foreign_object")), 2.0, "the apply and the delete refused")
	require.GreaterOrEqual(t, refusals(t, b, "reserved_object"), 1.0)
}

// TestCredentialsStayWithTheirRepository (hole 4): a GitRepository that uses a repository's
// credentials reads that repository's URL and writes its credentials only to the Secret
// fluxbridge derives (and owns): another URL or Secret name is a 400, and a Secret of that name
// that someone else made is never written over.
func TestCredentialsStayWithTheirRepository(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	base := func(name string, cfg map[string]any) map[string]any {
		return map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": name, "cluster": "east", "repository_id": b.repo.ID, "config": cfg}
	}
	var e apiError
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/resources", base("a", map[string]any{"url": "https://attacker.example.com/acme/shop.git"}), &e))
	require.Equal(t, "config.url", e.Field)
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/resources", base("a", map[string]any{"secretRef": "kube-root-ca"}), &e))
	require.Equal(t, "config.secretRef", e.Field)
	// The same repository spelled differently is the same repository.
	ok := b.create(t, "/projects/shop/resources", base("a", map[string]any{"url": "https://GIT.example.com:443/acme/shop"}))
	b.waitApplied(t, ok.ID)
	var s corev1.Secret
	require.NoError(t, east.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: "a-auth"}, &s))
	require.Equal(t, "s3cret", string(s.Data["password"]))

	// Someone's own Secret under the derived name stays theirs.
	theirs := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "b-auth"}, StringData: map[string]string{"password": "theirs"}}
	require.NoError(t, east.Client.Create(ctx, theirs))
	res := b.create(t, "/projects/shop/resources", base("b", map[string]any{}))
	require.Eventually(t, func() bool { return b.resource(t, res.ID).ApplyStatus == store.ApplyFailed }, waitFor, poll)
	require.Contains(t, b.resource(t, res.ID).ApplyError, "Secret "+b.ns+"/b-auth exists and is not fluxbridge's")
	require.NoError(t, east.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: "b-auth"}, &s))
	require.Equal(t, "theirs", string(s.Data["password"]))
	require.GreaterOrEqual(t, refusals(t, b, "credential_url"), 1.0)
	require.GreaterOrEqual(t, testutil.ToFloat64(b.workerMetrics.Refusals.WithLabelValues("credential_secret")), 1.0)
}

// TestEnvironmentsStayApart (hole 5): an environment owns its namespaces and its directory on a
// branch: a new or changed environment that would share either with another (of any project)
// is a 409 naming both; a deploy may target only its environment's namespaces; an applier may
// not aim outside them or impersonate another ServiceAccount.
func TestEnvironmentsStayApart(t *testing.T) {
	b := setup(t)
	newEnv := func(cfg map[string]any) (int, apiError) {
		var e apiError
		code := b.do(t, http.MethodPost, "/projects/shop/environments", map[string]any{"name": "dev", "kind": "dev", "cluster": "east", "gitops_config": cfg}, &e)
		return code, e
	}
	code, e := newEnv(map[string]any{"namespace": b.ns, "path": "deploy/dev"})
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, e.Error, "environment staging of project shop")
	require.Contains(t, e.Error, "namespace "+b.ns)
	code, e = newEnv(map[string]any{"branch": "staging", "path": "deploy/staging/dev"})
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "gitops_config.path", e.Field)
	require.Contains(t, e.Error, "share files on branch staging")
	code, e = newEnv(map[string]any{"branch": "staging", "path": "deploy/dev"})
	require.Equal(t, http.StatusCreated, code, "%+v", e)
	var env map[string]any
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPatch, "/projects/shop/environments/dev",
		map[string]any{"gitops_config": map[string]any{"path": "deploy"}}, &env), "a change that would contain staging's directory")

	// A held change of an environment reserves what it would give it.
	_, err := b.st.CreateEnvironment(context.Background(), b.pool, store.Environment{ProjectID: b.project.ID, Name: "live", Kind: "prod", Cluster: "west",
		GitopsConfig: json.RawMessage(`{"path":"deploy/live"}`)})
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPatch, "/projects/shop/environments/live",
		map[string]any{"gitops_config": map[string]any{"namespace": "shop-next"}}, nil))
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPost, "/projects/shop/environments",
		map[string]any{"name": "next", "kind": "dev", "cluster": "west", "gitops_config": map[string]any{"namespace": "shop-next", "path": "deploy/next"}}, &e))
	require.Contains(t, e.Error, "environment live of project shop")

	// Deploys and appliers stay in the environment.
	form := map[string]any{"method": "gitops-ui", "app": "api", "image": "ghcr.io/acme/api", "tag": "1.0.0", "namespace": "kube-system",
		"ports": []any{map[string]any{"container_port": 8080}}}
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/environments/dev/deployments", form, &e))
	require.Equal(t, "namespace", e.Field)
	require.Contains(t, e.Error, "owns namespaces shop-dev only")
	k := kustomizationBody("flux-system", "dev-apps", "app-src", "1m")
	k["config"].(map[string]any)["targetNamespace"] = "kube-system"
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/environments/dev/resources", k, &e))
	require.Equal(t, "config.targetNamespace", e.Field)
	delete(k["config"].(map[string]any), "targetNamespace")
	k["config"].(map[string]any)["serviceAccountName"] = "kustomize-controller"
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/environments/dev/resources", k, &e))
	require.Equal(t, "config.serviceAccountName", e.Field)

	// An applier of the environment impersonates its ServiceAccount, admin in its namespaces.
	delete(k["config"].(map[string]any), "serviceAccountName")
	res := b.waitApplied(t, b.create(t, "/projects/shop/environments/dev/resources", k).ID)
	require.Equal(t, "fluxbridge-shop-dev", specField(live(t, res), "serviceAccountName"))
	var sa corev1.ServiceAccount
	require.NoError(t, east.Client.Get(context.Background(), client.ObjectKey{Namespace: "flux-system", Name: "fluxbridge-shop-dev"}, &sa))
	require.Equal(t, "fluxbridge", sa.Labels["app.kubernetes.io/managed-by"])
	require.GreaterOrEqual(t, refusals(t, b, "environment_overlap"), 4.0)
	require.GreaterOrEqual(t, refusals(t, b, "foreign_namespace"), 2.0)
}

// TestDevelopersDoNotCreateFluxObjects (hole 6, R13.1): a developer's first deploy into an
// environment without Flux objects is a 403 that says a maintainer must bootstrap it, the
// bootstrap call itself is a maintainer's, and a developer's deploy may not set up image
// automation; into an environment a maintainer bootstrapped, the developer deploys.
func TestDevelopersDoNotCreateFluxObjects(t *testing.T) {
	b := setup(t)
	dev := b.member(t, "dan", "developer")
	form := map[string]any{"method": "gitops-ui", "app": "api", "image": "ghcr.io/acme/api", "tag": "1.0.0",
		"ports": []any{map[string]any{"container_port": 8080}}}
	var denied map[string]any
	b.as(dev, func() {
		require.Equal(t, http.StatusForbidden, b.do(t, http.MethodPost, "/projects/shop/environments/staging/deployments", form, &denied))
		require.Contains(t, denied["required_role"], "a maintainer must bootstrap it (POST /api/v1/projects/shop/environments/staging/bootstrap")
		require.Equal(t, "project role developer", denied["your_role"])
		require.Equal(t, http.StatusForbidden, b.do(t, http.MethodPost, "/projects/shop/environments/staging/bootstrap", nil, nil))
	})
	require.Zero(t, b.count(t, `SELECT count(*) FROM gitops_resources WHERE environment_id = $1`, b.staging.ID), "nothing written")

	var boot struct {
		Kustomization struct {
			ID      int64 `json:"id"`
			Created bool  `json:"created"`
		} `json:"kustomization"`
	}
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/environments/staging/bootstrap", nil, &boot))
	require.True(t, boot.Kustomization.Created)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, "/projects/shop/environments/staging/bootstrap", nil, nil), "once")
	k := b.resource(t, boot.Kustomization.ID)
	require.Contains(t, string(k.Config), `"serviceAccountName":"fluxbridge-shop-staging"`)

	b.as(dev, func() {
		withIA := map[string]any{"image_automation": map[string]any{"semver": ">=1.0.0"}}
		for k, v := range form {
			withIA[k] = v
		}
		require.Equal(t, http.StatusForbidden, b.do(t, http.MethodPost, "/projects/shop/environments/staging/deployments", withIA, &denied))
		require.Contains(t, denied["required_role"], "create image automation")
		var ok map[string]any
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/environments/staging/deployments", form, &ok), "%v", ok)
	})
	require.GreaterOrEqual(t, refusals(t, b, "bootstrap_requires_maintainer"), 3.0)
}

// TestImportedKustomizationRecordsDeployments: teams that already run Flux start by importing;
// an imported Kustomization's next ReconciliationSucceeded at a new revision records one
// gitops-git deployment (before the import it was only audited), however often it is reported.
func TestImportedKustomizationRecordsDeployments(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ks := kustomizeObject(b.ns, "platform")
	require.NoError(t, flux.EnsureNamespace(ctx, east.Client, b.ns))
	require.NoError(t, east.Apply(ctx, ks, "kubectl"))
	admin := b.admin(t)
	require.Eventually(t, func() bool {
		_, err := b.st.DiscoveredByRef(ctx, b.pool, store.ObjectRef{Cluster: "east", Kind: "Kustomization", Namespace: b.ns, Name: "platform"})
		return err == nil
	}, waitFor, poll)

	event := func(rev string) {
		postEvent(t, b, map[string]any{
			"involvedObject": map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "platform", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
			"severity":       "info", "timestamp": time.Now().UTC().Format(time.RFC3339), "reason": "ReconciliationSucceeded",
			"message": "Reconciliation finished", "metadata": map[string]any{"revision": "main@sha1:" + rev}, "reportingController": "kustomize-controller",
		})
	}
	event(strings.Repeat("a", 40))
	require.Eventually(t, func() bool { return b.count(t, `SELECT count(*) FROM flux_events WHERE processed_at IS NULL`) == 0 }, waitFor, poll)
	require.Zero(t, b.count(t, `SELECT count(*) FROM deployments`), "not managed: only audited")

	var imp store.Resource
	b.as(admin, func() {
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/resources/import",
			map[string]any{"cluster": "east", "kind": "Kustomization", "namespace": b.ns, "name": "platform", "environment": "staging"}, &imp))
	})
	require.Equal(t, b.staging.ID, *imp.EnvironmentID)
	b.waitApplied(t, imp.ID)
	rev := strings.Repeat("b", 40)
	event(rev)
	event(rev) // reported again (a retry, the watch): still one deployment
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1 AND deployment_method = 'gitops-git' AND commit_sha = $2`, imp.ID, rev) == 1
	}, waitFor, poll)
	require.Eventually(t, func() bool { return b.count(t, `SELECT count(*) FROM flux_events WHERE processed_at IS NULL`) == 0 }, waitFor, poll)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1`, imp.ID))
	require.Empty(t, specField(live(t, imp), "serviceAccountName"), "an imported applier keeps its identity")
}

// kustomizeObject is a Kustomization someone else applied.
func kustomizeObject(ns, name string) client.Object {
	return &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: "./platform", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "flux-system", Namespace: "flux-system"}},
	}
}

// postEvent delivers a Flux event to the east webhook as notification-controller would.
func postEvent(t *testing.T, b *bundle, ev map[string]any) {
	t.Helper()
	body, _ := json.Marshal(ev)
	mac := hmac.New(sha256.New, []byte(webhookToken))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/hooks/flux/east", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// refusals reads fluxbridge_refusals_total{guard} off the receiver's /metrics.
func refusals(t *testing.T, b *bundle, guard string) float64 {
	t.Helper()
	resp, err := http.Get(b.srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	prefix := `fluxbridge_refusals_total{guard="` + guard + `"} `
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			_, err := fmt.Sscan(strings.TrimPrefix(line, prefix), &v)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}
