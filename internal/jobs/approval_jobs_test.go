package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// approvalBundle is the seeded platform plus three maintainers and an approval service with an
// insert-only River client, as the receiver has.
type approvalBundle struct {
	*testBundle
	svc                   *approval.Service
	requester, ann, bruno *store.User
}

func setupApprovals(t *testing.T) *approvalBundle {
	b := setup(t)
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	ab := &approvalBundle{testBundle: b, svc: approval.New(b.st, rc)}
	ctx := context.Background()
	for _, u := range []struct {
		dst  **store.User
		name string
	}{{&ab.requester, "rita"}, {&ab.ann, "ann"}, {&ab.bruno, "bruno"}} {
		*u.dst, err = b.st.CreateUser(ctx, b.pool, store.User{Username: u.name, DisplayName: "User " + u.name, Email: u.name + "@example.com"})
		require.NoError(t, err)
		require.NoError(t, b.st.AddMember(ctx, b.pool, b.seed.Project.ID, (*u.dst).ID, "maintainer"))
	}
	return ab
}

// tx runs fn in a committed transaction.
func (b *approvalBundle) tx(t *testing.T, fn func(tx pgx.Tx) error) {
	t.Helper()
	require.NoError(t, b.st.WithTx(context.Background(), fn))
}

// releasedJob returns the one job of kind in river_job.
func (b *approvalBundle) releasedJob(t *testing.T, kind string) *rivertype.JobRow {
	t.Helper()
	var row rivertype.JobRow
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT id, args, kind, attempt FROM river_job WHERE kind = $1`, kind).Scan(&row.ID, &row.EncodedArgs, &row.Kind, &row.Attempt))
	return &row
}

func (b *approvalBundle) auditOf(t *testing.T, action string) []store.AuditEntry {
	t.Helper()
	rows, err := b.st.ListAudit(context.Background(), b.pool, store.AuditFilter{Action: action})
	require.NoError(t, err)
	return rows
}

func TestManualDeployRunsAfterTwoApprovals(t *testing.T) {
	b := setupApprovals(t)
	ctx := context.Background()
	var d *store.Deployment
	var req *store.ApprovalRequest
	b.tx(t, func(tx pgx.Tx) error {
		var err error
		d, err = b.st.CreateDeployment(ctx, tx, store.NewDeployment{ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID,
			Method: store.MethodManual, Status: store.DeployAwaitingApproval, App: "web", Revision: "v1.2.3", RequestedBy: &b.requester.ID})
		require.NoError(t, err)
		sub, err := b.svc.Submit(ctx, tx, approval.Submission{ProjectID: b.seed.Project.ID, EnvironmentID: &b.seed.Env.ID,
			Action: "deployment.create", TargetType: approval.TargetDeployment, TargetID: d.ID, RequestedBy: b.requester.ID,
			Required: 2, TTL: time.Hour, Args: jobs.ManualDeployArgs{DeploymentID: d.ID}})
		req = sub.Request
		return err
	})
	require.NotNil(t, req)

	for i, u := range []*store.User{b.ann, b.bruno} {
		b.tx(t, func(tx pgx.Tx) error {
			out, err := b.svc.Approve(ctx, tx, b.seed.Project.ID, req.ID, approval.Voter{UserID: u.ID}, "lgtm")
			require.NoError(t, err)
			require.Equal(t, i == 1, out.Released)
			return nil
		})
	}
	row := b.releasedJob(t, "manual_deploy")
	var args jobs.ManualDeployArgs
	require.NoError(t, json.Unmarshal(row.EncodedArgs, &args))
	require.Equal(t, d.ID, args.DeploymentID)

	after, err := b.st.DeploymentByID(ctx, b.pool, d.ID)
	require.NoError(t, err)
	require.Equal(t, store.DeployPending, after.Status, "approved: the deployment may run")

	w := &jobs.ManualDeployWorker{Store: b.st}
	job := &river.Job[jobs.ManualDeployArgs]{JobRow: row, Args: args}
	require.NoError(t, w.Work(ctx, job))
	require.NoError(t, w.Work(ctx, job), "a second delivery changes nothing")

	after, err = b.st.DeploymentByID(ctx, b.pool, d.ID)
	require.NoError(t, err)
	require.Equal(t, store.DeploySucceeded, after.Status)
	require.NotNil(t, after.FinishedAt)
	rows := b.auditOf(t, "deployment.succeeded")
	require.Len(t, rows, 1)
	var details struct {
		ApprovedBy []string `json:"approved_by"`
	}
	require.NoError(t, json.Unmarshal(rows[0].Details, &details))
	require.Equal(t, []string{"User ann <ann@example.com>", "User bruno <bruno@example.com>"}, details.ApprovedBy)

	votes, err := b.svc.ApprovedBy(ctx, b.pool, approval.TargetDeployment, d.ID)
	require.NoError(t, err)
	require.Len(t, votes, 2)
}

func TestEnvironmentConfigAppliesTheApprovedPatch(t *testing.T) {
	b := setupApprovals(t)
	ctx := context.Background()
	_, err := b.st.SetEnvironmentConfig(ctx, b.pool, b.seed.Env.ID, json.RawMessage(`{"branch": "main", "path": "./prod"}`))
	require.NoError(t, err)
	w := &jobs.EnvironmentConfigWorker{Store: b.st}
	work := func(patch string) error {
		args := jobs.EnvironmentConfigArgs{EnvironmentID: b.seed.Env.ID, Patch: json.RawMessage(patch)}
		return w.Work(ctx, &river.Job[jobs.EnvironmentConfigArgs]{JobRow: &rivertype.JobRow{ID: 99, Kind: args.Kind()}, Args: args})
	}

	require.NoError(t, work(`{"path": "./clusters/prod", "requiredApprovals": 3}`))
	env, err := b.st.EnvironmentByID(ctx, b.pool, b.seed.Env.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"branch": "main", "path": "./clusters/prod", "requiredApprovals": 3}`, string(env.GitopsConfig))
	rows := b.auditOf(t, "environment.update_applied")
	require.Len(t, rows, 1)
	require.JSONEq(t, `{"job_id": 99, "approved_by": [],
		"before": {"path": "./prod"}, "after": {"path": "./clusters/prod", "requiredApprovals": 3}}`, string(rows[0].Details))

	err = work(`{"requiredApprovals": 99}`)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel, "a patch that no longer validates is not retried")
}

func TestApprovalExpiry(t *testing.T) {
	b := setupApprovals(t)
	ctx := context.Background()
	var d *store.Deployment
	var req *store.ApprovalRequest
	b.tx(t, func(tx pgx.Tx) error {
		var err error
		d, err = b.st.CreateDeployment(ctx, tx, store.NewDeployment{ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID,
			Method: store.MethodManual, Status: store.DeployAwaitingApproval, App: "web", Revision: "v2"})
		require.NoError(t, err)
		sub, err := b.svc.Submit(ctx, tx, approval.Submission{ProjectID: b.seed.Project.ID, EnvironmentID: &b.seed.Env.ID,
			Action: "deployment.create", TargetType: approval.TargetDeployment, TargetID: d.ID, RequestedBy: b.requester.ID,
			Required: 2, TTL: time.Hour, Args: jobs.ManualDeployArgs{DeploymentID: d.ID}})
		req = sub.Request
		return err
	})
	_, err := b.pool.Exec(ctx, `UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, req.ID)
	require.NoError(t, err)

	got, err := b.st.ApprovalRequestByID(ctx, b.pool, req.ID)
	require.NoError(t, err)
	require.Equal(t, store.ApprovalExpired, got.State, "overdue reads as expired before the job runs")
	err = b.st.WithTx(ctx, func(tx pgx.Tx) error {
		_, err := b.svc.Approve(ctx, tx, b.seed.Project.ID, req.ID, approval.Voter{UserID: b.ann.ID}, "")
		return err
	})
	require.ErrorIs(t, err, approval.ErrNotPending)

	w := &jobs.ApprovalExpiryWorker{Store: b.st}
	require.NoError(t, w.Work(ctx, &river.Job[jobs.ApprovalExpiryArgs]{JobRow: &rivertype.JobRow{}}))
	require.NoError(t, w.Work(ctx, &river.Job[jobs.ApprovalExpiryArgs]{JobRow: &rivertype.JobRow{}}))
	after, err := b.st.DeploymentByID(ctx, b.pool, d.ID)
	require.NoError(t, err)
	require.Equal(t, store.DeployCancelled, after.Status)
	require.Len(t, b.auditOf(t, "approval.expire"), 1, "expired once, audited once")
	var jobsN int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'manual_deploy'`).Scan(&jobsN))
	require.Zero(t, jobsN)
}
