package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// RetentionInterval is how often the worker prunes the growing tables.
const RetentionInterval = time.Hour

// RetentionArgs asks the worker to delete rows past their retention.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "retention_prune" }

// RetentionWorker prunes flux_events, notifications, reconciliation history (and the audit
// log when configured) by age, in bounded batches.
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	Store     *store.Store
	Retention store.Retention
}

// Timeout implements river.Worker: a large backlog is pruned over several runs.
func (w *RetentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration { return 5 * time.Minute }

// Work implements river.Worker.
func (w *RetentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	n, err := w.Store.Prune(ctx, w.Retention, time.Now())
	ev := zerolog.Ctx(ctx).Info()
	for table, c := range n {
		ev = ev.Int64(table, c)
	}
	ev.Msg("pruned rows past their retention")
	return err
}
