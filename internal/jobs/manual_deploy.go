package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/audit"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ManualDeployArgs carries out a manual deployment (deployments.id) once it may run: at once,
// or when its approval request is approved.
type ManualDeployArgs struct {
	DeploymentID int64 `json:"deployment_id"`
}

// Kind implements river.JobArgs.
func (ManualDeployArgs) Kind() string { return "manual_deploy" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ManualDeployArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ManualDeployWorker records a manual deployment as done. A manual deployment is carried out by
// people outside fluxbridge; what fluxbridge owns is the record, and, in an environment that
// requires approvals, the guarantee that it was approved before it counted. A deployment that is
// no longer pending (cancelled, or already recorded by an earlier attempt) is left alone.
type ManualDeployWorker struct {
	river.WorkerDefaults[ManualDeployArgs]
	Store *store.Store
}

// Timeout bounds one run; it is a few queries.
func (w *ManualDeployWorker) Timeout(*river.Job[ManualDeployArgs]) time.Duration {
	return 30 * time.Second
}

// Work implements river.Worker.
func (w *ManualDeployWorker) Work(ctx context.Context, job *river.Job[ManualDeployArgs]) error {
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		d, err := w.Store.LockDeployment(ctx, tx, job.Args.DeploymentID)
		if errors.Is(err, store.ErrNotFound) {
			return river.JobCancel(err)
		}
		if err != nil {
			return err
		}
		if d.Status != store.DeployPending {
			return nil
		}
		if _, err := w.Store.MoveDeployment(ctx, tx, d.ID, store.DeployPending, store.DeploySucceeded); err != nil {
			return err
		}
		env, err := w.Store.EnvironmentByID(ctx, tx, d.EnvironmentID)
		if err != nil {
			return err
		}
		votes, err := approval.New(w.Store, nil).ApprovedByJob(ctx, tx, job.ID)
		if err != nil {
			return err
		}
		details, err := audit.Details(nil, nil, map[string]any{
			"job_id": job.ID, "method": d.DeploymentMethod, "app": d.App, "revision": d.Revision,
			"approved_by": approverNames(votes),
		})
		if err != nil {
			return err
		}
		_, err = w.Store.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "fluxbridge", Action: "deployment." + store.DeploySucceeded,
			TargetType: "deployment", TargetID: fmt.Sprint(d.ID), ProjectID: &d.ProjectID, EnvironmentID: &d.EnvironmentID,
			Cluster: env.Cluster, Message: fmt.Sprintf("manual deployment of %s at %s recorded", d.App, d.Revision), Details: details,
		})
		return err
	})
}

// approverNames returns "Display Name <email>" (or the username) of each approve vote, the form
// of an Approved-By trailer.
func approverNames(votes []store.Vote) []string {
	out := make([]string, 0, len(votes))
	for _, v := range votes {
		name := v.Username
		if v.DisplayName != "" {
			name = v.DisplayName
		}
		if v.Email != "" {
			name += " <" + v.Email + ">"
		}
		out = append(out, name)
	}
	return out
}
