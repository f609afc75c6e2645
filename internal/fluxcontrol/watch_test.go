package fluxcontrol_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// statusLatencyBudget is the acceptance bound: a status written on the apiserver shows up in
// the API within 2 s.
const statusLatencyBudget = 2 * time.Second

// TestWatchShowsStatusWithin2s writes Ready=False then Ready=True on a Kustomization, as
// kustomize-controller would, and measures how long the API takes to show each. The API is
// read in a tight loop only to measure; the worker side is driven by the watch alone.
func TestWatchShowsStatusWithin2s(t *testing.T) {
	b := setup(t)
	_, ks := b.gitSourceAndKustomization(t, "staging")

	measure := func(ready metav1.ConditionStatus, reason, msg string, extra map[string]any, want string) time.Duration {
		start := time.Now()
		writeStatus(t, ks, ready, reason, msg, "", extra)
		for time.Since(start) < 2*statusLatencyBudget {
			if r := b.resource(t, ks.ID); r.Status == want && r.StatusMessage == msg {
				return time.Since(start)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("status %s not shown within %s", want, 2*statusLatencyBudget)
		return 0
	}
	failed := measure(metav1.ConditionFalse, "HealthCheckFailed", "timeout waiting for Deployment/shop/web", nil, "failed")
	rev := "staging@sha1:" + strings.Repeat("c", 40)
	ready := measure(metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+rev, map[string]any{"lastAppliedRevision": rev, "lastAttemptedRevision": rev}, "ready")
	t.Logf("status write -> API: failed %s, ready %s", failed.Round(time.Millisecond), ready.Round(time.Millisecond))
	require.Less(t, failed, statusLatencyBudget)
	require.Less(t, ready, statusLatencyBudget)

	r := b.resource(t, ks.ID)
	require.Equal(t, rev, r.LastAppliedRevision)
	require.NotNil(t, r.LastReconcileAt)
	require.NotNil(t, r.NextReconcileAt)
	require.Equal(t, 10*time.Minute, r.NextReconcileAt.Sub(*r.LastReconcileAt), "next = last + interval")
	require.JSONEq(t, `"Ready"`, string(mustField(t, r.Conditions, 0, "type")))

	var hist struct{ Items []store.HistoryEntry }
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/resources/%d/history", ks.ID), nil, &hist))
	require.GreaterOrEqual(t, len(hist.Items), 2)
	require.Equal(t, "ready", hist.Items[0].Status)
	require.Equal(t, "failed", hist.Items[1].Status)
	require.Equal(t, "watch", hist.Items[0].Source)

	// A failure notifies once; the applied revision is one gitops-git deployment.
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE target_id = $1`, fmt.Sprint(ks.ID)))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1 AND revision = $2 AND status = 'succeeded'`, ks.ID, rev))
}

// TestHelmReleaseUpgradeCountedOnce: a HelmRelease upgrade seen by the watch records the
// deployment, the chart version and the audit row its event would have; the same upgrade
// arriving by webhook adds nothing.
func TestHelmReleaseUpgradeCountedOnce(t *testing.T) {
	b := setup(t)
	hr := b.create(t, "/projects/shop/environments/staging/resources", map[string]any{"kind": "HelmRelease", "namespace": b.ns, "name": "podinfo",
		"config": map[string]any{"chart": map[string]any{"chart": "podinfo", "version": "6.x", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "podinfo"}}}})
	hr = b.waitApplied(t, hr.ID)
	now := time.Now().UTC().Format(time.RFC3339)
	snapshot := func(version string, rev int) map[string]any {
		return map[string]any{"name": "podinfo", "namespace": b.ns, "version": rev, "status": "deployed", "chartName": "podinfo",
			"chartVersion": version, "digest": "sha256:" + strings.Repeat("1", 64), "configDigest": "sha256:" + strings.Repeat("2", 64),
			"firstDeployed": now, "lastDeployed": now}
	}
	writeStatus(t, hr, metav1.ConditionTrue, "UpgradeSucceeded", "Helm upgrade succeeded for release podinfo with chart podinfo@6.7.1",
		"", map[string]any{"history": []any{snapshot("6.7.1", 2), snapshot("6.7.0", 1)}, "lastAttemptedRevision": "6.7.1"})
	require.Eventually(t, func() bool {
		r := b.resource(t, hr.ID)
		return r.ChartVersion == "6.7.1" && r.Status == "ready"
	}, statusLatencyBudget, poll)
	r := b.resource(t, hr.ID)
	require.Equal(t, "podinfo", r.ChartName)
	require.Equal(t, "6.7.1", r.LastAppliedRevision)
	require.Contains(t, string(r.HelmHistory), `"chartVersion":"6.7.0"`)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1 AND revision = '6.7.1'`, hr.ID))
	b.waitAudit(t, "flux.UpgradeSucceeded", hr, "6.7.1") // the watch alone saw it (R5b.2)

	// notification-controller delivers the same upgrade, later.
	ev := map[string]any{
		"involvedObject": map[string]any{"kind": "HelmRelease", "namespace": b.ns, "name": "podinfo", "apiVersion": "helm.toolkit.fluxcd.io/v2"},
		"severity":       "info", "timestamp": time.Now().UTC().Format(time.RFC3339), "reason": "UpgradeSucceeded",
		"message":  "Helm upgrade succeeded for release podinfo with chart podinfo@6.7.1",
		"metadata": map[string]any{"revision": "6.7.1"}, "reportingController": "helm-controller",
	}
	postEvent(t, b, ev)
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM flux_events WHERE processed_at IS NOT NULL`) == 1
	}, waitFor, poll)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1`, hr.ID), "webhook and watch count the upgrade once")
	require.Equal(t, 1, b.auditRows(t, "flux.UpgradeSucceeded", hr, "6.7.1"), "and audit it once")
}

// TestOneWatchLeaderPerCluster: of two watches on one database, one leads each cluster; when it
// stops, the other takes over.
func TestOneWatchLeaderPerCluster(t *testing.T) {
	b := setup(t) // its watch leads both clusters
	var mu sync.Mutex
	leading := map[string]bool{}
	second := b.startWatch(t, func(c string, on bool) { mu.Lock(); leading[c] = on; mu.Unlock() })
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	require.Empty(t, leading, "a second watch must not lead while the first does")
	mu.Unlock()
	second()

	// A third watch takes over when the leader's lock sessions end (as on a crash).
	third := map[string]bool{}
	b.startWatch(t, func(c string, on bool) { mu.Lock(); third[c] = on; mu.Unlock() })
	time.Sleep(200 * time.Millisecond)
	_, err := b.pool.Exec(t.Context(), `
		SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid::bigint = 1718384759
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return third["east"] && third["west"]
	}, waitFor, poll, "the standby takes over when the leader's session ends")
	require.Eventually(t, func() bool { return !b.leads("east") && !b.leads("west") }, waitFor, poll,
		"the old leader notices its lost session and stops watching")
}

func mustField(t *testing.T, raw json.RawMessage, i int, key string) json.RawMessage {
	t.Helper()
	var list []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &list))
	require.Greater(t, len(list), i)
	return list[i][key]
}
