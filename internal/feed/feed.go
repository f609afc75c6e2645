// Package feed is the change feed behind the web console's live updates: rows that triggers
// append to change_feed (migrations/00008_change_feed.sql) whenever a deployment, a Flux
// resource, a reconcile request, a Flux event, a notification or an approval request changes,
// read in order and without gaps, fanned out by a Hub on each receiver replica and served to
// browsers as Server-Sent Events (ServeSSE).
//
// Delivery is at-least-once per stream and in seq order: a browser reconnects with the seq of
// the last event it saw (Last-Event-ID) and gets everything after it from the database, on any
// replica.
//
// A receiver runs one Hub for the process and serves streams from it:
//
//	hub := feed.NewHub(pool, log)
//	go func() { _ = hub.Run(ctx) }() // until shutdown; it reconnects by itself
//	...
//	// GET …/events, after authentication; allow is the per-event authorization.
//	err := feed.ServeSSE(w, r, hub, pool, &projectID, allow)
//
// Old rows go with Prune, from a periodic job.
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Channel is the Postgres notification channel the feed triggers notify.
const Channel = "fluxbridge_feed"

// DefaultBatch is the number of rows a Read returns when its caller passes no limit.
const DefaultBatch = 500

// Event is one row of change_feed.
type Event struct {
	// Seq orders the feed and is the SSE event ID.
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// ProjectID is nil for rows of no project: a Flux event of an object no project manages,
	// a notification addressed to a user only.
	ProjectID     *int64 `json:"project_id"`
	EnvironmentID *int64 `json:"environment_id"`
	// Kind is deployment, resource, reconcile, flux_event, notification or approval; RefID is
	// the id of the row in that table.
	Kind  string `json:"kind"`
	RefID int64  `json:"ref_id"`
	// Payload holds the columns of the row the console shows. Events are shared between the
	// subscribers of a Hub: never modify it.
	Payload json.RawMessage `json:"payload"`
}

// Querier is what Read and Latest need: *pgxpool.Pool, *pgx.Conn and pgx.Tx provide it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Execer is what Prune needs.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Why Read does not simply return "seq > after":
//
// An identity value is taken when a row is inserted, not when its transaction commits, so seq
// order is not commit order. Transaction 1 may insert seq 5 and stay open while transaction 2
// inserts seq 6 and commits; a reader that delivered 6 and moved its cursor there would never
// deliver 5. Holding back the rows of transactions still running (row xid >= the snapshot's
// xmin) is not enough either: transaction 2 may have got its transaction ID (by an earlier
// write) before transaction 1 did, so its xid is below the xmin transaction 1 holds down while
// its seq is above transaction 1's.
//
// So readers deliver only below a mark: a row of change_feed_marks, made by feed_mark in a fresh
// transaction that takes a seq from the same sequence first and its transaction ID after.
// Every transaction holding a smaller seq got its ID before taking that seq (feed_emit makes
// sure), so before the mark's; once the mark's xid is below the xmin of a reader's snapshot,
// all of them have ended and their rows are visible to it, and no row below the mark can ever
// appear again. Read delivers the rows below the newest such mark. A transaction that writes and
// stays open therefore delays (never loses) the events written after it got its ID; ones that
// roll back leave holes in seq, not stalls.
const (
	mark      = `SELECT feed_mark()`
	watermark = `(SELECT coalesce(max(seq), 0) FROM change_feed_marks
		WHERE xid < (SELECT pg_snapshot_xmin(pg_current_snapshot())))`
	readCols = `SELECT seq, at, project_id, environment_id, kind, ref_id, payload FROM change_feed`
	readAll  = readCols + ` WHERE seq > $1 AND seq < ` + watermark + ` ORDER BY seq LIMIT $2`
	readProj = readCols + ` WHERE project_id = $3 AND seq > $1 AND seq < ` + watermark + ` ORDER BY seq LIMIT $2`
	latest   = `SELECT greatest(` + watermark + ` - 1, 0)`
)

// Mark makes a new mark when rows were written since the newest one, so that the next read can
// deliver them (Read and Latest call it). It does nothing inside a transaction that has written.
func Mark(ctx context.Context, db Querier) error {
	rows, err := db.Query(ctx, mark)
	if err != nil {
		return fmt.Errorf("mark change feed: %w", err)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("mark change feed: %w", err)
	}
	return nil
}

// Read returns, in seq order, at most limit events after seq after (of project *projectID, or
// of all projects when it is nil) that are safe to deliver: no event with a smaller seq can
// commit later. A caller that moves its cursor to the last event returned and reads again never
// skips one. limit <= 0 means DefaultBatch.
//
// It marks the feed first (Mark), so on a pool it returns what committed before it was called
// unless a transaction that got its ID earlier is still open. Inside a transaction that has
// written it cannot mark and returns only what older marks allow.
func Read(ctx context.Context, db Querier, after int64, projectID *int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = DefaultBatch
	}
	if err := Mark(ctx, db); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if projectID == nil {
		rows, err = db.Query(ctx, readAll, after, limit)
	} else {
		rows, err = db.Query(ctx, readProj, after, limit, *projectID)
	}
	if err != nil {
		return nil, fmt.Errorf("read change feed: %w", err)
	}
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		var ev Event
		if err := rows.Scan(&ev.Seq, &ev.At, &ev.ProjectID, &ev.EnvironmentID, &ev.Kind, &ev.RefID, &ev.Payload); err != nil {
			return nil, fmt.Errorf("read change feed: %w", err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read change feed: %w", err)
	}
	return evs, nil
}

// Latest returns the feed's current watermark: every event up to it can be read, any event
// written later (or still in flight) has a greater seq. A subscriber with no Last-Event-ID starts
// from it. A page that loads its data and then opens a stream should take Latest before loading
// and pass it as last_event_id, so that nothing committed in between is missed.
func Latest(ctx context.Context, db Querier) (int64, error) {
	if err := Mark(ctx, db); err != nil {
		return 0, err
	}
	rows, err := db.Query(ctx, latest)
	if err != nil {
		return 0, fmt.Errorf("change feed watermark: %w", err)
	}
	seq, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("change feed watermark: %w", err)
	}
	return seq, nil
}

// Prune deletes the events older than olderThan and returns how many went. A stream that
// reconnects with an ID older than the retention misses the pruned events.
func Prune(ctx context.Context, db Execer, olderThan time.Duration) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM change_feed WHERE at < now() - make_interval(secs => $1)`,
		olderThan.Seconds())
	if err != nil {
		return 0, fmt.Errorf("prune change feed: %w", err)
	}
	return tag.RowsAffected(), nil
}
