-- +goose Up
-- The retention job deletes by age in batches; these keep each batch an index range scan.
-- Not CONCURRENTLY: both processes migrate on start, and a concurrent build waits for the
-- other's open transaction, which waits for the migration lock this one holds.
CREATE INDEX flux_events_received_idx ON flux_events (received_at) WHERE processed_at IS NOT NULL;
CREATE INDEX notifications_created_idx ON notifications (created_at);
CREATE INDEX reconciliation_history_at_idx ON reconciliation_history (at);

-- +goose Down
DROP INDEX reconciliation_history_at_idx;
DROP INDEX notifications_created_idx;
DROP INDEX flux_events_received_idx;
