package jobs_test

import (
	"context"
	"errors"
	"io"
	"log"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// TestMain silences gitkit, which logs every request of the Git test servers through the
// standard logger, and provides Postgres.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	storetest.Main(m)
}

type testBundle struct {
	pool   *pgxpool.Pool
	st     *store.Store
	seed   *storetest.Seeded
	worker *jobs.FluxEventWorker
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	t.Parallel()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	return &testBundle{pool: pool, st: st, seed: storetest.Seed(t, st, pool), worker: &jobs.FluxEventWorker{Store: st}}
}

// deliver stores an event body as the webhook would and works its job; it returns the event ID.
func (b *testBundle) deliver(t *testing.T, body []byte) int64 {
	t.Helper()
	id := b.insertEvent(t, body)
	b.work(t, id)
	return id
}

// insertEvent stores an event body as the webhook would; it returns the event ID.
func (b *testBundle) insertEvent(t *testing.T, body []byte) int64 {
	t.Helper()
	ev, err := fluxevent.Decode(body)
	require.NoError(t, err)
	fp := ev.Fingerprint(storetest.Cluster)
	o := ev.InvolvedObject
	id, inserted, err := b.st.InsertFluxEvent(context.Background(), b.pool, &store.FluxEvent{
		Cluster: storetest.Cluster, Fingerprint: fp[:], EventTime: ev.Timestamp.UTC(), APIVersion: o.APIVersion,
		Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: string(o.UID), Severity: ev.Severity,
		Reason: ev.Reason, Message: ev.Message, Revision: ev.Revision(), ReportingController: ev.ReportingController,
		Metadata: ev.Metadata,
	})
	require.NoError(t, err)
	require.True(t, inserted)
	return id
}

func (b *testBundle) work(t *testing.T, id int64) {
	t.Helper()
	job := &river.Job[jobs.FluxEventArgs]{JobRow: &rivertype.JobRow{ID: id, Attempt: 1, Kind: "flux_event"}, Args: jobs.FluxEventArgs{EventID: id}}
	require.NoError(t, b.worker.Work(context.Background(), job))
}

func (b *testBundle) deployments(t *testing.T) []store.Deployment {
	t.Helper()
	ds, err := b.st.ListDeployments(context.Background(), b.pool, store.DeploymentFilter{ProjectID: b.seed.Project.ID})
	require.NoError(t, err)
	return ds
}

func (b *testBundle) resource(t *testing.T, id int64) *store.Resource {
	t.Helper()
	r, err := b.st.ResourceByID(context.Background(), b.pool, id)
	require.NoError(t, err)
	return r
}

func (b *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestGitDeploymentOncePerRevision(t *testing.T) {
	b := setup(t)
	id := b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))

	ds := b.deployments(t)
	require.Len(t, ds, 1)
	d := ds[0]
	require.Equal(t, store.MethodGitopsGit, d.DeploymentMethod)
	require.Equal(t, store.DeploySucceeded, d.Status)
	require.Equal(t, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", d.Revision)
	require.Equal(t, "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", d.CommitSHA)
	require.Equal(t, b.seed.Kustomization.ID, *d.GitopsResourceID)
	require.Equal(t, b.seed.Env.ID, d.EnvironmentID)

	k := b.resource(t, b.seed.Kustomization.ID)
	require.Equal(t, "ready", k.Status)
	require.Equal(t, "ReconciliationSucceeded", k.StatusReason)
	require.Equal(t, d.Revision, k.LastAppliedRevision)
	require.Equal(t, "5c1d8e2a-77f0-4e43-8b1e-2f9a4c3d1b00", k.ObjectUID)
	require.NotNil(t, k.LastReconcileAt)

	audits := b.count(t, "audit_logs")
	// The job delivered again (River is at-least-once): nothing changes.
	b.work(t, id)
	// Flux's periodic re-reconcile of the same revision, a new event: no new deployment.
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"timestamp": "2026-11-26T09:24:04Z", "message": "Reconciliation finished in 700ms, next run in 10m0s"}))
	require.Len(t, b.deployments(t), 1)
	require.Equal(t, audits+1, b.count(t, "audit_logs"), "only the new event is audited")

	// A push moves to a new revision: a second deployment.
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"timestamp": "2026-11-26T09:34:04Z", "metadata.revision": "main@sha1:1111111111111111111111111111111111111111"}))
	require.Len(t, b.deployments(t), 2)
}

func TestUIDeploymentMatchedByCommit(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ui, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID, GitopsResourceID: &b.seed.Kustomization.ID,
		Method: store.MethodGitopsUI, Status: store.DeployPushed, App: "podinfo", RequestedBy: &b.seed.User.ID,
		CommitSHA: "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", CommitMessage: "deploy podinfo to production: image 6.7.0 → 6.7.1",
	})
	require.NoError(t, err)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))

	ds := b.deployments(t)
	require.Len(t, ds, 1, "the UI deployment takes the event; no gitops-git one")
	require.Equal(t, ui.ID, ds[0].ID)
	require.Equal(t, store.DeploySucceeded, ds[0].Status)
	require.Equal(t, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", ds[0].Revision)
	require.NotNil(t, ds[0].FinishedAt)

	// A later re-reconcile of the same commit does not invent a gitops-git deployment.
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T09:44:04Z"}))
	require.Len(t, b.deployments(t), 1)
}

func TestUIDeploymentMatchedByAncestor(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var asked [][2]string
	b.worker.IsAncestor = func(_ context.Context, repoID int64, anc, desc string) (bool, error) {
		require.Equal(t, b.seed.Repo.ID, repoID)
		// Git is asked before the event's transaction: the resource row is not locked now.
		var one int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT 1 FROM gitops_resources WHERE id = $1 FOR UPDATE NOWAIT`,
			b.seed.Kustomization.ID).Scan(&one), "the ancestry check ran while the row was locked")
		asked = append(asked, [2]string{anc, desc})
		return anc == "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", nil
	}
	older, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID, GitopsResourceID: &b.seed.Kustomization.ID,
		Method: store.MethodGitopsUI, Status: store.DeployPushed, CommitSHA: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	})
	require.NoError(t, err)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))
	d, err := b.st.DeploymentByID(ctx, b.pool, older.ID)
	require.NoError(t, err)
	require.Equal(t, store.DeploySucceeded, d.Status, "Flux applied a descendant of the UI commit")
	require.Len(t, asked, 1)
	require.Len(t, b.deployments(t), 1)
}

// TestAncestorCheckFailureDoesNotBlockEvents: with Git unreachable, the event is still
// processed; the UI deployment stays open and is settled by Flux's next report.
func TestAncestorCheckFailureDoesNotBlockEvents(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	gitDown := true
	b.worker.IsAncestor = func(context.Context, int64, string, string) (bool, error) {
		if gitDown {
			return false, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}
		return true, nil
	}
	ui, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID, GitopsResourceID: &b.seed.Kustomization.ID,
		Method: store.MethodGitopsUI, Status: store.DeployPushed, CommitSHA: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	})
	require.NoError(t, err)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))
	require.Equal(t, "ready", b.resource(t, b.seed.Kustomization.ID).Status, "status is current even though Git is down")
	ds := b.deployments(t)
	require.Len(t, ds, 1, "no gitops-git deployment is guessed")
	require.Equal(t, store.DeployPushed, ds[0].Status)

	gitDown = false
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T09:24:04Z"}))
	d, err := b.st.DeploymentByID(ctx, b.pool, ui.ID)
	require.NoError(t, err)
	require.Equal(t, store.DeploySucceeded, d.Status)
	require.Len(t, b.deployments(t), 1)
}

func TestKustomizationFailure(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationBuildFailed))

	k := b.resource(t, b.seed.Kustomization.ID)
	require.Equal(t, "failed", k.Status)
	require.Equal(t, "BuildFailed", k.StatusReason)
	require.Equal(t, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", k.LastAppliedRevision, "a failure keeps the applied revision")
	require.Equal(t, "main@sha1:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b", k.LastAttemptedRevision)

	failed, err := b.st.ListDeployments(ctx, b.pool, store.DeploymentFilter{Status: store.DeployFailed})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].Message, "MalformedYAMLError")

	ns, err := b.st.ListNotifications(ctx, b.pool, b.seed.Project.ID, 0, 10)
	require.NoError(t, err)
	require.Len(t, ns, 1)
	require.Equal(t, "error", ns[0].Severity)
	require.Contains(t, ns[0].Body, "MalformedYAMLError")
	require.Contains(t, ns[0].Body, "How to fix: kustomize build failed")

	// Flux retries and fails the same way: no second notification.
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationBuildFailed, map[string]any{"timestamp": "2026-11-26T09:41:45Z"}))
	require.Equal(t, 1, b.count(t, "notifications"))

	// The fix is pushed at the failed revision's successor; then the failed revision is retried
	// and succeeds (a flake): the failed gitops-git deployment turns succeeded, never the reverse.
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"timestamp": "2026-11-26T09:51:45Z", "metadata.revision": "main@sha1:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"}))
	ok, err := b.st.ListDeployments(ctx, b.pool, store.DeploymentFilter{Status: store.DeploySucceeded})
	require.NoError(t, err)
	require.Len(t, ok, 2)
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationBuildFailed, map[string]any{"timestamp": "2026-11-26T10:01:45Z"}))
	ok, err = b.st.ListDeployments(ctx, b.pool, store.DeploymentFilter{Status: store.DeploySucceeded})
	require.NoError(t, err)
	require.Len(t, ok, 2, "a succeeded deployment never turns failed")
}

func TestOutOfOrderEventsDoNotRegressStatus(t *testing.T) {
	b := setup(t)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationBuildFailed)) // 09:31:45
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))   // 09:14:04, older
	k := b.resource(t, b.seed.Kustomization.ID)
	require.Equal(t, "failed", k.Status, "an older event does not overwrite a newer status")
	require.Len(t, b.deployments(t), 2, "both revisions are still recorded")
}

// TestSameSecondProgressingAfterOutcome: kustomize-controller sends Progressing ("ConfigMap/x
// created") and ReconciliationSucceeded within the same second; whatever order the jobs run in,
// the outcome stands.
func TestSameSecondProgressingAfterOutcome(t *testing.T) {
	b := setup(t)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"reason": "Progressing", "message": "Deployment/webapp/podinfo configured"}))
	require.Equal(t, "ready", b.resource(t, b.seed.Kustomization.ID).Status)
	// A Progressing event a second later is a new reconciliation.
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"reason": "Progressing", "message": "Deployment/webapp/podinfo configured", "timestamp": "2026-11-26T09:14:05Z"}))
	require.Equal(t, "reconciling", b.resource(t, b.seed.Kustomization.ID).Status)
}

// TestFutureDatedEventDoesNotFreezeStatus: an event from a cluster whose clock runs far ahead
// (here dated 2099) is ordered by its arrival, so the next correctly dated event still moves the
// status; flux_events keeps the date it was sent with. A time that far ahead stored before the
// clamp existed never freezes a row or a repository either.
func TestFutureDatedEventDoesNotFreezeStatus(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	future := b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationBuildFailed, map[string]any{"timestamp": "2099-01-01T00:00:00Z"}))
	k := b.resource(t, b.seed.Kustomization.ID)
	require.Equal(t, "failed", k.Status)
	require.WithinDuration(t, time.Now(), *k.StatusObservedAt, time.Minute, "ordered by arrival")
	var sent time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT event_time FROM flux_events WHERE id = $1`, future).Scan(&sent))
	require.Equal(t, 2099, sent.Year(), "the event keeps its own date")

	now := time.Now().UTC().Add(2 * time.Second).Format(time.RFC3339)
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": now}))
	require.Equal(t, "ready", b.resource(t, b.seed.Kustomization.ID).Status, "a correctly dated later event wins")

	// Rows frozen before the clamp: a stored 2099 is older than any observation.
	_, err := b.pool.Exec(ctx, `UPDATE gitops_resources SET status_observed_at = '2099-01-01' WHERE id = $1`, b.seed.Kustomization.ID)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE repositories SET last_synced_at = '2099-01-01' WHERE id = $1`, b.seed.Repo.ID)
	require.NoError(t, err)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationBuildFailed))
	require.Equal(t, "failed", b.resource(t, b.seed.Kustomization.ID).Status)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.GitRepositoryAuthFailed))
	repo, err := b.st.RepositoryByID(ctx, b.pool, b.seed.Repo.ID)
	require.NoError(t, err)
	require.Equal(t, store.SyncFailed, repo.FluxSyncStatus)
}

func TestSourceEventsUpdateRepositorySync(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.GitRepositoryNewArtifact))
	repo, err := b.st.RepositoryByID(ctx, b.pool, b.seed.Repo.ID)
	require.NoError(t, err)
	require.Equal(t, store.SyncSynced, repo.FluxSyncStatus)
	require.Equal(t, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", repo.LastSyncedRevision)
	require.Equal(t, time.Date(2026, 11, 26, 9, 14, 2, 0, time.UTC), repo.LastSyncedAt.UTC())

	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.GitRepositoryAuthFailed))
	repo, err = b.st.RepositoryByID(ctx, b.pool, b.seed.Repo.ID)
	require.NoError(t, err)
	require.Equal(t, store.SyncFailed, repo.FluxSyncStatus)
	require.Contains(t, repo.FluxSyncMessage, "authentication required")
	require.Equal(t, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", repo.LastSyncedRevision, "kept on failure")

	audit, err := b.st.ListAudit(ctx, b.pool, store.AuditFilter{TargetType: "GitRepository"})
	require.NoError(t, err)
	require.Len(t, audit, 2)
	require.Equal(t, "flux.GitOperationFailed", audit[0].Action)
	require.Equal(t, "flux", audit[0].ActorType)
	require.Equal(t, "source-controller", audit[0].ActorName)
	require.Equal(t, b.seed.Project.ID, *audit[0].ProjectID)
}

func TestHelmReleaseUpgradeRecorded(t *testing.T) {
	b := setup(t)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.HelmReleaseUpgradeSucceded))
	ds := b.deployments(t)
	require.Len(t, ds, 1)
	require.Equal(t, "6.7.1", ds[0].Revision)
	require.Equal(t, "", ds[0].CommitSHA)
	require.Equal(t, b.seed.HelmRelease.ID, *ds[0].GitopsResourceID)
	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.HelmReleaseUpgradeFailed))
	require.Len(t, b.deployments(t), 2)
	require.Equal(t, "failed", b.resource(t, b.seed.HelmRelease.ID).Status)
}

func TestUnknownObjectIsAudited(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationBuildFailed, map[string]any{"involvedObject.name": "stranger"}))
	audit, err := b.st.ListAudit(ctx, b.pool, store.AuditFilter{TargetID: "flux-system/stranger"})
	require.NoError(t, err)
	require.Len(t, audit, 1)
	require.Nil(t, audit[0].ProjectID)
	require.Empty(t, b.deployments(t))
	require.Equal(t, 1, b.count(t, "notifications"), "a failure is never silent, managed or not")
}
