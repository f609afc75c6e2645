package feed_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
	"github.com/fluxbridge/fluxbridge/migrations"
)

// TestTriggersEmit: each table the console shows writes one feed row per change that matters,
// with the project and environment it belongs to, and none for a change that does not.
func TestTriggersEmit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	db := f.pool
	p, env := f.project(), f.seed.Env.ID
	ks := f.seed.Kustomization.ID
	var cur int64
	// expect reads what came since the last call and checks the kinds.
	expect := func(kinds ...string) []feed.Event {
		t.Helper()
		// Delivery waits for every older transaction of the whole Postgres cluster (tests of
		// other packages run beside this one), so wait for the rows before comparing.
		evs := readAll(t, db, cur, nil)
		for deadline := time.Now().Add(15 * time.Second); len(evs) < len(kinds) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			evs = readAll(t, db, cur, nil)
		}
		got := make([]string, len(evs))
		for i, ev := range evs {
			got[i] = ev.Kind
		}
		if kinds == nil {
			kinds = []string{}
		}
		require.Equal(t, kinds, got)
		if len(evs) > 0 {
			cur = evs[len(evs)-1].Seq
		}
		return evs
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := db.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}

	// gitops_resources: the seed created three.
	evs := expect("resource", "resource", "resource")
	require.Nil(t, evs[0].EnvironmentID, "a GitRepository is shared by the environments")
	require.Equal(t, env, *evs[1].EnvironmentID)
	for _, ev := range evs {
		require.Equal(t, p, *ev.ProjectID)
	}
	pl := payload(t, evs[1])
	require.Equal(t, "Kustomization", pl["kind"])
	require.Equal(t, "webapp-production", pl["name"])
	require.Equal(t, "unknown", pl["status"])
	require.Equal(t, "pending", pl["apply_status"])
	require.Equal(t, float64(ks), pl["id"])
	require.Equal(t, ks, evs[1].RefID)

	exec(`UPDATE gitops_resources SET observed_generation = 7, generation = 7 WHERE id = $1`, ks)
	expect() // not shown by the console
	exec(`UPDATE gitops_resources SET status = 'ready', status_reason = 'ReconciliationSucceeded' WHERE id = $1`, ks)
	evs = expect("resource")
	require.Equal(t, "ready", payload(t, evs[0])["status"])
	exec(`UPDATE gitops_resources SET conditions = '[{"type": "Ready", "status": "True"}]' WHERE id = $1`, ks)
	expect("resource")
	exec(`UPDATE gitops_resources SET status = 'ready' WHERE id = $1`, ks)
	expect() // no change

	// deployments
	dep := deploy(t, db, p, env, "web")
	evs = expect("deployment")
	require.Equal(t, dep, evs[0].RefID)
	require.Equal(t, env, *evs[0].EnvironmentID)
	pl = payload(t, evs[0])
	require.Equal(t, "pending", pl["status"])
	require.Equal(t, "web", pl["app"])
	require.Equal(t, "manual", pl["deployment_method"])
	require.Nil(t, pl["gitops_resource_id"])
	exec(`UPDATE deployments SET status = 'pushed', gitops_resource_id = $2, updated_at = now() WHERE id = $1`, dep, ks)
	evs = expect("deployment")
	require.Equal(t, "pushed", payload(t, evs[0])["status"])
	require.Equal(t, float64(ks), payload(t, evs[0])["gitops_resource_id"])
	exec(`UPDATE deployments SET app = app WHERE id = $1`, dep)
	expect()

	// reconcile_requests take project and environment from their resource.
	var rr int64
	require.NoError(t, db.QueryRow(ctx, `INSERT INTO reconcile_requests (resource_id, with_source) VALUES ($1, true) RETURNING id`, ks).Scan(&rr))
	evs = expect("reconcile")
	require.Equal(t, p, *evs[0].ProjectID)
	require.Equal(t, env, *evs[0].EnvironmentID)
	require.Equal(t, rr, evs[0].RefID)
	pl = payload(t, evs[0])
	require.Equal(t, float64(ks), pl["resource_id"])
	require.Equal(t, true, pl["with_source"])
	exec(`UPDATE reconcile_requests SET status = 'requested', token = 'tok' WHERE id = $1`, rr)
	evs = expect("reconcile")
	require.Equal(t, "requested", payload(t, evs[0])["status"])
	exec(`UPDATE reconcile_requests SET force = force WHERE id = $1`, rr)
	expect()

	// flux_events: the project of the object when one manages it.
	fluxEvent := func(name, reason string) {
		exec(`INSERT INTO flux_events (cluster, fingerprint, event_time, kind, namespace, name, severity,
			reason, message, reporting_controller)
			VALUES ($1, sha256(convert_to($2 || $3, 'UTF8')), now(), 'Kustomization', 'flux-system', $2, 'info', $3,
			'msg', 'kustomize-controller')`, storetest.Cluster, name, reason)
	}
	fluxEvent("webapp-production", "ReconciliationSucceeded")
	evs = expect("flux_event")
	require.Equal(t, p, *evs[0].ProjectID)
	require.Equal(t, env, *evs[0].EnvironmentID)
	pl = payload(t, evs[0])
	require.Equal(t, float64(ks), pl["resource_id"])
	require.Equal(t, "ReconciliationSucceeded", pl["reason"])
	require.Equal(t, "webapp-production", pl["name"])
	fluxEvent("nobody-manages-this", "Progressing")
	evs = expect("flux_event")
	require.Nil(t, evs[0].ProjectID)
	require.Nil(t, payload(t, evs[0])["resource_id"])

	// notifications
	n := notify(t, db, p, "Deployed")
	evs = expect("notification")
	require.Equal(t, n, evs[0].RefID)
	require.Equal(t, "Deployed", payload(t, evs[0])["title"])
	notify(t, db, 0, "Welcome")
	evs = expect("notification")
	require.Nil(t, evs[0].ProjectID)

	// approval_requests: creation and each change of state.
	var ar int64
	require.NoError(t, db.QueryRow(ctx, `INSERT INTO approval_requests (project_id, environment_id, action, target_type,
		target_id, summary, requested_by, required_approvals, job_kind, job_args)
		VALUES ($1, $2, 'deployment.create', 'deployment', $3, 'deploy web', $4, 2, 'commit_push', '{}') RETURNING id`,
		p, env, dep, f.seed.User.ID).Scan(&ar))
	evs = expect("approval")
	pl = payload(t, evs[0])
	require.Equal(t, "pending", pl["state"])
	require.Equal(t, float64(2), pl["required_approvals"])
	exec(`UPDATE approval_requests SET reason = 'looking' WHERE id = $1`, ar)
	expect()
	exec(`UPDATE approval_requests SET state = 'rejected', decided_at = now() WHERE id = $1`, ar)
	evs = expect("approval")
	require.Equal(t, "rejected", payload(t, evs[0])["state"])

	// Deleting a resource sets its deployments' gitops_resource_id to NULL: an update.
	exec(`DELETE FROM gitops_resources WHERE id = $1`, ks)
	evs = expect("deployment")
	require.Nil(t, payload(t, evs[0])["gitops_resource_id"])

	// Deleting a project takes its feed rows along, whatever its cascades update on the way.
	deploy(t, db, p, env, "api")
	exec(`UPDATE deployments SET gitops_resource_id = $1 WHERE project_id = $2`, f.seed.HelmRelease.ID, p)
	exec(`DELETE FROM projects WHERE id = $1`, p)
	var left int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM change_feed WHERE project_id = $1`, p).Scan(&left))
	require.Zero(t, left)
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM change_feed WHERE project_id IS NULL`).Scan(&left))
	require.Equal(t, 2, left)
}

// TestReadHoldsBackOpenTransaction: an event of a transaction left open while a later one
// commits is not skipped; Read returns nothing past it until it commits, then both in order.
func TestReadHoldsBackOpenTransaction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)

	tx1, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx1.Rollback(ctx) }()
	n1 := notify(t, tx1, 0, "first")
	n2 := notify(t, f.pool, 0, "second") // commits
	require.Empty(t, readAll(t, f.pool, start, nil), "the open transaction holds its successor back")
	latest, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	require.Equal(t, start, latest)

	require.NoError(t, tx1.Commit(ctx))
	evs := readWait(t, f.pool, start, 2)
	require.Len(t, evs, 2)
	require.Less(t, evs[0].Seq, evs[1].Seq)
	require.Equal(t, []int64{n1, n2}, []int64{evs[0].RefID, evs[1].RefID})
}

// TestReadHoldsBackEarlierTransactionID is the case "xid < xmin" alone gets wrong: the
// transaction that commits first got its transaction ID first (by an earlier write), so its xid
// is below the xmin held by the open one, yet its feed row has the greater seq.
func TestReadHoldsBackEarlierTransactionID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)

	txB, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = txB.Rollback(ctx) }()
	_, err = txB.Exec(ctx, `UPDATE gitops_resources SET observed_generation = 3 WHERE id = $1`, f.seed.HelmRelease.ID)
	require.NoError(t, err) // B has a transaction ID now, and no feed row
	txA, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = txA.Rollback(ctx) }()
	nA := notify(t, txA, 0, "A") // A: later xid, smaller seq
	nB := notify(t, txB, 0, "B")
	var xidA, xidB string
	require.NoError(t, txA.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xidA))
	require.NoError(t, txB.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xidB))
	var bFirst bool
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT $1::xid8 < $2::xid8`, xidB, xidA).Scan(&bFirst))
	require.True(t, bFirst)
	require.NoError(t, txB.Commit(ctx))

	var naive int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM change_feed
		WHERE seq > $1 AND xid < pg_snapshot_xmin(pg_current_snapshot())`, start).Scan(&naive))
	require.Equal(t, 1, naive, "xid < xmin would deliver B's row and skip A's for good")
	require.Empty(t, readAll(t, f.pool, start, nil))

	require.NoError(t, txA.Commit(ctx))
	evs := readWait(t, f.pool, start, 2)
	require.Len(t, evs, 2)
	require.Equal(t, []int64{nA, nB}, []int64{evs[0].RefID, evs[1].RefID})
}

// TestRolledBackDoesNotStall: a rolled-back transaction leaves a hole in seq, not a stall.
func TestRolledBackDoesNotStall(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	tx, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	notify(t, tx, 0, "gone")
	require.NoError(t, tx.Rollback(ctx))
	n := notify(t, f.pool, 0, "kept")
	evs := readWait(t, f.pool, start, 1)
	require.Len(t, evs, 1)
	require.Equal(t, n, evs[0].RefID)
}

func TestReadByProjectAndBatches(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	for i := range 5 {
		deploy(t, f.pool, f.project(), f.seed.Env.ID, "a")
		if i%2 == 0 {
			deploy(t, f.pool, f.other, f.otherEnv, "b")
		}
	}
	p := f.project()
	readWait(t, f.pool, start, 8) // every write delivered, before reading in batches
	var got []feed.Event
	for after := start; ; {
		evs, err := feed.Read(ctx, f.pool, after, &p, 2)
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		got = append(got, evs...)
		after = evs[len(evs)-1].Seq
	}
	require.Len(t, got, 5)
	for i, ev := range got {
		require.Equal(t, p, *ev.ProjectID)
		if i > 0 {
			require.Less(t, got[i-1].Seq, ev.Seq)
		}
	}
	require.Len(t, readWait(t, f.pool, start, 8), 8)
}

func TestLatestAndPrune(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 3 {
		notify(t, f.pool, 0, "n")
	}
	latest, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	all := readAll(t, f.pool, 0, nil)
	require.Equal(t, all[len(all)-1].Seq, latest)

	_, err = f.pool.Exec(ctx, `UPDATE change_feed SET at = now() - interval '2 days'`)
	require.NoError(t, err)
	n, err := feed.Prune(ctx, f.pool, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(len(all)), n)
	after, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	require.Equal(t, latest, after, "the watermark does not fall back")
	n, err = feed.Prune(ctx, f.pool, 24*time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestMigrationDownUp: the Down sections of the feed's migrations (00008, 00009, 00010), newest
// first, remove everything their Ups made, and the Ups apply again after them.
func TestMigrationDownUp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var ups, downs []string
	for _, name := range []string{"00008_change_feed.sql", "00009_vote_feed.sql", "00010_notification_reads.sql"} {
		b, err := fs.ReadFile(migrations.FS(), name)
		require.NoError(t, err)
		up, down, ok := strings.Cut(string(b), "-- +goose Down")
		require.True(t, ok)
		ups, downs = append(ups, up), append([]string{down}, downs...)
	}

	tx, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	objects := func() int {
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_class WHERE relname LIKE 'change_feed%') +
			(SELECT count(*) FROM pg_proc WHERE proname LIKE 'feed\_%') +
			(SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%\_feed\_%')`).Scan(&n))
		return n
	}
	before := objects()
	require.Equal(t, 7+10+12, before, "two tables, sequence, keys and indexes; ten functions; twelve triggers")
	for _, down := range downs {
		_, err = tx.Exec(ctx, down)
		require.NoError(t, err)
	}
	require.Zero(t, objects())
	for _, up := range ups {
		_, err = tx.Exec(ctx, up)
		require.NoError(t, err)
	}
	require.Equal(t, before, objects())
	notify(t, tx, 0, "again")
	var n int
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM change_feed`).Scan(&n))
	require.Equal(t, 1, n)
}
