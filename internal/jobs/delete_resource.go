package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// terminatingTimeout is how long the delete job waits for Flux's finalizers before giving up
// (the row stays "deleting", with the reason, and a new DELETE tries again).
const terminatingTimeout = 10 * time.Minute

// DeleteResourceArgs asks the worker to delete a resource's object and then its row.
type DeleteResourceArgs struct {
	ResourceID int64 `json:"resource_id"`
}

// Kind implements river.JobArgs.
func (DeleteResourceArgs) Kind() string { return "delete_resource" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (DeleteResourceArgs) InsertOpts() river.InsertOpts { return kubeInsertOpts() }

// DeleteResourceWorker marks a resource deleting (the API already did, unless the delete
// waited for approvals), deletes its object, waits (snoozing) until Flux's finalizers let it
// go, deletes the credential Secret fluxbridge wrote for it, and then deletes the row.
type DeleteResourceWorker struct {
	river.WorkerDefaults[DeleteResourceArgs]
	kubeDeps
}

// Timeout bounds one attempt.
func (w *DeleteResourceWorker) Timeout(*river.Job[DeleteResourceArgs]) time.Duration {
	return 2 * kubeCallTimeout
}

// NextRetry implements river.Worker.
func (w *DeleteResourceWorker) NextRetry(job *river.Job[DeleteResourceArgs]) time.Time {
	return time.Now().Add(kubeBackoff(job.Attempt))
}

// Work implements river.Worker.
func (w *DeleteResourceWorker) Work(ctx context.Context, job *river.Job[DeleteResourceArgs]) error {
	res, err := w.Store.ResourceByID(ctx, w.Store.Pool(), job.Args.ResourceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // already deleted
	}
	if err != nil {
		return err
	}
	if res.ApplyStatus != store.ApplyDeleting {
		// A delete that waited for approvals: the row is marked when the job runs.
		if _, err := w.Store.MarkResourceDeleting(ctx, w.Store.Pool(), res.ID); err != nil {
			return err
		}
	}
	if w.Clusters != nil && w.Clusters.Known(res.Cluster) {
		cl, err := w.clusterOf(res)
		if err != nil {
			return err
		}
		kctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
		defer cancel()
		// An object of that name that fluxbridge does not own (it never applied over it) is
		// not deleted: only the row goes.
		if err := flux.CheckOwned(kctx, cl.Client, refOf(res), fmt.Sprint(res.ID)); flux.IsForeign(err) {
			w.Metrics.Refused("foreign_object")
			return w.deleteRow(ctx, res, fmt.Sprintf("%s %s/%s removed from fluxbridge; the object in cluster %s was left alone: %v",
				res.Kind, res.Namespace, res.Name, res.Cluster, err))
		} else if err != nil {
			_ = w.Store.RecordApplyError(ctx, w.Store.Pool(), res.ID, err.Error())
			return err
		}
		gone, err := flux.Delete(kctx, cl.Client, refOf(res))
		if err != nil {
			_ = w.Store.RecordApplyError(ctx, w.Store.Pool(), res.ID, err.Error())
			return err
		}
		if !gone {
			if time.Since(job.CreatedAt) > terminatingTimeout {
				msg := fmt.Sprintf("%s still terminating after %s: Flux's finalizer did not run (is its controller up?)", refOf(res), terminatingTimeout)
				_ = w.Store.RecordApplyError(ctx, w.Store.Pool(), res.ID, msg)
				return river.JobCancel(errors.New(msg))
			}
			return river.JobSnooze(w.Poll)
		}
		if err := w.deleteGitSecret(kctx, cl.Client, res); err != nil {
			return err
		}
	}
	return w.deleteRow(ctx, res, fmt.Sprintf("%s %s/%s deleted from cluster %s", res.Kind, res.Namespace, res.Name, res.Cluster))
}

// deleteRow deletes the resource's row with its audit row, and rewires the cluster's alerting.
func (w *DeleteResourceWorker) deleteRow(ctx context.Context, res *store.Resource, msg string) error {
	err := w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		if err := auditSystem(ctx, w.Store, tx, res, "resource.deleted", msg, nil); err != nil {
			return err
		}
		return w.Store.DeleteResource(ctx, tx, res.ID)
	})
	if err == nil {
		w.rewire(ctx, res.Cluster) // its Alert no longer covers it
	}
	return err
}

// deleteGitSecret deletes the credential Secret the apply job wrote for a GitRepository, but
// only one fluxbridge wrote for this very resource.
func (w *DeleteResourceWorker) deleteGitSecret(ctx context.Context, c client.Client, res *store.Resource) error {
	if res.Kind != fluxspec.KindGitRepository {
		return nil
	}
	spec, err := fluxspec.Decode(res.Kind, res.Config)
	if err != nil {
		return nil // nothing we can name
	}
	name := spec.(*fluxspec.GitRepositoryConfig).SecretRef
	if name == "" {
		name = fluxspec.AuthSecretName(res.Name)
	}
	return flux.DeleteOwnedSecret(ctx, c, res.Namespace, name, fmt.Sprint(res.ID))
}
