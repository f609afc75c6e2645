package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// History sources: where an observation of a resource came from.
const (
	HistoryWatch     = "watch"
	HistoryWebhook   = "webhook"
	HistoryReconcile = "reconcile"
)

// ObjectDetails is what the watch reads from a live Flux object beyond the status columns
// ApplyResourceStatus sets.
type ObjectDetails struct {
	Generation             int64
	ObservedGeneration     int64
	Conditions             json.RawMessage // the object's status.conditions, as Flux wrote them
	LastHandledReconcileAt string
	LastReconcileAt        *time.Time // nil keeps the stored one
	NextReconcileAt        *time.Time
	ChartName              string
	ChartVersion           string
	HelmHistory            json.RawMessage // HelmRelease status.history; nil keeps the stored one
}

// ApplyObjectDetails stores the details of an observation. Call it in the transaction in which
// ApplyResourceStatus accepted the same observation, so that details never regress either.
func (s *Store) ApplyObjectDetails(ctx context.Context, db DBTX, id int64, d ObjectDetails) error {
	conds := d.Conditions
	if len(conds) == 0 || string(conds) == "null" {
		conds = json.RawMessage(`[]`)
	}
	var history any // a NULL parameter keeps the column
	if len(d.HelmHistory) > 0 && string(d.HelmHistory) != "null" {
		history = d.HelmHistory
	}
	_, err := db.Exec(ctx, `
		UPDATE gitops_resources SET
			generation = $2, observed_generation = $3, conditions = $4,
			last_handled_reconcile_at = $5,
			last_reconcile_at = COALESCE($6, last_reconcile_at),
			next_reconcile_at = $7,
			chart_name = $8, chart_version = $9,
			helm_history = COALESCE($10::jsonb, helm_history),
			updated_at = now()
		WHERE id = $1`,
		id, d.Generation, d.ObservedGeneration, conds, d.LastHandledReconcileAt,
		d.LastReconcileAt, d.NextReconcileAt, d.ChartName, d.ChartVersion, history)
	if err != nil {
		return fmt.Errorf("update details of gitops resource %d: %w", id, err)
	}
	return nil
}

// HistoryEntry is one row of reconciliation_history.
type HistoryEntry struct {
	ID         int64     `db:"id" json:"id"`
	ResourceID int64     `db:"resource_id" json:"resource_id"`
	At         time.Time `db:"at" json:"at"`
	Source     string    `db:"source" json:"source"`
	Status     string    `db:"status" json:"status"`
	Reason     string    `db:"reason" json:"reason"`
	Message    string    `db:"message" json:"message"`
	Revision   string    `db:"revision" json:"revision"`
}

// AppendHistory adds an entry to a resource's reconciliation history unless it repeats the
// latest one (same status, reason and revision), so a redelivered event or a resync of the
// watch adds nothing. It reports whether it added a row.
func (s *Store) AppendHistory(ctx context.Context, db DBTX, e HistoryEntry) (bool, error) {
	tag, err := db.Exec(ctx, `
		INSERT INTO reconciliation_history (resource_id, at, source, status, reason, message, revision)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE NOT EXISTS (
			SELECT 1 FROM (SELECT status, reason, revision FROM reconciliation_history
				WHERE resource_id = $1 ORDER BY id DESC LIMIT 1) last
			WHERE last.status = $4 AND last.reason = $5 AND last.revision = $7)`,
		e.ResourceID, e.At, e.Source, e.Status, e.Reason, e.Message, e.Revision)
	if err != nil {
		return false, fmt.Errorf("append history of gitops resource %d: %w", e.ResourceID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListHistory returns a resource's history newest first, at most limit rows (default 50).
func (s *Store) ListHistory(ctx context.Context, db DBTX, resourceID int64, beforeID int64, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM reconciliation_history WHERE resource_id = $1 AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, resourceID, beforeID, limit)
	out, err := collectAll[HistoryEntry](rows)
	if err != nil {
		return nil, fmt.Errorf("list history of gitops resource %d: %w", resourceID, err)
	}
	return out, nil
}
