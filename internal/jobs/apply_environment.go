package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ApplyEnvironmentArgs asks the worker to re-apply every resource of an environment, after a
// change of its GitOps settings (sync policy, branch, path) that shapes their objects.
type ApplyEnvironmentArgs struct {
	EnvironmentID int64 `json:"environment_id"`
}

// Kind implements river.JobArgs.
func (ApplyEnvironmentArgs) Kind() string { return "apply_environment" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ApplyEnvironmentArgs) InsertOpts() river.InsertOpts { return kubeInsertOpts() }

// ApplyEnvironmentWorker marks each resource of the environment as needing an apply and
// enqueues the applies, in one transaction.
type ApplyEnvironmentWorker struct {
	river.WorkerDefaults[ApplyEnvironmentArgs]
	kubeDeps
}

// Work implements river.Worker.
func (w *ApplyEnvironmentWorker) Work(ctx context.Context, job *river.Job[ApplyEnvironmentArgs]) error {
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		env, err := w.Store.EnvironmentByID(ctx, tx, job.Args.EnvironmentID)
		if errors.Is(err, store.ErrNotFound) {
			return river.JobCancel(err)
		}
		if err != nil {
			return err
		}
		list, err := w.Store.AllResources(ctx, tx, store.ResourceFilter{ProjectID: env.ProjectID, EnvironmentID: env.ID})
		if err != nil {
			return err
		}
		var ids []int64
		for _, r := range list {
			if r.ApplyStatus == store.ApplyDeleting || !r.Approved {
				continue // being deleted, or not approved yet: nothing of it may reach the cluster
			}
			if err := w.Store.BumpSpecVersion(ctx, tx, r.ID); err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return EnqueueApplyTx(ctx, rc, tx, ids...)
	})
}

// ReapplyIfSettingsChangedTx enqueues an apply_environment job in tx when an environment's
// GitOps settings that shape its objects (sync policy, branch, path) differ between before and
// after; access settings and other keys change no object.
func ReapplyIfSettingsChangedTx(ctx context.Context, rc *river.Client[pgx.Tx], tx pgx.Tx, before, after *store.Environment) error {
	b, errB := fluxspec.ParseEnvSettings(before.GitopsConfig)
	a, errA := fluxspec.ParseEnvSettings(after.GitopsConfig)
	if errA == nil && errB == nil && a == b {
		return nil
	}
	if _, err := rc.InsertTx(ctx, tx, ApplyEnvironmentArgs{EnvironmentID: after.ID}, nil); err != nil {
		return fmt.Errorf("enqueue apply of environment %s: %w", after.Name, err)
	}
	return nil
}
