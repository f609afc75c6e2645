package flux_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxbridge/fluxbridge/internal/flux"
)

func obj(kind string, gen int64, suspend bool, status map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "x/v1", "kind": kind,
		"metadata": map[string]any{"name": "a", "namespace": "n", "generation": gen},
		"spec":     map[string]any{"interval": "10m", "suspend": suspend},
	}}
	if status != nil {
		u.Object["status"] = status
	}
	return u
}

func cond(typ, status, reason string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": reason + " message",
		"lastTransitionTime": "2026-11-27T01:00:00Z"}
}

func withMessage(c map[string]any, msg string) map[string]any {
	c["message"] = msg
	return c
}

func TestObserveFollowsKstatus(t *testing.T) {
	tests := []struct {
		name   string
		u      *unstructured.Unstructured
		status string
	}{
		{"never reconciled", obj("Kustomization", 1, false, nil), flux.StatusUnknown},
		{"suspended wins", obj("Kustomization", 1, true, map[string]any{"observedGeneration": int64(1), "conditions": []any{cond("Ready", "False", "BuildFailed")}}), flux.StatusSuspended},
		{"ready", obj("Kustomization", 2, false, map[string]any{"observedGeneration": int64(2), "conditions": []any{cond("Ready", "True", "ReconciliationSucceeded")}}), flux.StatusReady},
		{"new generation not observed", obj("Kustomization", 3, false, map[string]any{"observedGeneration": int64(2), "conditions": []any{cond("Ready", "True", "ReconciliationSucceeded")}}), flux.StatusReconciling},
		{"failed", obj("Kustomization", 2, false, map[string]any{"observedGeneration": int64(2), "conditions": []any{cond("Ready", "False", "HealthCheckFailed")}}), flux.StatusFailed},
		{"waiting for dependencies", obj("Kustomization", 2, false, map[string]any{"observedGeneration": int64(2), "conditions": []any{cond("Ready", "False", "DependencyNotReady")}}), flux.StatusReconciling},
		{"ready but reconciling again", obj("HelmRelease", 2, false, map[string]any{"observedGeneration": int64(2), "conditions": []any{cond("Ready", "True", "UpgradeSucceeded"), cond("Reconciling", "True", "Progressing")}}), flux.StatusReconciling},
		{"stalled", obj("GitRepository", 1, false, map[string]any{"observedGeneration": int64(1), "conditions": []any{cond("Ready", "Unknown", "Progressing"), cond("Stalled", "True", "InvalidURL")}}), flux.StatusFailed},
		{"unknown ready", obj("GitRepository", 1, false, map[string]any{"observedGeneration": int64(1), "conditions": []any{cond("Ready", "Unknown", "Progressing")}}), flux.StatusReconciling},
		{"waiting for the source's artifact", obj("Kustomization", 1, false, map[string]any{"observedGeneration": int64(1), "conditions": []any{
			withMessage(cond("Ready", "False", "ArtifactFailed"), "Source artifact not found, retrying in 30s")}}), flux.StatusReconciling},
		{"path missing at the artifact", obj("Kustomization", 1, false, map[string]any{"observedGeneration": int64(1), "conditions": []any{
			withMessage(cond("Ready", "False", "ArtifactFailed"), "kustomization path not found: stat /tmp/k/clusters/dev: no such file or directory")}}), flux.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.status, flux.Observe(tt.u).Status)
		})
	}
}

func TestObserveReadsRevisionsAndTimes(t *testing.T) {
	hr := obj("HelmRelease", 4, false, map[string]any{
		"observedGeneration": int64(4), "lastAttemptedRevision": "6.7.1", "lastHandledReconcileAt": "tok",
		"conditions": []any{cond("Ready", "True", "UpgradeSucceeded")},
		"history": []any{
			map[string]any{"chartName": "podinfo", "chartVersion": "6.7.1", "status": "deployed", "lastDeployed": "2026-11-27T01:05:00Z"},
			map[string]any{"chartName": "podinfo", "chartVersion": "6.7.0", "status": "superseded"},
		},
	})
	o := flux.Observe(hr)
	require.Equal(t, "6.7.1", o.Revision)
	require.Equal(t, "6.7.1", o.AppliedRevision)
	require.Equal(t, "podinfo", o.ChartName)
	require.Equal(t, "tok", o.LastHandledReconcileAt)
	require.Equal(t, time.Date(2026, 11, 27, 1, 5, 0, 0, time.UTC), *o.LastReconcileAt, "the release is later than the condition")
	require.Equal(t, 10*time.Minute, o.NextReconcileAt.Sub(*o.LastReconcileAt))
	require.Contains(t, string(o.HelmHistory), `"6.7.0"`)

	ks := obj("Kustomization", 1, true, map[string]any{"observedGeneration": int64(1),
		"lastAppliedRevision": "main@sha1:aaa", "lastAttemptedRevision": "main@sha1:bbb",
		"conditions": []any{cond("Ready", "False", "BuildFailed")}})
	o = flux.Observe(ks)
	require.Equal(t, "main@sha1:bbb", o.Revision, "not ready: the attempted revision")
	require.Nil(t, o.NextReconcileAt, "suspended: no next reconcile")
}
