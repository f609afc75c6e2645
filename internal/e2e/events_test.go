package e2e

import (
	"context"
	"encoding/json"
	"testing"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// latestEvent returns the metadata of the newest stored Flux event about an object whose
// revision names sha, failing when there is none.
func latestEvent(t testing.TB, kind, name, sha string) map[string]any {
	t.Helper()
	var raw []byte
	err := rig.App.pool.QueryRow(context.Background(), `
		SELECT metadata FROM flux_events WHERE cluster = $1 AND kind = $2 AND name = $3 AND revision LIKE '%' || $4
		ORDER BY id DESC LIMIT 1`, clusterName, kind, name, sha).Scan(&raw)
	require.NoError(t, err, "no %s %s event at %s", kind, name, sha)
	md := map[string]any{}
	require.NoError(t, json.Unmarshal(raw, &md))
	return md
}

// diagnose logs what fluxbridge knows about a project when a wait fails: its resources, the
// deployments, the reconcile requests and the jobs that failed.
func diagnose(t testing.TB, slug string) {
	t.Helper()
	ctx := context.Background()
	q := func(title, sql string, args ...any) {
		rows, err := rig.App.pool.Query(ctx, sql, args...)
		if err != nil {
			t.Logf("%s: %v", title, err)
			return
		}
		defer rows.Close()
		t.Logf("--- %s", title)
		for rows.Next() {
			vals, _ := rows.Values()
			t.Logf("%v", vals)
		}
	}
	if out, err := rig.Git.run(rig.Git.bare(slug), "log", "--format=%h %s", "--name-status", "-12", "main"); err == nil {
		t.Logf("--- git log of %s\n%s", slug, out)
	}
	var deps appsv1.DeploymentList
	if err := rig.Env.Client.List(ctx, &deps, client.InNamespace(slug+"-dev")); err == nil {
		for _, d := range deps.Items {
			t.Logf("--- Deployment %s: replicas %d updated %d ready %d available %d; conditions %+v", d.Name,
				d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.Conditions)
		}
	}
	var nodes corev1.NodeList
	if err := rig.Env.Client.List(ctx, &nodes); err == nil {
		for _, n := range nodes.Items {
			t.Logf("--- Node %s: conditions %+v taints %+v", n.Name, n.Status.Conditions, n.Spec.Taints)
		}
	}
	var pods corev1.PodList
	if err := rig.Env.Client.List(ctx, &pods, client.InNamespace(slug+"-dev")); err == nil {
		for _, p := range pods.Items {
			t.Logf("--- Pod %s: node %q phase %s deleting %v conditions %+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.DeletionTimestamp != nil, p.Status.Conditions)
		}
	}
	q("resources", `SELECT r.id, r.kind, r.namespace, r.name, r.status, r.status_reason, r.status_message, r.apply_status, r.apply_error, r.last_applied_revision
		FROM gitops_resources r JOIN projects p ON p.id = r.project_id WHERE p.slug = $1 ORDER BY r.id`, slug)
	q("deployments", `SELECT d.id, d.deployment_method, d.status, d.app, d.revision, d.commit_sha, left(d.message, 100), d.created_at
		FROM deployments d JOIN projects p ON p.id = d.project_id WHERE p.slug = $1 ORDER BY d.id`, slug)
	q("reconcile requests", `SELECT q.id, q.resource_id, q.status, q.message, q.revision FROM reconcile_requests q
		JOIN gitops_resources r ON r.id = q.resource_id JOIN projects p ON p.id = r.project_id WHERE p.slug = $1 ORDER BY q.id`, slug)
	q("jobs by kind and state", `SELECT kind, state, count(*), min(scheduled_at), max(attempt) FROM river_job GROUP BY 1, 2 ORDER BY 1, 2`)
	q("failed jobs", `SELECT id, kind, state, attempt, args, errors FROM river_job WHERE errors IS NOT NULL OR state IN ('discarded', 'cancelled') ORDER BY id DESC LIMIT 20`)
}

// alertSources returns the eventSources of an Alert in the Flux namespace as "Kind/name".
func alertSources(t testing.TB, name string) []string {
	t.Helper()
	var a notificationv1beta3.Alert
	require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: fluxNamespace, Name: name}, &a))
	var out []string
	for _, s := range a.Spec.EventSources {
		out = append(out, s.Kind+"/"+s.Name)
	}
	return out
}
