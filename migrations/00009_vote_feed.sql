-- A vote that does not decide a request changes no row of approval_requests, yet its page and
-- the requester's deploy page show the votes: each vote is an 'approval' event of its request.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION feed_vote() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r approval_requests%ROWTYPE;
BEGIN
    SELECT * INTO r FROM approval_requests WHERE id = NEW.request_id;
    PERFORM feed_emit(r.project_id, r.environment_id, 'approval', r.id, jsonb_build_object(
        'id', r.id, 'action', r.action, 'state', r.state, 'summary', r.summary,
        'target_type', r.target_type, 'target_id', r.target_id,
        'required_approvals', r.required_approvals, 'vote', NEW.decision));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER approval_votes_feed_insert AFTER INSERT ON approval_votes
    FOR EACH ROW EXECUTE FUNCTION feed_vote();

-- +goose Down
DROP TRIGGER approval_votes_feed_insert ON approval_votes;
DROP FUNCTION feed_vote();
