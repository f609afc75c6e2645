package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
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

// TestRetentionPrune: the retention job deletes processed webhook events, notifications and
// history rows past their retention, in batches, and keeps recent rows, an unprocessed event
// however old, and the audit log when no audit retention is set.
func TestRetentionPrune(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	k := b.seed.Kustomization.ID
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO flux_events (cluster, fingerprint, event_time, kind, namespace, name, severity, reason, message,
			reporting_controller, received_at, processed_at)
		SELECT 'prod-eu', sha256(i::text::bytea), now(), 'Kustomization', 'flux-system', 'x', 'info', 'R', 'm', 'kc',
			CASE WHEN i <= 6000 THEN now() - interval '40 days' ELSE now() END,
			CASE WHEN i = 1 THEN NULL ELSE now() END
		FROM generate_series(1, 6010) i`, nil},
		{`INSERT INTO notifications (project_id, severity, title, created_at)
		VALUES ($1, 'info', 'old', now() - interval '100 days'), ($1, 'info', 'new', now())`, []any{b.seed.Project.ID}},
		{`INSERT INTO reconciliation_history (resource_id, at, source, status)
		VALUES ($1, now() - interval '100 days', 'watch', 'ready'), ($1, now(), 'watch', 'ready')`, []any{k}},
		{`INSERT INTO audit_logs (at, actor_type, actor_name, action, target_type, target_id, message)
		VALUES (now() - interval '10 years', 'system', 'fluxbridge', 'test.old', 'x', '1', 'old')`, nil},
	} {
		_, err := b.pool.Exec(ctx, q.sql, q.args...)
		require.NoError(t, err)
	}
	audits := b.count(t, "audit_logs")

	w := &jobs.RetentionWorker{Store: b.st, Retention: store.Retention{
		FluxEvents: 30 * 24 * time.Hour, Notifications: 90 * 24 * time.Hour, ReconciliationHistory: 90 * 24 * time.Hour}}
	require.NoError(t, w.Work(ctx, &river.Job[jobs.RetentionArgs]{JobRow: &rivertype.JobRow{}}))

	var left, unprocessed int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL) FROM flux_events`).Scan(&left, &unprocessed))
	require.Equal(t, 11, left, "the 10 recent ones and the unprocessed old one (5,999 deleted over two batches)")
	require.Equal(t, 1, unprocessed)
	var titles []string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT array_agg(title) FROM notifications`).Scan(&titles))
	require.Equal(t, []string{"new"}, titles)
	var oldHistory int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM reconciliation_history WHERE at < now() - interval '90 days'`).Scan(&oldHistory))
	require.Zero(t, oldHistory)
	require.Equal(t, audits, b.count(t, "audit_logs"), "the audit log is kept unless configured")

	w.Retention.Audit = 365 * 24 * time.Hour
	require.NoError(t, w.Work(ctx, &river.Job[jobs.RetentionArgs]{JobRow: &rivertype.JobRow{}}))
	require.Equal(t, audits-1, b.count(t, "audit_logs"))
}
