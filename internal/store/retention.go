package store

import (
	"context"
	"fmt"
	"time"
)

// Retention is how long each growing table keeps its rows; 0 keeps them for ever.
type Retention struct {
	FluxEvents            time.Duration // processed webhook events (their audit rows stay)
	Notifications         time.Duration // in-app notifications, read or not
	ReconciliationHistory time.Duration // a resource's status transitions
	Audit                 time.Duration // the audit log: kept for ever unless configured
}

// pruneBatch bounds one DELETE, so that pruning never holds many row locks or a long
// transaction while webhooks write.
const pruneBatch = 5000

// pruneSQL deletes one batch older than $1 from each table; the WHERE clauses match the
// indexes of migrations/00011_retention.sql.
var pruneSQL = map[string]string{
	"flux_events": `DELETE FROM flux_events WHERE id IN (SELECT id FROM flux_events
		WHERE processed_at IS NOT NULL AND received_at < $1 ORDER BY received_at LIMIT $2)`,
	"notifications": `DELETE FROM notifications WHERE id IN (SELECT id FROM notifications
		WHERE created_at < $1 ORDER BY created_at LIMIT $2)`,
	"reconciliation_history": `DELETE FROM reconciliation_history WHERE id IN (SELECT id FROM reconciliation_history
		WHERE at < $1 ORDER BY at LIMIT $2)`,
	"audit_logs": `DELETE FROM audit_logs WHERE id IN (SELECT id FROM audit_logs
		WHERE at < $1 ORDER BY at LIMIT $2)`,
}

// Prune deletes the rows older than r says, batch by batch, and returns how many it deleted
// per table. An unprocessed webhook event is never deleted.
func (s *Store) Prune(ctx context.Context, r Retention, now time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	for table, keep := range map[string]time.Duration{
		"flux_events": r.FluxEvents, "notifications": r.Notifications,
		"reconciliation_history": r.ReconciliationHistory, "audit_logs": r.Audit,
	} {
		if keep <= 0 {
			continue
		}
		for {
			tag, err := s.pool.Exec(ctx, pruneSQL[table], now.Add(-keep), pruneBatch)
			if err != nil {
				return out, fmt.Errorf("prune %s: %w", table, err)
			}
			out[table] += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				break
			}
		}
	}
	return out, nil
}
