package jobs_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
)

// TestFeedPrune: the periodic job deletes change-feed rows older than the retention and keeps
// the recent ones.
func TestFeedPrune(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `INSERT INTO change_feed (at, kind, ref_id) VALUES
		(now() - interval '25 hours', 'deployment', 1), (now() - interval '1 hour', 'deployment', 2)`)
	require.NoError(t, err)
	w := &jobs.FeedPruneWorker{Store: b.st}
	require.NoError(t, w.Work(ctx, &river.Job[jobs.FeedPruneArgs]{JobRow: &rivertype.JobRow{}}))
	var old, recent int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE ref_id = 1 AND kind = 'deployment' AND at < now() - interval '24 hours'),
		count(*) FILTER (WHERE ref_id = 2 AND kind = 'deployment' AND at > now() - interval '2 hours') FROM change_feed`).Scan(&old, &recent))
	require.Equal(t, 0, old)
	require.Equal(t, 1, recent)
}
