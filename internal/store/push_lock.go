package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pushLockSpace is the high half of every push lock's key, so push locks never collide with
// other advisory locks (migrations use 0x666c7578_6d696772).
const pushLockSpace int64 = 0x66627075 << 32 // "fbpu"

// unlockTimeout bounds the unlock, which runs even after the caller's context is done.
const unlockTimeout = 10 * time.Second

// PushLocks serialises pushes to one repository across every worker process with a Postgres
// advisory lock per repository. Each held or awaited lock occupies a connection of a pool of
// its own, so workers queueing for a busy repository never starve the application's pool of
// the connections the lock holder needs to record its push.
type PushLocks struct {
	pool *pgxpool.Pool
}

// NewPushLocks opens a pool of at most maxConns connections (one per concurrent pusher) with
// the settings of app.
func NewPushLocks(ctx context.Context, app *pgxpool.Pool, maxConns int32) (*PushLocks, error) {
	cfg := app.Config().Copy()
	cfg.MaxConns, cfg.MinConns = max(maxConns, 1), 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open push lock pool: %w", err)
	}
	return &PushLocks{pool: pool}, nil
}

// Close closes the pool; locks still held are released as their connections close.
func (l *PushLocks) Close() { l.pool.Close() }

// Lock waits until no other holder has repositoryID's lock, takes it, and returns the function
// that releases it. It gives up when ctx ends. The lock is tied to its connection: if the
// process dies, Postgres releases it.
func (l *PushLocks) Lock(ctx context.Context, repositoryID int64) (unlock func(), err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection for push lock: %w", err)
	}
	key := pushLockSpace | repositoryID&0xffffffff
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		// The lock may have been granted just as ctx ended: never return a connection that
		// might hold it to the pool.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
		return nil, fmt.Errorf("wait for push lock of repository %d: %w", repositoryID, err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			_ = conn.Conn().Close(uctx) // closing the session releases the lock
		}
		conn.Release()
	}, nil
}
