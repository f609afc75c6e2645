-- +goose NO TRANSACTION
-- +goose Up
-- The retention job deletes by age in batches; these keep each batch an index range scan.
-- Built CONCURRENTLY: on a large install, webhooks keep writing while they build.
CREATE INDEX CONCURRENTLY IF NOT EXISTS flux_events_received_idx ON flux_events (received_at) WHERE processed_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_created_idx ON notifications (created_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS reconciliation_history_at_idx ON reconciliation_history (at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS reconciliation_history_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS notifications_created_idx;
DROP INDEX CONCURRENTLY IF EXISTS flux_events_received_idx;
