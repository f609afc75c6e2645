package fluxcontrol_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

func (b *bundle) gitSourceAndKustomization(t *testing.T, env string) (src, ks store.Resource) {
	t.Helper()
	cl := map[string]string{"staging": "east", "production": "west"}[env]
	src = b.create(t, "/projects/shop/resources", map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": "app-src",
		"cluster": cl, "repository_id": b.repo.ID, "config": map[string]any{}})
	ks = b.create(t, "/projects/shop/environments/"+env+"/resources", map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "app",
		"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}, "timeout": "1m"}})
	return b.waitApplied(t, src.ID), b.waitApplied(t, ks.ID)
}

// TestReconcileReportsFailure: Ready=False after the request is handled fails the request,
// with the controller's message, in the API and the audit log.
func TestReconcileReportsFailure(t *testing.T) {
	b := setup(t)
	_, ks := b.gitSourceAndKustomization(t, "staging")
	start := time.Now()
	rr := reconcileAndAnswer(t, b, ks, metav1.ConditionFalse, "BuildFailed", "kustomize build failed: missing resource web.yaml")
	t.Logf("reconcile job: request to verdict in %s (including the test's status write)", time.Since(start).Round(time.Millisecond))
	require.Equal(t, store.ReconcileFailed, rr.Status)
	require.Contains(t, rr.Message, "missing resource web.yaml")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'resource.reconcile' AND target_id = $1`, fmt.Sprint(ks.ID)))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'resource.reconcile_failed' AND target_id = $1`, fmt.Sprint(ks.ID)))

	// The detail view shows the request's progress and the status the watch saw.
	var d struct {
		store.Resource
		Reconcile *store.ReconcileRequest `json:"reconcile"`
	}
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/resources/%d", ks.ID), nil, &d))
	require.Equal(t, rr.ID, d.Reconcile.ID)
	require.Equal(t, store.ReconcileFailed, d.Reconcile.Status)
}

// TestReconcileWithSource: --with-source reconciles the GitRepository first. When it comes
// back with an artifact the Kustomization has not attempted, kustomize-controller runs the
// Kustomization for it on its own: the job follows that run instead of requesting a second one
// (no annotation), and takes its verdict. When the artifact is one the Kustomization already
// applied, the job requests the run itself. A HelmRelease-only flag on a Kustomization is a 400.
func TestReconcileWithSource(t *testing.T) {
	b := setup(t)
	src, ks := b.gitSourceAndKustomization(t, "staging")
	var e apiError
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", ks.ID), map[string]any{"force": true}, &e))
	require.Equal(t, "force", e.Field)

	revB := "main@sha1:" + strings.Repeat("b", 40)
	var rr store.ReconcileRequest
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", ks.ID), map[string]any{"with_source": true}, &rr))
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileSourceRequested })
	require.Equal(t, rr.SourceToken, live(t, src).GetAnnotations()["reconcile.fluxcd.io/requestedAt"])
	require.Empty(t, live(t, ks).GetAnnotations()["reconcile.fluxcd.io/requestedAt"], "the Kustomization waits for its source")

	writeStatus(t, src, metav1.ConditionTrue, "Succeeded", "stored artifact", rr.SourceToken, map[string]any{"artifact": artifact(revB)})
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileRequested })
	require.Empty(t, rr.Token, "a new artifact: Flux runs the Kustomization on its own")
	require.Equal(t, revB, rr.Revision, "the revision the job waits for")
	// The controller's run: in progress at B, then Ready at B. The object was never annotated.
	writeStatus(t, ks, metav1.ConditionUnknown, "Progressing", "Reconciliation in progress", "", map[string]any{"lastAttemptedRevision": revB})
	require.Empty(t, live(t, ks).GetAnnotations()["reconcile.fluxcd.io/requestedAt"], "no second run requested")
	writeStatus(t, ks, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+revB, "",
		map[string]any{"lastAttemptedRevision": revB, "lastAppliedRevision": revB})
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return !r.Open() })
	require.Equal(t, store.ReconcileSucceeded, rr.Status)
	require.Equal(t, revB, rr.Revision)
	require.Empty(t, live(t, ks).GetAnnotations()["reconcile.fluxcd.io/requestedAt"])

	// Again, with nothing new in Git: the source's artifact is the one applied, so the job asks
	// for the run, as `flux reconcile` does.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", ks.ID), map[string]any{"with_source": true}, &rr))
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileSourceRequested })
	writeStatus(t, src, metav1.ConditionTrue, "Succeeded", "stored artifact", rr.SourceToken, map[string]any{"artifact": artifact(revB)})
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileRequested })
	require.NotEmpty(t, rr.Token)
	require.Equal(t, rr.Token, live(t, ks).GetAnnotations()["reconcile.fluxcd.io/requestedAt"])
	writeStatus(t, ks, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+revB, rr.Token,
		map[string]any{"lastAttemptedRevision": revB, "lastAppliedRevision": revB})
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return !r.Open() })
	require.Equal(t, store.ReconcileSucceeded, rr.Status)
}

// TestReconcileWithSourceFailsBeforeAttempt: a Kustomization that does not get to the new
// artifact (here: it reports the path missing at the old one and stays idle) is asked for a
// run after followGrace, and that run's verdict is the request's.
func TestReconcileWithSourceFailsBeforeAttempt(t *testing.T) {
	b := setup(t)
	src, ks := b.gitSourceAndKustomization(t, "staging")
	revA, revC := "main@sha1:"+strings.Repeat("a", 40), "main@sha1:"+strings.Repeat("c", 40)
	writeStatus(t, ks, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+revA, "",
		map[string]any{"lastAttemptedRevision": revA, "lastAppliedRevision": revA})
	var rr store.ReconcileRequest
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", ks.ID), map[string]any{"with_source": true}, &rr))
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileSourceRequested })
	writeStatus(t, src, metav1.ConditionTrue, "Succeeded", "stored artifact", rr.SourceToken, map[string]any{"artifact": artifact(revC)})
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileRequested })
	require.Empty(t, rr.Token)
	writeStatus(t, ks, metav1.ConditionFalse, "ArtifactFailed", "kustomization path not found", "",
		map[string]any{"lastAttemptedRevision": revA, "lastAppliedRevision": revA})
	start := time.Now()
	rr = waitReconcileFor(t, b, ks.ID, rr.ID, 30*time.Second, func(r store.ReconcileRequest) bool { return r.Token != "" })
	require.GreaterOrEqual(t, time.Since(start), 5*time.Second, "given its grace first")
	require.Equal(t, rr.Token, live(t, ks).GetAnnotations()["reconcile.fluxcd.io/requestedAt"])
	writeStatus(t, ks, metav1.ConditionFalse, "ArtifactFailed", "kustomization path not found", rr.Token,
		map[string]any{"lastAttemptedRevision": revA, "lastAppliedRevision": revA})
	rr = waitReconcile(t, b, ks.ID, rr.ID, func(r store.ReconcileRequest) bool { return !r.Open() })
	require.Equal(t, store.ReconcileFailed, rr.Status)
	require.Contains(t, rr.Message, "path not found")
}

// artifact is a source's status.artifact at rev.
func artifact(rev string) map[string]any {
	return map[string]any{"revision": rev, "lastUpdateTime": time.Now().UTC().Format(time.RFC3339),
		"path": "x", "url": "http://x", "digest": "sha256:" + strings.Repeat("0", 64)}
}

// TestHelmReleaseForceReset: force and reset set forceAt and resetAt equal to the token.
func TestHelmReleaseForceReset(t *testing.T) {
	b := setup(t)
	hr := b.create(t, "/projects/shop/environments/staging/resources", map[string]any{"kind": "HelmRelease", "namespace": b.ns, "name": "web",
		"config": map[string]any{"chartRef": map[string]any{"kind": "OCIRepository", "name": "podinfo"}}})
	hr = b.waitApplied(t, hr.ID)
	var rr store.ReconcileRequest
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", hr.ID), map[string]any{"force": true, "reset": true}, &rr))
	rr = waitReconcile(t, b, hr.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileRequested })
	ann := live(t, hr).GetAnnotations()
	require.Equal(t, rr.Token, ann["reconcile.fluxcd.io/requestedAt"])
	require.Equal(t, rr.Token, ann["reconcile.fluxcd.io/forceAt"])
	require.Equal(t, rr.Token, ann["reconcile.fluxcd.io/resetAt"])
	_, err := time.Parse(time.RFC3339Nano, rr.Token)
	require.NoError(t, err)
}

// TestDependencyTimeout: a Kustomization whose dependency never becomes ready times the
// request out after its dependencyTimeout, saying so.
func TestDependencyTimeout(t *testing.T) {
	b := setup(t)
	src, _ := b.gitSourceAndKustomization(t, "staging")
	_ = src
	late := b.create(t, "/projects/shop/environments/staging/resources", map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "late",
		"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}, "dependsOn": []any{map[string]any{"name": "app"}}, "dependencyTimeout": "2s"}})
	late = b.waitApplied(t, late.ID)
	var rr store.ReconcileRequest
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", late.ID), nil, &rr))
	rr = waitReconcile(t, b, late.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileRequested })
	writeStatus(t, late, metav1.ConditionFalse, "DependencyNotReady", "dependency 'app' is not ready", rr.Token, nil)
	rr = waitReconcile(t, b, late.ID, rr.ID, func(r store.ReconcileRequest) bool { return !r.Open() })
	require.Equal(t, store.ReconcileTimedOut, rr.Status)
	require.Contains(t, rr.Message, "dependencies not ready after 2s")
}
