package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// MarkResourceArgs asks the worker to make an imported object fluxbridge's: stamp its labels
// and annotations on it, leaving its spec as it is.
type MarkResourceArgs struct {
	ResourceID int64 `json:"resource_id"`
}

// Kind implements river.JobArgs.
func (MarkResourceArgs) Kind() string { return "mark_resource" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (MarkResourceArgs) InsertOpts() river.InsertOpts { return kubeInsertOpts() }

// MarkResourceWorker stamps fluxbridge's labels and annotations on an imported object by a
// server-side apply of just that metadata, and records the row's config (read off the object)
// as applied. From then on the object is managed like any other: its next change is applied,
// its events name its row.
type MarkResourceWorker struct {
	river.WorkerDefaults[MarkResourceArgs]
	kubeDeps
}

// Timeout bounds one run.
func (w *MarkResourceWorker) Timeout(*river.Job[MarkResourceArgs]) time.Duration {
	return 2 * kubeCallTimeout
}

// NextRetry implements river.Worker.
func (w *MarkResourceWorker) NextRetry(job *river.Job[MarkResourceArgs]) time.Time {
	return time.Now().Add(kubeBackoff(job.Attempt))
}

// Work implements river.Worker.
func (w *MarkResourceWorker) Work(ctx context.Context, job *river.Job[MarkResourceArgs]) error {
	db := w.Store.Pool()
	res, err := w.Store.ResourceByID(ctx, db, job.Args.ResourceID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if res.ImportedAt == nil || res.ApplyStatus == store.ApplyDeleting {
		return nil
	}
	cl, err := w.clusterOf(res)
	if err != nil {
		return err
	}
	t, _, err := w.target(ctx, db, res)
	if err != nil {
		return err
	}
	labels, annotations := t.Marks()
	kctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	if err := flux.Mark(kctx, cl.Client, refOf(res), labels, annotations); err != nil {
		_ = w.Store.RecordApplyError(ctx, db, res.ID, err.Error())
		return err
	}
	if err := w.Store.RecordApplied(ctx, db, res.ID, store.Applied{SpecVersion: res.SpecVersion, At: time.Now()}); err != nil {
		return fmt.Errorf("record import of resource %d: %w", res.ID, err)
	}
	return nil
}
