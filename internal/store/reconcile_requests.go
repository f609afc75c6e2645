package store

import (
	"context"
	"fmt"
	"time"
)

// Reconcile request statuses. Pending, source_requested and requested are open; the others are
// final.
const (
	ReconcilePending         = "pending"
	ReconcileSourceRequested = "source_requested"
	ReconcileRequested       = "requested"
	ReconcileSucceeded       = "succeeded"
	ReconcileFailed          = "failed"
	ReconcileTimedOut        = "timed_out"
	ReconcileSuspended       = "suspended"
	ReconcileCancelled       = "cancelled"
)

// ReconcileRequest is one row of reconcile_requests: a manual reconcile and its progress.
type ReconcileRequest struct {
	ID              int64      `db:"id" json:"id"`
	ResourceID      int64      `db:"resource_id" json:"resource_id"`
	WithSource      bool       `db:"with_source" json:"with_source"`
	Force           bool       `db:"force" json:"force"`
	Reset           bool       `db:"reset" json:"reset"`
	Status          string     `db:"status" json:"status"`
	SourceToken     string     `db:"source_token" json:"source_token"`
	Token           string     `db:"token" json:"token"`
	Resumed         bool       `db:"resumed" json:"resumed"`
	Message         string     `db:"message" json:"message"`
	Revision        string     `db:"revision" json:"revision"`
	RequestedBy     *int64     `db:"requested_by" json:"requested_by"`
	RequestedByName string     `db:"requested_by_name" json:"requested_by_name"`
	CreatedAt       time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt       time.Time  `db:"updated_at" json:"updated_at"`
	FinishedAt      *time.Time `db:"finished_at" json:"finished_at"`
}

// Open tells whether the request still waits for its job.
func (r *ReconcileRequest) Open() bool {
	switch r.Status {
	case ReconcilePending, ReconcileSourceRequested, ReconcileRequested:
		return true
	}
	return false
}

// CreateReconcileRequest inserts a pending reconcile request.
func (s *Store) CreateReconcileRequest(ctx context.Context, db DBTX, r ReconcileRequest) (*ReconcileRequest, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO reconcile_requests (resource_id, with_source, force, reset, requested_by, requested_by_name)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
		r.ResourceID, r.WithSource, r.Force, r.Reset, r.RequestedBy, r.RequestedByName)
	out, err := collectOne[ReconcileRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("insert reconcile request: %w", err)
	}
	return out, nil
}

// LockReconcileRequest returns a reconcile request and locks its row until the transaction ends.
func (s *Store) LockReconcileRequest(ctx context.Context, db DBTX, id int64) (*ReconcileRequest, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM reconcile_requests WHERE id = $1 FOR UPDATE`, id)
	out, err := collectOne[ReconcileRequest](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("reconcile request %d", id))
	}
	return out, nil
}

// ReconcileRequestByID returns one reconcile request.
func (s *Store) ReconcileRequestByID(ctx context.Context, db DBTX, id int64) (*ReconcileRequest, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM reconcile_requests WHERE id = $1`, id)
	out, err := collectOne[ReconcileRequest](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("reconcile request %d", id))
	}
	return out, nil
}

// SaveReconcileRequest writes the progress fields of r (status, tokens, resumed, message,
// revision); a final status also sets finished_at.
func (s *Store) SaveReconcileRequest(ctx context.Context, db DBTX, r *ReconcileRequest) error {
	rows, _ := db.Query(ctx, `
		UPDATE reconcile_requests SET status = $2, source_token = $3, token = $4, resumed = $5,
			message = $6, revision = $7, updated_at = now(),
			finished_at = CASE WHEN $2 IN ('pending', 'source_requested', 'requested') THEN NULL ELSE now() END
		WHERE id = $1 RETURNING *`,
		r.ID, r.Status, r.SourceToken, r.Token, r.Resumed, r.Message, r.Revision)
	out, err := collectOne[ReconcileRequest](rows)
	if err != nil {
		return notFound(err, fmt.Sprintf("reconcile request %d", r.ID))
	}
	*r = *out
	return nil
}

// ListReconcileRequests returns a resource's reconcile requests newest first: at most limit
// (DefaultLimit when 0) with an ID below before (0: from the newest).
func (s *Store) ListReconcileRequests(ctx context.Context, db DBTX, resourceID, before int64, limit int) ([]ReconcileRequest, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM reconcile_requests WHERE resource_id = $1 AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, resourceID, before, limitOr(limit))
	out, err := collectAll[ReconcileRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("list reconcile requests: %w", err)
	}
	return out, nil
}

// LatestReconcileRequests returns the newest reconcile request of each of the given resources
// that has one, keyed by resource ID: at most one row per ID given (a page of resources).
func (s *Store) LatestReconcileRequests(ctx context.Context, db DBTX, resourceIDs []int64) (map[int64]ReconcileRequest, error) {
	rows, _ := db.Query(ctx, `
		SELECT DISTINCT ON (q.resource_id) q.* FROM reconcile_requests q
		WHERE q.resource_id = ANY($1)
		ORDER BY q.resource_id, q.id DESC LIMIT cardinality($1::bigint[])`, resourceIDs)
	all, err := collectAll[ReconcileRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("list latest reconcile requests: %w", err)
	}
	out := make(map[int64]ReconcileRequest, len(all))
	for _, r := range all {
		out[r.ResourceID] = r
	}
	return out, nil
}
