package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderLockSpace is the first key of the per-cluster advisory lock; the second is
// hashtext(cluster name).
const leaderLockSpace = 0x666c7877 // "flxw"

// leaderCheckInterval is how often a leader checks that its lock connection is alive. A dead
// connection means Postgres has already released the lock to a standby, so the watch must stop.
const leaderCheckInterval = 5 * time.Second

// lease is the leadership of one cluster's watch: a session-level Postgres advisory lock held
// on a connection of its own. Postgres releases it the moment that session ends (crash,
// network loss, shutdown), and a standby blocked in pg_advisory_lock takes over at once;
// there is no lease to expire and no write to the watched clusters. Standbys wait inside the
// lock call, not in a polling loop.
type lease struct {
	conn *pgx.Conn
	done chan struct{} // closed when the checker of hold has stopped using conn
}

// acquireLeadership blocks until this process leads the watch of cluster, or ctx ends.
func acquireLeadership(ctx context.Context, cfg *pgx.ConnConfig, cluster string) (*lease, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for leader lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1::int, hashtext($2))`, leaderLockSpace, cluster); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take leader lock of cluster %s: %w", cluster, err)
	}
	return &lease{conn: conn, done: make(chan struct{})}, nil
}

// hold returns a context that is cancelled when ctx ends or the lock's session is lost.
func (l *lease) hold(ctx context.Context) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(l.done)
		t := time.NewTicker(leaderCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(lctx, leaderCheckInterval)
				err := l.conn.Ping(pctx)
				pcancel()
				if err != nil && lctx.Err() == nil {
					cancel()
					return
				}
			}
		}
	}()
	return lctx, cancel
}

// release gives leadership up by closing the session, once the context hold returned is
// cancelled.
func (l *lease) release(ctx context.Context) {
	<-l.done
	_ = l.conn.Close(context.WithoutCancel(ctx))
}
