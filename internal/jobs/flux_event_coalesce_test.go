package jobs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// TestWaitingEventsOfABusyObjectProcessedTogether: the job of one event of a managed object
// also processes the object's other waiting events at the same revision, in its transaction,
// (at any revision while no UI deployment of it is open) and leaves the same state as working
// each event's job one by one; the others' jobs then do nothing, and an event of another
// object is left to its own job. While a UI deployment is open, only events at the same
// commit are taken: the ancestry answers that settle it were fetched for that commit alone.
func TestWaitingEventsOfABusyObjectProcessedTogether(t *testing.T) {
	bodies := [][]byte{
		fluxeventtest.Edit(t, fluxeventtest.KustomizationBuildFailed, map[string]any{"timestamp": "2026-11-26T09:13:04Z", "metadata.revision": "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f"}),
		fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded),
		fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T09:24:04Z", "message": "Reconciliation finished in 700ms"}),
		fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T09:34:04Z", "metadata.revision": "main@sha1:1111111111111111111111111111111111111111"}),
		fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.name": "not-managed"}),
	}
	// What the events leave when each job runs alone, in order.
	alone := setup(t)
	for _, body := range bodies {
		alone.deliver(t, body)
	}

	pool := storetest.NewDB(t)
	st := store.New(pool)
	b := &testBundle{pool: pool, st: st, seed: storetest.Seed(t, st, pool), worker: &jobs.FluxEventWorker{Store: st}}
	ids := make([]int64, len(bodies))
	for i, body := range bodies {
		ids[i] = b.insertEvent(t, body)
	}
	unprocessed := func() []int64 {
		rows, err := b.pool.Query(context.Background(), `SELECT id FROM flux_events WHERE processed_at IS NULL ORDER BY id`)
		require.NoError(t, err)
		var out []int64
		for rows.Next() {
			var id int64
			require.NoError(t, rows.Scan(&id))
			out = append(out, id)
		}
		require.NoError(t, rows.Err())
		return out
	}
	b.work(t, ids[1])
	require.Equal(t, []int64{ids[4]}, unprocessed(), "the object's events were processed with it")
	for _, id := range ids {
		b.work(t, id)
	}
	require.Empty(t, unprocessed())

	for _, table := range []string{"audit_logs", "deployments", "reconciliation_history", "notifications"} {
		require.Equal(t, alone.count(t, table), b.count(t, table), table)
	}
	got, want := b.resource(t, b.seed.Kustomization.ID), alone.resource(t, alone.seed.Kustomization.ID)
	require.Equal(t, want.Status, got.Status)
	require.Equal(t, want.StatusMessage, got.StatusMessage)
	require.Equal(t, want.LastAppliedRevision, got.LastAppliedRevision)

	// A UI deployment in flight: the event at another commit waits for its own job.
	ctx := context.Background()
	_, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{
		ProjectID: b.seed.Project.ID, EnvironmentID: b.seed.Env.ID, GitopsResourceID: &b.seed.Kustomization.ID,
		Method: store.MethodGitopsUI, Status: store.DeployPushed, CommitSHA: "2222222222222222222222222222222222222222",
	})
	require.NoError(t, err)
	same := b.insertEvent(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T10:00:04Z", "metadata.revision": "main@sha1:3333333333333333333333333333333333333333"}))
	other := b.insertEvent(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T10:01:04Z", "metadata.revision": "main@sha1:4444444444444444444444444444444444444444"}))
	again := b.insertEvent(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "2026-11-26T10:02:04Z", "metadata.revision": "main@sha1:3333333333333333333333333333333333333333"}))
	b.work(t, same)
	require.Equal(t, []int64{other}, unprocessed(), "only the event at the same commit was taken")
	b.work(t, other)
	b.work(t, again)
	require.Empty(t, unprocessed())
}
