-- +goose Up
-- The change feed behind the web console's live updates (Server-Sent Events). Triggers on the
-- tables the console shows append one row per change and NOTIFY fluxbridge_feed; every receiver
-- replica LISTENs, reads the rows after its cursor and fans them out to its streams. A browser
-- that reconnects sends the seq of the last event it saw (Last-Event-ID) and catches up from
-- here, so nothing is lost while it was away, whichever replica it lands on.
--
-- seq order is not commit order: an identity value is taken when the row is inserted, long
-- before its transaction commits, so "seq > cursor" alone would skip a row whose transaction
-- commits after a later one. Readers therefore only deliver below a mark (change_feed_marks):
-- a seq taken from the same sequence by a fresh transaction that got its transaction ID only
-- after taking it. Every transaction holding a smaller seq had its ID before (feed_emit makes
-- sure), hence a smaller one, so once the mark's xid is below a reader's snapshot xmin all of
-- them have ended and are visible: nothing can appear below the mark any more. See
-- internal/feed, Read. The identity sequence must keep CACHE 1.
CREATE TABLE change_feed (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- NULL for rows of no project (a flux event of an object no project manages, a user's own
    -- notification); the console decides who sees those.
    project_id     bigint REFERENCES projects (id) ON DELETE CASCADE,
    environment_id bigint,
    -- deployment, resource, reconcile, flux_event, notification or approval.
    kind           text        NOT NULL,
    ref_id         bigint      NOT NULL,
    payload        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX change_feed_project_idx ON change_feed (project_id, seq);
CREATE INDEX change_feed_at_idx ON change_feed (at);

-- change_feed_marks: the marks readers deliver below; feed_mark makes them and drops those
-- older than the newest one that holds.
CREATE TABLE change_feed_marks (
    seq bigint PRIMARY KEY,
    xid xid8   NOT NULL DEFAULT pg_current_xact_id()
);

-- +goose StatementBegin
CREATE FUNCTION feed_mark() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
BEGIN
    -- A transaction that has its ID already would make a mark that holds too early.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RETURN;
    END IF;
    -- Nothing was written since the newest mark: it covers everything.
    IF (SELECT last_value FROM change_feed_seq_seq) <= (SELECT coalesce(max(seq), 0) FROM change_feed_marks) THEN
        RETURN;
    END IF;
    v_seq := nextval('change_feed_seq_seq');
    INSERT INTO change_feed_marks (seq) VALUES (v_seq); -- takes the transaction ID, after the seq
    DELETE FROM change_feed_marks WHERE seq IN (
        SELECT seq FROM change_feed_marks
        WHERE seq < (SELECT max(seq) FROM change_feed_marks
                     WHERE xid < pg_snapshot_xmin(pg_current_snapshot()))
        FOR UPDATE SKIP LOCKED);
END $$;
-- +goose StatementEnd

-- feed_emit appends one feed row in the caller's transaction and wakes the listeners at commit
-- (Postgres folds identical notifications of one transaction into one).
-- +goose StatementBegin
CREATE FUNCTION feed_emit(p_project bigint, p_env bigint, p_kind text, p_ref bigint, p_payload jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    -- The transaction ID must exist before the seq is taken (see change_feed_marks); a
    -- trigger's transaction has one already, this makes sure for any other caller.
    v_xid xid8 := pg_current_xact_id();
BEGIN
    -- A project being deleted cascades into updates of its rows (ON DELETE SET NULL) before
    -- they go; their feed rows would go with the project anyway.
    IF p_project IS NOT NULL AND NOT EXISTS (SELECT 1 FROM projects WHERE id = p_project) THEN
        RETURN;
    END IF;
    INSERT INTO change_feed (xid, project_id, environment_id, kind, ref_id, payload)
        VALUES (v_xid, p_project, p_env, p_kind, p_ref, coalesce(p_payload, '{}'));
    PERFORM pg_notify('fluxbridge_feed', '');
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION feed_deployment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_emit(NEW.project_id, NEW.environment_id, 'deployment', NEW.id, jsonb_build_object(
        'id', NEW.id, 'status', NEW.status, 'app', NEW.app, 'deployment_method', NEW.deployment_method,
        'commit_sha', NEW.commit_sha, 'commit_message', NEW.commit_message,
        'commit_author', NEW.commit_author, 'revision', NEW.revision, 'message', NEW.message,
        'environment_id', NEW.environment_id, 'gitops_resource_id', NEW.gitops_resource_id,
        'updated_at', NEW.updated_at));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER deployments_feed_insert AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION feed_deployment();
CREATE TRIGGER deployments_feed_update AFTER UPDATE ON deployments
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION feed_deployment();

-- +goose StatementBegin
CREATE FUNCTION feed_resource() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_emit(NEW.project_id, NEW.environment_id, 'resource', NEW.id, jsonb_build_object(
        'id', NEW.id, 'cluster', NEW.cluster, 'kind', NEW.kind, 'namespace', NEW.namespace,
        'name', NEW.name, 'status', NEW.status, 'status_reason', NEW.status_reason,
        'status_message', NEW.status_message, 'suspended', NEW.suspended,
        'apply_status', NEW.apply_status, 'apply_error', NEW.apply_error,
        'last_applied_revision', NEW.last_applied_revision,
        'last_reconcile_at', NEW.last_reconcile_at, 'next_reconcile_at', NEW.next_reconcile_at,
        'environment_id', NEW.environment_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER gitops_resources_feed_insert AFTER INSERT ON gitops_resources
    FOR EACH ROW EXECUTE FUNCTION feed_resource();
-- Only what the console shows: the watch rewrites observed_generation and friends all the time.
CREATE TRIGGER gitops_resources_feed_update AFTER UPDATE ON gitops_resources
    FOR EACH ROW WHEN ((OLD.status, OLD.status_reason, OLD.status_message, OLD.last_applied_revision,
        OLD.last_attempted_revision, OLD.last_reconcile_at, OLD.next_reconcile_at, OLD.suspended,
        OLD.apply_status, OLD.apply_error, OLD.conditions)
        IS DISTINCT FROM (NEW.status, NEW.status_reason, NEW.status_message, NEW.last_applied_revision,
        NEW.last_attempted_revision, NEW.last_reconcile_at, NEW.next_reconcile_at, NEW.suspended,
        NEW.apply_status, NEW.apply_error, NEW.conditions))
    EXECUTE FUNCTION feed_resource();

-- +goose StatementBegin
CREATE FUNCTION feed_reconcile() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_project bigint;
    v_env     bigint;
BEGIN
    SELECT project_id, environment_id INTO v_project, v_env FROM gitops_resources WHERE id = NEW.resource_id;
    PERFORM feed_emit(v_project, v_env, 'reconcile', NEW.id, jsonb_build_object(
        'id', NEW.id, 'resource_id', NEW.resource_id, 'status', NEW.status, 'message', NEW.message,
        'revision', NEW.revision, 'with_source', NEW.with_source, 'updated_at', NEW.updated_at));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER reconcile_requests_feed_insert AFTER INSERT ON reconcile_requests
    FOR EACH ROW EXECUTE FUNCTION feed_reconcile();
CREATE TRIGGER reconcile_requests_feed_update AFTER UPDATE ON reconcile_requests
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION feed_reconcile();

-- +goose StatementBegin
CREATE FUNCTION feed_flux_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_id      bigint;
    v_project bigint;
    v_env     bigint;
BEGIN
    -- NULLs when no project manages the object.
    SELECT id, project_id, environment_id INTO v_id, v_project, v_env FROM gitops_resources
        WHERE cluster = NEW.cluster AND kind = NEW.kind AND namespace = NEW.namespace AND name = NEW.name;
    PERFORM feed_emit(v_project, v_env, 'flux_event', NEW.id, jsonb_build_object(
        'id', NEW.id, 'cluster', NEW.cluster, 'kind', NEW.kind, 'namespace', NEW.namespace,
        'name', NEW.name, 'severity', NEW.severity, 'reason', NEW.reason, 'message', NEW.message,
        'revision', NEW.revision, 'event_time', NEW.event_time, 'resource_id', v_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER flux_events_feed_insert AFTER INSERT ON flux_events
    FOR EACH ROW EXECUTE FUNCTION feed_flux_event();

-- +goose StatementBegin
CREATE FUNCTION feed_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_emit(NEW.project_id, NEW.environment_id, 'notification', NEW.id, jsonb_build_object(
        'id', NEW.id, 'severity', NEW.severity, 'title', NEW.title, 'body', NEW.body,
        'user_id', NEW.user_id, 'target_type', NEW.target_type, 'target_id', NEW.target_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER notifications_feed_insert AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION feed_notification();

-- +goose StatementBegin
CREATE FUNCTION feed_approval() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_emit(NEW.project_id, NEW.environment_id, 'approval', NEW.id, jsonb_build_object(
        'id', NEW.id, 'action', NEW.action, 'state', NEW.state, 'summary', NEW.summary,
        'target_type', NEW.target_type, 'target_id', NEW.target_id,
        'required_approvals', NEW.required_approvals));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER approval_requests_feed_insert AFTER INSERT ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION feed_approval();
CREATE TRIGGER approval_requests_feed_update AFTER UPDATE OF state ON approval_requests
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION feed_approval();

-- +goose Down
DROP TRIGGER approval_requests_feed_update ON approval_requests;
DROP TRIGGER approval_requests_feed_insert ON approval_requests;
DROP TRIGGER notifications_feed_insert ON notifications;
DROP TRIGGER flux_events_feed_insert ON flux_events;
DROP TRIGGER reconcile_requests_feed_update ON reconcile_requests;
DROP TRIGGER reconcile_requests_feed_insert ON reconcile_requests;
DROP TRIGGER gitops_resources_feed_update ON gitops_resources;
DROP TRIGGER gitops_resources_feed_insert ON gitops_resources;
DROP TRIGGER deployments_feed_update ON deployments;
DROP TRIGGER deployments_feed_insert ON deployments;
DROP FUNCTION feed_approval();
DROP FUNCTION feed_notification();
DROP FUNCTION feed_flux_event();
DROP FUNCTION feed_reconcile();
DROP FUNCTION feed_resource();
DROP FUNCTION feed_deployment();
DROP FUNCTION feed_emit(bigint, bigint, text, bigint, jsonb);
DROP FUNCTION feed_mark();
DROP TABLE change_feed_marks;
DROP TABLE change_feed;
