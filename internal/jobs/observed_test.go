package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
)

// TestEventAfterWatchAuditsOnce: an applied revision the watch audited first gets no second
// audit row from its event; an event that reports a revision again (a re-reconcile) is still
// audited, as every event is; a new revision is the event's alone.
func TestEventAfterWatchAuditsOnce(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const rev = "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f"
	ks := b.seed.Kustomization
	require.NoError(t, b.st.WithTx(ctx, func(tx pgx.Tx) error {
		return jobs.AuditObserved(ctx, tx, b.st, ks, fluxevent.Fact{Action: "flux.ReconciliationSucceeded", Revision: rev}, "Applied revision: "+rev, time.Now())
	}))
	rows := func(r string) int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE action = 'flux.ReconciliationSucceeded' AND details->>'revision' = $1`, r).Scan(&n))
		return n
	}
	require.Equal(t, 1, rows(rev))

	b.deliver(t, fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))
	require.Equal(t, 1, rows(rev), "the watch's row stands for the event")
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"timestamp": "2026-11-26T09:24:04Z", "message": "Reconciliation finished in 700ms, next run in 10m0s"}))
	require.Equal(t, 2, rows(rev), "a second report of the revision is an event of its own")

	const rev2 = "main@sha1:1111111111111111111111111111111111111111"
	b.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"timestamp": "2026-11-26T09:34:04Z", "metadata.revision": rev2}))
	require.Equal(t, 1, rows(rev2))
	// The watch seeing it after adds nothing.
	require.NoError(t, b.st.WithTx(ctx, func(tx pgx.Tx) error {
		return jobs.AuditObserved(ctx, tx, b.st, ks, fluxevent.Fact{Action: "flux.ReconciliationSucceeded", Revision: rev2}, "", time.Now())
	}))
	require.Equal(t, 1, rows(rev2))

}
