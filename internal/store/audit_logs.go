package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actor types of audit rows.
const (
	ActorUser   = "user"
	ActorToken  = "token"
	ActorFlux   = "flux"
	ActorSystem = "system"
)

// AuditEntry is one row of audit_logs.
type AuditEntry struct {
	ID            int64           `db:"id" json:"id"`
	At            time.Time       `db:"at" json:"at"`
	ActorType     string          `db:"actor_type" json:"actor_type"`
	ActorID       *int64          `db:"actor_id" json:"actor_id"`
	ActorName     string          `db:"actor_name" json:"actor_name"`
	Action        string          `db:"action" json:"action"`
	TargetType    string          `db:"target_type" json:"target_type"`
	TargetID      string          `db:"target_id" json:"target_id"`
	ProjectID     *int64          `db:"project_id" json:"project_id"`
	EnvironmentID *int64          `db:"environment_id" json:"environment_id"`
	Cluster       string          `db:"cluster" json:"cluster"`
	RequestID     string          `db:"request_id" json:"request_id"`
	SourceIP      string          `db:"source_ip" json:"source_ip"`
	Message       string          `db:"message" json:"message"`
	Details       json.RawMessage `db:"details" json:"details"`
	// DedupKey names a fact more than one reporter can record (see InsertObservedAudit);
	// empty for the rest.
	DedupKey *string `db:"dedup_key" json:"-"`
}

// ObservedByWatch is the details key and value of an audit row the watch wrote for a fact
// an event would have reported.
const ObservedByWatch = "watch"

// InsertAudit appends an audit row; At defaults to now and Details to {}. A row with a
// DedupKey already taken is not inserted (id 0).
func (s *Store) InsertAudit(ctx context.Context, db DBTX, e AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if len(e.Details) == 0 {
		e.Details = json.RawMessage(`{}`)
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO audit_logs (at, actor_type, actor_id, actor_name, action, target_type, target_id,
			project_id, environment_id, cluster, request_id, source_ip, message, details, dedup_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
		RETURNING id`,
		e.At, e.ActorType, e.ActorID, e.ActorName, e.Action, e.TargetType, e.TargetID,
		e.ProjectID, e.EnvironmentID, e.Cluster, e.RequestID, e.SourceIP, e.Message, e.Details, e.DedupKey)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("insert audit log: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return ids[0], nil
}

// InsertEventAudit appends the audit row of a Flux event that reports the fact key names (a
// new artifact, revision or tag). When the watch saw that fact first and audited it, the
// event adds no second row: it confirms the watch's row, which takes the event's details
// (id 0). Any later event of the same fact (Flux reports a revision again) gets a row of its
// own, as every event does.
func (s *Store) InsertEventAudit(ctx context.Context, db DBTX, e AuditEntry, key string) (int64, error) {
	e.DedupKey = &key
	id, err := s.InsertAudit(ctx, db, e)
	if err != nil || id != 0 {
		return id, err
	}
	if len(e.Details) == 0 {
		e.Details = json.RawMessage(`{}`)
	}
	tag, err := db.Exec(ctx, `
		UPDATE audit_logs SET details = details || $2::jsonb || '{"confirmed_by_event": true}'::jsonb
		WHERE dedup_key = $1 AND details->>'observed_by' = $3 AND NOT details ? 'confirmed_by_event'`,
		key, e.Details, ObservedByWatch)
	if err != nil {
		return 0, fmt.Errorf("confirm audit log %q: %w", key, err)
	}
	if tag.RowsAffected() == 1 {
		return 0, nil
	}
	e.DedupKey = nil
	return s.InsertAudit(ctx, db, e)
}

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	ProjectID     int64
	EnvironmentID int64
	ActorType     string
	ActorName     string // the user's or system's name
	Action        string
	TargetType    string
	TargetID      string
	Cluster       string
	Since, Until  time.Time
	BeforeID      int64 // keyset paging: only rows with a smaller ID
	Limit         int
}

// ListAudit returns audit rows newest first, at most f.Limit (default 50).
func (s *Store) ListAudit(ctx context.Context, db DBTX, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM audit_logs
		WHERE ($1 = 0 OR project_id = $1) AND ($2 = 0 OR environment_id = $2)
		  AND ($3 = '' OR actor_type = $3) AND ($4 = '' OR action = $4)
		  AND ($5 = '' OR target_type = $5) AND ($6 = '' OR target_id = $6)
		  AND ($7 = '' OR cluster = $7)
		  AND ($8::timestamptz IS NULL OR at >= $8) AND ($9::timestamptz IS NULL OR at < $9)
		  AND ($10 = 0 OR id < $10) AND ($12 = '' OR actor_name = $12)
		ORDER BY id DESC LIMIT $11`,
		f.ProjectID, f.EnvironmentID, f.ActorType, f.Action, f.TargetType, f.TargetID, f.Cluster,
		since, until, f.BeforeID, f.Limit, f.ActorName)
	out, err := collectAll[AuditEntry](rows)
	if err != nil {
		return nil, fmt.Errorf("list audit logs: %w", err)
	}
	return out, nil
}
