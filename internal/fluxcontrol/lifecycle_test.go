package fluxcontrol_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// kindCase is one Flux kind's trip through the API: its config, a change, and what both look
// like in the object's spec.
type kindCase struct {
	kind, name     string
	config, update map[string]any
	repo           bool
	// specPath and before/after: the spec field the update changes, before and after.
	specPath      []string
	before, after any
}

func kindCases() []kindCase {
	return []kindCase{
		{kind: "GitRepository", name: "app-src", repo: true,
			config:   map[string]any{"ref": map[string]any{"branch": "main"}, "interval": "1m"},
			update:   map[string]any{"ref": map[string]any{"branch": "main"}, "interval": "2m"},
			specPath: []string{"interval"}, before: "1m0s", after: "2m0s"},
		{kind: "OCIRepository", name: "manifests",
			config:   map[string]any{"url": "oci://ghcr.io/acme/manifests", "ref": map[string]any{"tag": "latest"}},
			update:   map[string]any{"url": "oci://ghcr.io/acme/manifests", "ref": map[string]any{"semver": ">=1.0.0"}},
			specPath: []string{"ref", "semver"}, before: nil, after: ">=1.0.0"},
		{kind: "HelmRepository", name: "charts",
			config:   map[string]any{"url": "https://charts.example.com"},
			update:   map[string]any{"url": "https://charts.example.com", "interval": "30m"},
			specPath: []string{"interval"}, before: "10m0s", after: "30m0s"},
		{kind: "HelmChart", name: "chart",
			config:   map[string]any{"chart": "podinfo", "version": "6.x", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}},
			update:   map[string]any{"chart": "podinfo", "version": "7.x", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}},
			specPath: []string{"version"}, before: "6.x", after: "7.x"},
		{kind: "Bucket", name: "bucket",
			config:   map[string]any{"bucketName": "artifacts", "endpoint": "minio.example.com:9000"},
			update:   map[string]any{"bucketName": "artifacts", "endpoint": "minio.example.com:9000", "prefix": "prod/"},
			specPath: []string{"prefix"}, before: nil, after: "prod/"},
		{kind: "Kustomization", name: "app",
			config:   map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}, "timeout": "2m", "healthChecks": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"}}},
			update:   map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "app-src"}, "timeout": "2m", "path": "./overlays/canary"},
			specPath: []string{"path"}, before: "env-path", after: "./overlays/canary"},
		{kind: "HelmRelease", name: "web",
			config:   map[string]any{"chart": map[string]any{"chart": "podinfo", "version": ">=6.0.0 <7.0.0", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}, "values": map[string]any{"replicaCount": 2}},
			update:   map[string]any{"chart": map[string]any{"chart": "podinfo", "version": ">=6.0.0 <7.0.0", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}, "values": map[string]any{"replicaCount": 3}},
			specPath: []string{"values", "replicaCount"}, before: int64(2), after: int64(3)},
		{kind: "ImageRepository", name: "img",
			config:   map[string]any{"image": "ghcr.io/acme/web", "interval": "5m"},
			update:   map[string]any{"image": "ghcr.io/acme/web", "interval": "10m"},
			specPath: []string{"interval"}, before: "5m0s", after: "10m0s"},
		{kind: "ImagePolicy", name: "img-policy",
			config:   map[string]any{"imageRepositoryRef": "img", "semver": "^1.0"},
			update:   map[string]any{"imageRepositoryRef": "img", "semver": "^2.0"},
			specPath: []string{"policy", "semver", "range"}, before: "^1.0", after: "^2.0"},
		{kind: "ImageUpdateAutomation", name: "auto",
			config:   map[string]any{"sourceRef": "app-src", "authorEmail": "bot@example.com", "messageTemplate": "Update images", "pushBranch": "main"},
			update:   map[string]any{"sourceRef": "app-src", "authorEmail": "bot@example.com", "messageTemplate": "chore: {{ len .Changed.Changes }} image updates", "pushBranch": "main"},
			specPath: []string{"git", "commit", "messageTemplate"}, before: "Update images", after: "chore: {{ len .Changed.Changes }} image updates"},
	}
}

// TestEveryKindThroughTheAPI creates, changes, suspends, resumes, reconciles, views as YAML
// and deletes every Flux kind through the API, in both clusters: project-wide sources and
// environment objects in staging (east, auto sync) and production (west, manual sync).
func TestEveryKindThroughTheAPI(t *testing.T) {
	b := setup(t)
	for _, env := range []*store.Environment{b.staging, b.prod} {
		t.Run(env.Name, func(t *testing.T) {
			var ids []int64
			for _, kc := range kindCases() {
				t.Run(kc.kind, func(t *testing.T) {
					ids = append(ids, lifecycleUpToDelete(t, b, env, kc))
				})
			}
			// Delete in reverse, dependents first.
			for i := len(ids) - 1; i >= 0; i-- {
				r := b.resource(t, ids[i])
				require.Equal(t, http.StatusAccepted, b.do(t, http.MethodDelete, fmt.Sprintf("/projects/shop/resources/%d", r.ID), nil, nil))
				b.waitDeleted(t, r.ID)
				_, err := flux.Get(context.Background(), envOf(r.Cluster).Client, flux.Ref{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name})
				require.True(t, apierrors.IsNotFound(err), "%s still in cluster %s: %v", r.Kind, r.Cluster, err)
			}
		})
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM gitops_resources`))
	// One audit row per API call: 10 creates, updates, suspends, resumes and reconciles, and
	// 10 deletes, per environment.
	require.Equal(t, 2*10*6, b.count(t, `SELECT count(*) FROM audit_logs WHERE actor_type <> 'system' OR actor_name = 'api'`))
}

func lifecycleUpToDelete(t *testing.T, b *bundle, env *store.Environment, kc kindCase) int64 {
	applier := kc.kind == "Kustomization" || kc.kind == "HelmRelease"
	manual := applier && env.Name == "production"
	path := "/projects/shop/resources"
	body := map[string]any{"kind": kc.kind, "namespace": b.ns, "name": kc.name, "config": kc.config}
	if applier {
		path = "/projects/shop/environments/" + env.Name + "/resources"
	} else {
		body["cluster"] = env.Cluster
	}
	if kc.repo {
		body["repository_id"] = b.repo.ID
	}
	res := b.create(t, path, body)
	require.Equal(t, env.Cluster, res.Cluster)
	res = b.waitApplied(t, res.ID)

	u := live(t, res)
	require.Equal(t, fmt.Sprint(res.ID), u.GetLabels()["fluxbridge.io/resource-id"])
	require.Equal(t, "fluxbridge", u.GetLabels()["app.kubernetes.io/managed-by"])
	require.Equal(t, fmt.Sprint(res.ID), u.GetAnnotations()["event.toolkit.fluxcd.io/fluxbridge-resource-id"])
	require.Equal(t, "shop", u.GetAnnotations()["event.toolkit.fluxcd.io/project"])
	before := kc.before
	if before == "env-path" {
		before = "./deploy/" + map[string]string{"staging": "staging", "production": "prod"}[env.Name]
	}
	require.Equal(t, before, specField(u, kc.specPath...), "%s before update", kc.kind)
	if applier {
		require.Equal(t, env.Name, u.GetAnnotations()["event.toolkit.fluxcd.io/environment"])
	}
	require.Equal(t, manual, specField(u, "suspend") == true, "suspend follows the environment's sync policy")
	if kc.kind == "GitRepository" {
		require.Equal(t, b.repo.URL, specField(u, "url"))
		require.Equal(t, "app-src-auth", specField(u, "secretRef", "name"))
	}

	// Change.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", res.ID), map[string]any{"config": kc.update}, nil))
	res = b.waitApplied(t, res.ID)
	require.Equal(t, kc.after, specField(live(t, res), kc.specPath...), "%s after update", kc.kind)

	// Suspend: spec.suspend, and a reconcile is refused.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/suspend", res.ID), nil, nil))
	res = b.waitApplied(t, res.ID)
	require.Equal(t, true, specField(live(t, res), "suspend"))
	var e apiError
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", res.ID), nil, &e))
	require.Contains(t, e.Error, "suspended")

	// Resume.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/resume", res.ID), nil, nil))
	res = b.waitApplied(t, res.ID)
	require.Equal(t, manual, specField(live(t, res), "suspend") == true)

	// Reconcile, completed by the status a controller would write.
	rr := reconcileAndAnswer(t, b, res, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: main@sha1:"+strings.Repeat("a", 40))
	require.Equal(t, store.ReconcileSucceeded, rr.Status, rr.Message)
	if manual {
		require.Equal(t, true, specField(live(t, res), "suspend"), "a manual-sync object is suspended again after its reconcile")
	}

	// Live YAML without managedFields.
	var y string
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/resources/%d/yaml", res.ID), nil, &y))
	require.Contains(t, y, "kind: "+kc.kind)
	require.Contains(t, y, "reconcile.fluxcd.io/requestedAt: "+`"`+rr.Token+`"`)
	require.NotContains(t, y, "managedFields")
	return res.ID
}

// reconcileAndAnswer requests a reconcile through the API, waits for the job to set the token
// on the object, writes the status a controller would, and returns the finished request.
func reconcileAndAnswer(t *testing.T, b *bundle, res store.Resource, ready metav1.ConditionStatus, reason, msg string) store.ReconcileRequest {
	t.Helper()
	var rr store.ReconcileRequest
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, fmt.Sprintf("/projects/shop/resources/%d/reconcile", res.ID), map[string]any{}, &rr))
	rr = waitReconcile(t, b, res.ID, rr.ID, func(r store.ReconcileRequest) bool { return r.Status == store.ReconcileRequested })
	u := live(t, res)
	require.Equal(t, rr.Token, u.GetAnnotations()["reconcile.fluxcd.io/requestedAt"])
	writeStatus(t, res, ready, reason, msg, rr.Token, nil)
	return waitReconcile(t, b, res.ID, rr.ID, func(r store.ReconcileRequest) bool { return !r.Open() })
}

// waitReconcile waits until the reconcile request satisfies ok.
func waitReconcile(t *testing.T, b *bundle, resID, reqID int64, ok func(store.ReconcileRequest) bool) store.ReconcileRequest {
	t.Helper()
	return waitReconcileFor(t, b, resID, reqID, waitFor, ok)
}

// waitReconcileFor is waitReconcile with its own bound.
func waitReconcileFor(t *testing.T, b *bundle, resID, reqID int64, bound time.Duration, ok func(store.ReconcileRequest) bool) store.ReconcileRequest {
	t.Helper()
	var last store.ReconcileRequest
	require.Eventually(t, func() bool {
		var list struct{ Items []store.ReconcileRequest }
		b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/resources/%d/reconciles", resID), nil, &list)
		for _, r := range list.Items {
			if r.ID == reqID {
				last = r
				return ok(r)
			}
		}
		return false
	}, bound, poll, "reconcile request %d: %+v", reqID, last)
	return last
}

func specField(u *unstructured.Unstructured, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, append([]string{"spec"}, path...)...)
	return v
}
