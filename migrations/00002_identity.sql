-- +goose Up
-- Identity and approvals: users can be disabled, API tokens authenticate them, and a change to an
-- environment that requires approvals waits in approval_requests, holding the River job that
-- carries it out until enough distinct people have approved.

-- A disabled user keeps their rows (audit, deployments, votes) but can no longer authenticate,
-- and their approval votes stop counting.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- api_tokens holds the SHA-256 of each token, never the token itself; the token is shown once,
-- when it is created. prefix (the first characters) lets people recognise a token in a list.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    hash         bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    prefix       text        NOT NULL,
    created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, id DESC);

-- approval_requests: one held change. The job (kind, args, insert options) is inserted into
-- river_job in the transaction that records the last approval, and job_id remembers it.
CREATE TABLE approval_requests (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id         bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    environment_id     bigint REFERENCES environments (id) ON DELETE CASCADE,
    -- The policy action that was held, e.g. deployment.create or environment.update.
    action             text        NOT NULL CHECK (action <> ''),
    -- The domain row the change concerns (a deployment, an environment).
    target_type        text        NOT NULL CHECK (target_type <> ''),
    target_id          bigint      NOT NULL,
    summary            text        NOT NULL DEFAULT '',
    requested_by       bigint      NOT NULL REFERENCES users (id),
    required_approvals integer     NOT NULL CHECK (required_approvals BETWEEN 1 AND 10),
    state              text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    job_kind           text        NOT NULL CHECK (job_kind <> ''),
    job_args           jsonb       NOT NULL CHECK (jsonb_typeof(job_args) = 'object'),
    job_opts           jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(job_opts) = 'object'),
    job_id             bigint,
    expires_at         timestamptz,
    decided_at         timestamptz,
    decided_by         bigint REFERENCES users (id) ON DELETE SET NULL,
    reason             text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    CHECK ((state = 'approved') = (job_id IS NOT NULL))
);
-- At most one open request per domain row: a second change to the same row waits its turn.
CREATE UNIQUE INDEX approval_requests_pending_target ON approval_requests (target_type, target_id)
    WHERE state = 'pending';
CREATE INDEX approval_requests_project_idx ON approval_requests (project_id, state, id DESC);
CREATE INDEX approval_requests_expiry_idx ON approval_requests (expires_at)
    WHERE state = 'pending' AND expires_at IS NOT NULL;
CREATE INDEX approval_requests_target_idx ON approval_requests (target_type, target_id, id DESC);
-- The worker of a released job finds its request (and the approvers) by the job's ID.
CREATE UNIQUE INDEX approval_requests_job_idx ON approval_requests (job_id) WHERE job_id IS NOT NULL;

-- approval_votes: one vote per person and request (the primary key), approve or reject.
CREATE TABLE approval_votes (
    request_id bigint      NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id),
    decision   text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason     text        NOT NULL DEFAULT '',
    -- The API token the vote came with, if any (NULL for a session login).
    token_id   bigint REFERENCES api_tokens (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, user_id)
);

-- +goose Down
DROP TABLE approval_votes;
DROP TABLE approval_requests;
DROP TABLE api_tokens;
ALTER TABLE users DROP COLUMN disabled_at;
