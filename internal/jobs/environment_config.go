package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/audit"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// EnvironmentConfigArgs applies an approved change to an environment's gitops_config. It
// carries the change itself, a JSON merge patch, because the change exists nowhere else while
// it waits for approval; gitops_config holds settings, never secrets.
type EnvironmentConfigArgs struct {
	EnvironmentID int64           `json:"environment_id"`
	Patch         json.RawMessage `json:"patch"`
}

// Kind implements river.JobArgs.
func (EnvironmentConfigArgs) Kind() string { return "environment_config" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (EnvironmentConfigArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 5} }

// EnvironmentConfigWorker merges the patch into the environment's current gitops_config, under
// a row lock, and audits the before/after with the approvers. A patch whose result is no longer
// valid is cancelled, not retried.
type EnvironmentConfigWorker struct {
	river.WorkerDefaults[EnvironmentConfigArgs]
	Store *store.Store
}

// Timeout bounds one run; it is a few queries.
func (w *EnvironmentConfigWorker) Timeout(*river.Job[EnvironmentConfigArgs]) time.Duration {
	return 30 * time.Second
}

// Work implements river.Worker.
func (w *EnvironmentConfigWorker) Work(ctx context.Context, job *river.Job[EnvironmentConfigArgs]) error {
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		env, err := w.Store.LockEnvironment(ctx, tx, job.Args.EnvironmentID)
		if errors.Is(err, store.ErrNotFound) {
			return river.JobCancel(err)
		}
		if err != nil {
			return err
		}
		merged, err := policy.MergeConfig(env.GitopsConfig, job.Args.Patch)
		if err == nil {
			_, err = policy.ParseEnvConfig(merged)
		}
		if err != nil {
			return river.JobCancel(fmt.Errorf("environment %d: approved change no longer applies: %w", env.ID, err))
		}
		after, err := w.Store.SetEnvironmentConfig(ctx, tx, env.ID, merged)
		if err != nil {
			return err
		}
		if rc, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
			if err := ReapplyIfSettingsChangedTx(ctx, rc, tx, env, after); err != nil {
				return err
			}
		}
		votes, err := approval.New(w.Store, nil).ApprovedByJob(ctx, tx, job.ID)
		if err != nil {
			return err
		}
		details, err := audit.Details(env.GitopsConfig, after.GitopsConfig, map[string]any{
			"job_id": job.ID, "approved_by": approverNames(votes),
		})
		if err != nil {
			return err
		}
		_, err = w.Store.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "fluxbridge", Action: "environment.update_applied",
			TargetType: "environment", TargetID: fmt.Sprint(env.ID), ProjectID: &env.ProjectID, EnvironmentID: &env.ID,
			Cluster: env.Cluster, Message: "approved gitops_config change applied to environment " + env.Name, Details: details,
		})
		return err
	})
}
