package fluxcontrol_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// auditRows counts the audit rows of action about kind ns/name whose details revision (or,
// for an image policy, the new tag) is rev.
func (b *bundle) auditRows(t *testing.T, action string, r store.Resource, rev string) int {
	t.Helper()
	return b.count(t, `SELECT count(*) FROM audit_logs WHERE action = $1 AND target_type = $2 AND target_id = $3
		AND (details->>'revision' = $4 OR details->>'to' = $4)`, action, r.Kind, r.Namespace+"/"+r.Name, rev)
}

func (b *bundle) waitAudit(t *testing.T, action string, r store.Resource, rev string) {
	t.Helper()
	require.Eventually(t, func() bool { return b.auditRows(t, action, r, rev) > 0 }, waitFor, poll, "audit %s %s/%s %s", action, r.Namespace, r.Name, rev)
}

// processed waits until n Flux events were worked.
func (b *bundle) processed(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM flux_events WHERE processed_at IS NOT NULL`) == n
	}, waitFor, poll)
}

func fluxEvent(r store.Resource, apiVersion, reason, msg, rev, controller string) map[string]any {
	ev := map[string]any{
		"involvedObject": map[string]any{"kind": r.Kind, "namespace": r.Namespace, "name": r.Name, "apiVersion": apiVersion},
		"severity":       "info", "timestamp": time.Now().UTC().Format(time.RFC3339), "reason": reason,
		"message": msg, "reportingController": controller,
	}
	if rev != "" {
		ev["metadata"] = map[string]any{"revision": rev}
	}
	return ev
}

// TestWatchAloneIsAudited (R5b.2): a GitRepository's new artifact and a Kustomization's new
// applied revision that only the watch sees (no Alert, notification-controller down) get the
// audit row the event would have written, and the deployment; when the event arrives too,
// after or before the watch, there is one row, not two.
func TestWatchAloneIsAudited(t *testing.T) {
	b := setup(t)
	src, ks := b.gitSourceAndKustomization(t, "staging")

	// The watch first: source-controller and kustomize-controller write status, no event.
	rev1 := "staging@sha1:" + strings.Repeat("1", 40)
	writeStatus(t, src, metav1.ConditionTrue, "Succeeded", "stored artifact for revision "+rev1, "",
		map[string]any{"artifact": map[string]any{"revision": rev1, "path": "x.tar.gz", "url": "http://x/x.tar.gz", "digest": "sha256:" + strings.Repeat("a", 64), "lastUpdateTime": time.Now().UTC().Format(time.RFC3339)}})
	writeStatus(t, ks, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+rev1, "",
		map[string]any{"lastAppliedRevision": rev1, "lastAttemptedRevision": rev1})
	b.waitAudit(t, "flux.NewArtifact", src, rev1)
	b.waitAudit(t, "flux.ReconciliationSucceeded", ks, rev1)
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1 AND revision = $2 AND deployment_method = 'gitops-git'`, ks.ID, rev1) == 1
	}, waitFor, poll)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'flux.NewArtifact' AND details->>'observed_by' = 'watch' AND cluster = 'east'`))

	// notification-controller delivers the same two facts later: no second row.
	postEvent(t, b, fluxEvent(src, "source.toolkit.fluxcd.io/v1", "NewArtifact", "stored artifact for commit 'one'", rev1, "source-controller"))
	postEvent(t, b, fluxEvent(ks, "kustomize.toolkit.fluxcd.io/v1", "ReconciliationSucceeded", "Reconciliation finished", rev1, "kustomize-controller"))
	b.processed(t, 2)
	require.Equal(t, 1, b.auditRows(t, "flux.NewArtifact", src, rev1), "webhook and watch audit the artifact once")
	require.Equal(t, 1, b.auditRows(t, "flux.ReconciliationSucceeded", ks, rev1), "webhook and watch audit the revision once")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM deployments WHERE gitops_resource_id = $1`, ks.ID))

	// The event first, then the watch: one row, the event's.
	rev2 := "staging@sha1:" + strings.Repeat("2", 40)
	postEvent(t, b, fluxEvent(ks, "kustomize.toolkit.fluxcd.io/v1", "ReconciliationSucceeded", "Reconciliation finished", rev2, "kustomize-controller"))
	b.processed(t, 3)
	writeStatus(t, ks, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+rev2, "",
		map[string]any{"lastAppliedRevision": rev2, "lastAttemptedRevision": rev2})
	require.Eventually(t, func() bool { return b.resource(t, ks.ID).StatusMessage == "Applied revision: "+rev2 }, waitFor, poll)
	require.Equal(t, 1, b.auditRows(t, "flux.ReconciliationSucceeded", ks, rev2))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM audit_logs WHERE details->>'revision' = $1 AND details->>'observed_by' = 'watch'`, rev2))

	// Flux reporting a revision again (a drift correction) is an event of its own: audited.
	postEvent(t, b, fluxEvent(ks, "kustomize.toolkit.fluxcd.io/v1", "ReconciliationSucceeded", "Deployment/web configured", rev2, "kustomize-controller"))
	b.processed(t, 4)
	require.Equal(t, 2, b.auditRows(t, "flux.ReconciliationSucceeded", ks, rev2))
}

// TestImagePolicyNewTagAudited (R6b.5): an ImagePolicy's new latest tag writes one audit row
// (policy, old → new tag, cluster, project) whether the watch sees status.latestRef change or
// image-reflector-controller's event says so first. (image-reflector-controller cannot be
// built here: the test writes the status and sends the event it would.)
func TestImagePolicyNewTagAudited(t *testing.T) {
	b := setup(t)
	b.create(t, "/projects/shop/environments/staging/resources", map[string]any{"kind": "ImageRepository", "namespace": b.ns, "name": "web",
		"config": map[string]any{"image": "registry.example.com/acme/web"}})
	pol := b.waitApplied(t, b.create(t, "/projects/shop/environments/staging/resources", map[string]any{"kind": "ImagePolicy", "namespace": b.ns, "name": "web",
		"config": map[string]any{"imageRepositoryRef": "web", "semver": ">=1.0.0"}}).ID)
	const image = "registry.example.com/acme/web"
	latest := func(tag, prev string) {
		st := map[string]any{"latestRef": map[string]any{"name": image, "tag": tag}}
		msg := "Latest image tag for " + image + " resolved to " + tag
		if prev != "" {
			st["observedPreviousRef"] = map[string]any{"name": image, "tag": prev}
			msg += " (previously " + image + ":" + prev + ")"
		}
		writeStatus(t, pol, metav1.ConditionTrue, "Succeeded", msg, "", st)
	}
	tagEvent := func(tag, prev string) map[string]any {
		return fluxEvent(pol, "image.toolkit.fluxcd.io/v1", "Succeeded",
			"Latest image tag for "+image+" resolved to "+tag+" (previously "+image+":"+prev+")", "", "image-reflector-controller")
	}
	tagRow := func(tag string) (from, msg string, project int64) {
		require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT details->>'from', message, project_id FROM audit_logs
			WHERE action = 'image.updated' AND target_id = $1 AND details->>'to' = $2 AND cluster = 'east'`, pol.Namespace+"/"+pol.Name, tag).Scan(&from, &msg, &project))
		return
	}

	latest("1.0.0", "")
	b.waitAudit(t, "image.updated", pol, "1.0.0")
	latest("1.1.0", "1.0.0")
	b.waitAudit(t, "image.updated", pol, "1.1.0")
	from, msg, project := tagRow("1.1.0")
	require.Equal(t, "1.0.0", from)
	require.Equal(t, b.project.ID, project)
	require.Equal(t, "Image policy "+pol.Namespace+"/web: "+image+" 1.0.0 → 1.1.0", msg)

	// The event of the same change, later: still one row.
	postEvent(t, b, tagEvent("1.1.0", "1.0.0"))
	b.processed(t, 1)
	require.Equal(t, 1, b.auditRows(t, "image.updated", pol, "1.1.0"))

	// The event first (the watch lagging), then the status: one row, from the event.
	postEvent(t, b, tagEvent("1.2.0", "1.1.0"))
	b.processed(t, 2)
	b.waitAudit(t, "image.updated", pol, "1.2.0")
	latest("1.2.0", "1.1.0")
	require.Eventually(t, func() bool { return b.resource(t, pol.ID).LastAppliedRevision == image+":1.2.0" }, waitFor, poll)
	require.Equal(t, 1, b.auditRows(t, "image.updated", pol, "1.2.0"))
	from, _, _ = tagRow("1.2.0")
	require.Equal(t, "1.1.0", from)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'image.updated'`))
}

// TestImageAutomationPushRecorded (R6b.5): the commit image-automation-controller pushes,
// applied by a Kustomization, is a gitops-git deployment triggered by image automation, with
// the automation named and its bot as the author — whether the watch sees the automation's
// status.lastPushCommit before the Kustomization applies the commit or after. (The image
// controllers cannot be built here: the test writes the status they would.)
func TestImageAutomationPushRecorded(t *testing.T) {
	b := setup(t)
	_, ks := b.gitSourceAndKustomization(t, "staging")
	auto := b.waitApplied(t, b.create(t, "/projects/shop/environments/staging/resources", map[string]any{"kind": "ImageUpdateAutomation", "namespace": b.ns, "name": "web",
		"config": map[string]any{"sourceRef": "app-src", "authorName": "fluxcdbot", "authorEmail": "fluxcdbot@users.noreply.example.com"}}).ID)
	pushed := func(sha string) {
		writeStatus(t, auto, metav1.ConditionTrue, "Succeeded", "repository up-to-date", "",
			map[string]any{"lastPushCommit": sha, "lastPushTime": time.Now().UTC().Format(time.RFC3339)})
		require.Eventually(t, func() bool { return b.resource(t, auto.ID).LastAppliedRevision == sha }, waitFor, poll)
	}
	applied := func(sha string) store.Deployment {
		rev := "staging@sha1:" + sha
		writeStatus(t, ks, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+rev, "",
			map[string]any{"lastAppliedRevision": rev, "lastAttemptedRevision": rev})
		var d store.Deployment
		require.Eventually(t, func() bool {
			ds, err := b.st.ListDeployments(t.Context(), b.pool, store.DeploymentFilter{ResourceID: ks.ID})
			require.NoError(t, err)
			for _, x := range ds {
				if x.Revision == rev {
					d = x
					return true
				}
			}
			return false
		}, waitFor, poll)
		return d
	}
	check := func(sha string) {
		t.Helper()
		var d store.Deployment
		require.Eventually(t, func() bool {
			ds, err := b.st.ListDeployments(t.Context(), b.pool, store.DeploymentFilter{ResourceID: ks.ID})
			require.NoError(t, err)
			for _, x := range ds {
				if x.CommitSHA == sha {
					d = x
				}
			}
			return d.Trigger != ""
		}, waitFor, poll)
		require.Equal(t, store.MethodGitopsGit, d.DeploymentMethod)
		require.Equal(t, store.TriggerImageAutomation, d.Trigger)
		require.Equal(t, b.ns+"/web", d.TriggerRef)
		require.Equal(t, "fluxcdbot <fluxcdbot@users.noreply.example.com>", d.CommitAuthor)
		require.Equal(t, "succeeded", d.Status)
	}

	// The automation's push is seen first, then the Kustomization applies it.
	first := strings.Repeat("a", 40)
	pushed(first)
	applied(first)
	check(first)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'deployment.succeeded' AND details->>'trigger' = 'image-automation'`))

	// The Kustomization applies the commit before the watch sees the automation's status.
	second := strings.Repeat("b", 40)
	d := applied(second)
	require.Empty(t, d.Trigger, "not known to be the automation's yet")
	pushed(second)
	check(second)

	// A person's push stays a person's.
	third := strings.Repeat("c", 40)
	applied(third)
	d = applied(third) // read again after the watch's next look
	require.Empty(t, d.Trigger)
	require.Equal(t, 3, b.count(t, fmt.Sprintf(`SELECT count(*) FROM deployments WHERE gitops_resource_id = %d`, ks.ID)))
}
