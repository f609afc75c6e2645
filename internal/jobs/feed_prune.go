package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// FeedRetention is how long change-feed rows are kept: a page (or an API client) away longer
// than this resumes its event stream after a gap and reloads what it shows.
const FeedRetention = 24 * time.Hour

// FeedPruneInterval is how often the worker prunes the change feed.
const FeedPruneInterval = time.Hour

// FeedPruneArgs asks the worker to delete change-feed rows older than FeedRetention.
type FeedPruneArgs struct{}

// Kind implements river.JobArgs.
func (FeedPruneArgs) Kind() string { return "feed_prune" }

// FeedPruneWorker prunes the change feed.
type FeedPruneWorker struct {
	river.WorkerDefaults[FeedPruneArgs]
	Store *store.Store
}

// Work implements river.Worker.
func (w *FeedPruneWorker) Work(ctx context.Context, _ *river.Job[FeedPruneArgs]) error {
	_, err := feed.Prune(ctx, w.Store.Pool(), FeedRetention)
	return err
}
