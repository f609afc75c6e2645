package feed_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/feed"
)

// TestTwoHubs: two receivers on one database each deliver every event to their subscribers.
func TestTwoHubs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other, err := pgxpool.New(ctx, f.pool.Config().ConnString())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	h1, h2 := startHub(t, f.pool), startHub(t, other)
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	s1 := h1.Subscribe(start, nil, 0)
	defer s1.Close()
	s2 := h2.Subscribe(start, nil, 0)
	defer s2.Close()

	dep := deploy(t, f.pool, f.project(), f.seed.Env.ID, "web")
	e1, e2 := next(t, s1), next(t, s2)
	require.Equal(t, e1.Seq, e2.Seq)
	require.Equal(t, "deployment", e1.Kind)
	require.Equal(t, dep, e2.RefID)
	require.JSONEq(t, string(e1.Payload), string(e2.Payload))

	// A write through the other receiver's pool reaches both as well.
	n := notify(t, other, 0, "hi")
	require.Equal(t, n, next(t, s1).RefID)
	require.Equal(t, n, next(t, s2).RefID)
}

// TestSubscribeBeforeHubStarts: a subscription made before the hub first connects misses
// nothing after its start.
func TestSubscribeBeforeHubStarts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	h := feed.NewHub(f.pool, testLog(t))
	sub := h.Subscribe(start, nil, 0)
	defer sub.Close()
	n := notify(t, f.pool, 0, "early")
	runHub(t, h)
	require.Equal(t, n, next(t, sub).RefID)
}

// TestHubLaggedSubscriber: a subscriber that does not read is dropped, the others go on.
func TestHubLaggedSubscriber(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := startHub(t, f.pool)
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	slow := h.Subscribe(start, nil, 2)
	fast := h.Subscribe(start, nil, 0)
	defer fast.Close()
	for i := range 5 {
		n := notify(t, f.pool, 0, "n")
		require.Equal(t, n, next(t, fast).RefID, "event %d", i)
	}
	var got int
	for range slow.C {
		got++
	}
	require.Equal(t, 2, got, "the buffer, then closed")
	require.True(t, slow.Lagged())
	require.False(t, fast.Lagged())
	slow.Close() // no-op, no panic
	require.Equal(t, 1, h.Subscribers())
}

// TestHubReconnects: the hub's connection is killed; it reconnects and delivers what was
// written meanwhile.
func TestHubReconnects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := startHub(t, f.pool)
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	sub := h.Subscribe(start, nil, 0)
	defer sub.Close()
	n1 := notify(t, f.pool, 0, "before")
	require.Equal(t, n1, next(t, sub).RefID)

	var killed int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'fluxbridge-feed'`).Scan(&killed))
	require.Equal(t, 1, killed)
	n2 := notify(t, f.pool, 0, "while down")
	n3 := notify(t, f.pool, 0, "after")
	require.Equal(t, n2, next(t, sub).RefID)
	require.Equal(t, n3, next(t, sub).RefID)
	none(t, sub, 300*time.Millisecond)
}

// TestConcurrentWritersNoGap: writers that take their transaction IDs early, write feed rows
// late, sleep in between and sometimes roll back; the subscriber gets every committed row once,
// in seq order.
func TestConcurrentWritersNoGap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := startHub(t, f.pool)
	start, err := feed.Latest(ctx, f.pool)
	require.NoError(t, err)
	sub := h.Subscribe(start, nil, 4096)
	defer sub.Close()

	const writers, txs = 6, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range txs {
				tx, err := f.pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if r.IntN(2) == 0 { // a transaction ID long before the feed row
					_, err = tx.Exec(ctx, `UPDATE gitops_resources SET observed_generation = observed_generation + 1 WHERE id = $1`,
						f.seed.GitRepository.ID)
					if err != nil {
						t.Error(err)
						_ = tx.Rollback(ctx)
						return
					}
				}
				time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
				for range 1 + r.IntN(3) {
					if _, err := tx.Exec(ctx, `INSERT INTO notifications (severity, title) VALUES ('info', 'w')`); err != nil {
						t.Error(err)
					}
					time.Sleep(time.Duration(r.IntN(1000)) * time.Microsecond)
				}
				if r.IntN(10) == 0 {
					_ = tx.Rollback(ctx)
				} else if err := tx.Commit(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()

	var want []int64
	rows, err := f.pool.Query(ctx, `SELECT seq FROM change_feed WHERE seq > $1 ORDER BY seq`, start)
	require.NoError(t, err)
	for rows.Next() {
		var s int64
		require.NoError(t, rows.Scan(&s))
		want = append(want, s)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, want)
	var got []int64
	for len(got) < len(want) {
		got = append(got, next(t, sub).Seq)
	}
	require.Equal(t, want, got)
	none(t, sub, 300*time.Millisecond)
}
