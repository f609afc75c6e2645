package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// autoRollbackSetup seeds, in an environment with autoRollback and gitops_config extra, a
// successful console deploy of web and a second one pushed at commit bad, and returns both.
func autoRollbackSetup(t *testing.T, b *approvalBundle, extra string) (good, pushed *store.Deployment) {
	t.Helper()
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `UPDATE environments SET gitops_config = gitops_config || $2::jsonb WHERE id = $1`,
		b.seed.Env.ID, `{"autoRollback": true`+extra+`}`)
	require.NoError(t, err)
	mk := func(status, sha string) *store.Deployment {
		d, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID,
			GitopsResourceID: &b.seed.Kustomization.ID, Method: store.MethodGitopsUI, Status: status, App: "web",
			CommitSHA: sha, RequestedBy: &b.requester.ID, Message: "deploy web"})
		require.NoError(t, err)
		_, err = b.st.CreateDeploymentSpec(ctx, b.pool, store.DeploymentSpec{DeploymentID: d.ID, RepositoryID: b.seed.Repo.ID,
			Branch: "main", Path: "clusters/production/web", Namespace: "web", Kind: "microservice", Form: json.RawMessage(`{}`)})
		require.NoError(t, err)
		_, err = b.pool.Exec(ctx, `UPDATE deployment_specs SET pushed_at = now() WHERE deployment_id = $1`, d.ID)
		require.NoError(t, err)
		return d
	}
	return mk(store.DeploySucceeded, strings.Repeat("a", 40)), mk(store.DeployPushed, "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f")
}

// failAndRollBack delivers kustomize-controller's failure of the pushed commit (the event job
// inserting with rc, as a River job does) and works the automatic rollback job it enqueued.
func failAndRollBack(t *testing.T, b *approvalBundle, rc *river.Client[pgx.Tx]) *store.Deployment {
	t.Helper()
	ctx := jobs.WithInserter(context.Background(), rc)
	deliverFailure(t, b, ctx, "2026-11-26T09:20:00Z")
	row := b.releasedJob(t, "auto_rollback")
	var args jobs.AutoRollbackArgs
	require.NoError(t, json.Unmarshal(row.EncodedArgs, &args))
	w := &jobs.AutoRollbackWorker{Store: b.st, River: rc}
	require.NoError(t, w.Work(ctx, &river.Job[jobs.AutoRollbackArgs]{JobRow: row, Args: args}))
	var rb *store.Deployment
	for _, d := range b.deployments(t) {
		if d.Trigger == store.TriggerAutoRollback {
			require.Nil(t, rb, "one automatic rollback")
			rb = &d
		}
	}
	require.NotNil(t, rb)
	return rb
}

// deliverFailure stores and works kustomize-controller's health check failure of the pushed
// commit, dated at.
func deliverFailure(t *testing.T, b *approvalBundle, ctx context.Context, at string) {
	t.Helper()
	id := b.insertEvent(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"severity": "error", "reason": "HealthCheckFailed", "timestamp": at,
		"message": "timeout waiting for: [Deployment/web/web status: 'InProgress']"}))
	job := &river.Job[jobs.FluxEventArgs]{JobRow: &rivertype.JobRow{ID: id, Attempt: 1, Kind: "flux_event"}, Args: jobs.FluxEventArgs{EventID: id}}
	require.NoError(t, b.worker.Work(ctx, job))
}

func insertClient(t *testing.T, b *approvalBundle) *river.Client[pgx.Tx] {
	t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	return rc
}

// TestAutoRollbackHeldForApprovals: in a production environment (two approvals), the
// automatic rollback of a failed deploy is a proposal held for approval in the name of the
// failed deploy's requester; nothing is pushed until then.
func TestAutoRollbackHeldForApprovals(t *testing.T) {
	b := setupApprovals(t)
	ctx := context.Background()
	good, pushed := autoRollbackSetup(t, b, "")
	rb := failAndRollBack(t, b, insertClient(t, b))

	require.Equal(t, store.DeployAwaitingApproval, rb.Status)
	require.Equal(t, fmt.Sprint(pushed.ID), rb.TriggerRef)
	failed, err := b.st.DeploymentByID(ctx, b.pool, pushed.ID)
	require.NoError(t, err)
	require.Equal(t, store.DeployFailed, failed.Status)
	r, err := b.st.RollbackByDeployment(ctx, b.pool, rb.ID)
	require.NoError(t, err)
	require.Equal(t, good.ID, *r.TargetDeploymentID)
	require.Equal(t, good.CommitSHA, r.TargetCommit)
	require.Equal(t, "clusters/production/web", r.Path)

	var requester int64
	var required int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT requested_by, required_approvals FROM approval_requests
		WHERE target_type = 'deployment' AND target_id = $1 AND state = 'pending'`, rb.ID).Scan(&requester, &required))
	require.Equal(t, b.requester.ID, requester)
	require.Equal(t, 2, required)
	require.Equal(t, 0, b.count(t, `river_job WHERE kind = 'rollback'`), "nothing runs before the approvals")
	require.Len(t, b.auditOf(t, "deployment.auto_rollback"), 1)
	require.Equal(t, 1, b.count(t, `notifications WHERE title LIKE 'web in production failed: a rollback to deployment % awaits approval'`))
}

// TestAutoRollbackRunsWithoutApprovals: where no approval is required the rollback job is
// enqueued at once; a second report of the failure adds nothing.
func TestAutoRollbackRunsWithoutApprovals(t *testing.T) {
	b := setupApprovals(t)
	autoRollbackSetup(t, b, `, "requiredApprovals": 0`)
	rc := insertClient(t, b)
	rb := failAndRollBack(t, b, rc)
	require.Equal(t, store.DeployPending, rb.Status)
	require.Equal(t, 1, b.count(t, `river_job WHERE kind = 'rollback'`))
	require.Equal(t, 1, b.count(t, `notifications WHERE title LIKE 'web in production failed: rolling back to deployment %'`))

	deliverFailure(t, b, jobs.WithInserter(context.Background(), rc), "2026-11-26T09:21:00Z")
	require.Equal(t, 1, b.count(t, `river_job WHERE kind = 'auto_rollback'`))
}

// TestNoAutoRollbackWhenOff: without autoRollback a failed deploy stays failed.
func TestNoAutoRollbackWhenOff(t *testing.T) {
	b := setupApprovals(t)
	autoRollbackSetup(t, b, `, "autoRollback": false`)
	deliverFailure(t, b, jobs.WithInserter(context.Background(), insertClient(t, b)), "2026-11-26T09:20:00Z")
	require.Equal(t, 0, b.count(t, `river_job WHERE kind = 'auto_rollback'`))
}
