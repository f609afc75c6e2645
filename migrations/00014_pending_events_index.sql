-- +goose Up
-- The event job takes a busy object's other waiting events (store.LockPendingFluxEventsOf):
-- without this index that read scans every unprocessed event, or every event of the object,
-- so a backlog slows its own draining. With it, the read costs what it returns.
-- Not CONCURRENTLY: both processes migrate on start (see 00011).
CREATE INDEX flux_events_pending_object_idx ON flux_events (cluster, kind, namespace, name, id) WHERE processed_at IS NULL;

-- +goose Down
DROP INDEX flux_events_pending_object_idx;
