-- Read state per user for the in-app notifications, and audit rows in the change feed.
--
-- A notification with no user_id addresses every member of its project, so its read state
-- cannot live on the row: each user has a watermark (everything up to it is read, "mark all
-- read") and a row per notification read one by one above it.
--
-- The console's pages that show audited changes with no table of their own in the feed
-- (environments, templates, members, the audit log) update live from an 'audit' event per
-- audit row of a project.

-- +goose Up
ALTER TABLE users ADD COLUMN notifications_read_through bigint NOT NULL DEFAULT 0;

CREATE TABLE notification_reads (
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    notification_id bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    read_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX notification_reads_notification_idx ON notification_reads (notification_id);

-- +goose StatementBegin
CREATE FUNCTION feed_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_emit(NEW.project_id, NEW.environment_id, 'audit', NEW.id, jsonb_build_object(
        'id', NEW.id, 'action', NEW.action, 'target_type', NEW.target_type,
        'target_id', NEW.target_id, 'actor', NEW.actor_name));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_logs_feed_insert AFTER INSERT ON audit_logs
    FOR EACH ROW WHEN (NEW.project_id IS NOT NULL) EXECUTE FUNCTION feed_audit();

-- +goose Down
DROP TRIGGER audit_logs_feed_insert ON audit_logs;
DROP FUNCTION feed_audit();
DROP TABLE notification_reads;
ALTER TABLE users DROP COLUMN notifications_read_through;
