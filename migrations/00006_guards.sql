-- +goose Up
-- The guards that keep one person from changing production alone and keep projects apart:
--
-- * Proposed vs live. A change that waits for approvals is a proposal (gitops_resources.pending),
--   never the live config: config only ever holds approved settings, so every path that applies
--   a row (suspend/resume, an environment's settings, unlocking after a rollback, repairs)
--   applies approved state only. The transaction that records the last approval promotes the
--   proposal; a reject or an expiry discards it. A resource created by a held change is not
--   approved until then: nothing applies it, and a reject deletes the row.
-- * Ownership. Objects in a managed cluster that no project manages are listed as discovered by
--   the watch; fluxbridge never creates over them, and adopts one only by an audited import.

ALTER TABLE gitops_resources
    -- false while the create that made the row waits for approvals: the row reserves the name,
    -- config is empty, and pending holds the proposed settings.
    ADD COLUMN approved            boolean NOT NULL DEFAULT true,
    -- The proposal: {"config": {...}, "repository_id": n | null} for a change, {"delete": true}
    -- for a deletion; NULL when none. pending_request_id is the approval request holding it (set
    -- right after the request is made, in the same transaction).
    ADD COLUMN pending             jsonb CHECK (pending IS NULL OR jsonb_typeof(pending) = 'object'),
    ADD COLUMN pending_request_id  bigint REFERENCES approval_requests (id),
    -- An object that existed in the cluster and was adopted by an admin (POST …/resources/import).
    ADD COLUMN imported_at         timestamptz,
    ADD COLUMN imported_by         bigint REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT gitops_resources_unapproved_pending CHECK (approved OR pending IS NOT NULL);
CREATE INDEX gitops_resources_pending_idx ON gitops_resources (pending_request_id) WHERE pending_request_id IS NOT NULL;

-- discovered_objects: the Flux objects of each managed cluster that no project manages, as the
-- watch last saw them. owner says who manages the object (from its labels and field managers),
-- spec is what an import starts from.
CREATE TABLE discovered_objects (
    cluster     text        NOT NULL,
    kind        text        NOT NULL,
    namespace   text        NOT NULL,
    name        text        NOT NULL,
    uid         text        NOT NULL DEFAULT '',
    owner       text        NOT NULL DEFAULT '',
    labels      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    spec        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(spec) = 'object'),
    status      text        NOT NULL DEFAULT 'unknown',
    observed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, kind, namespace, name)
);

-- +goose Down
DROP TABLE discovered_objects;
DROP INDEX gitops_resources_pending_idx;
ALTER TABLE gitops_resources
    DROP CONSTRAINT gitops_resources_unapproved_pending,
    DROP COLUMN imported_by, DROP COLUMN imported_at,
    DROP COLUMN pending_request_id, DROP COLUMN pending, DROP COLUMN approved;
