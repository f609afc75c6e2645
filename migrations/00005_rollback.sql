-- +goose Up
-- GitOps rollbacks (R11), and the image policy of a deploy. A rollback is a deployment: its deployments row (method gitops-ui)
-- carries the commit and the outcome, like any UI deploy. This table says what was rolled back
-- to, how (a revert commit, or the environment's Kustomization pinned to the commit), how far
-- the job got, and what the rollback holds back until it is unlocked: the image automation it
-- suspended, and the pin.
CREATE TABLE rollbacks (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id        bigint      NOT NULL UNIQUE REFERENCES deployments (id) ON DELETE CASCADE,
    project_id           bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    environment_id       bigint      NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    app                  text        NOT NULL CHECK (app <> ''),
    -- The successful deployment rolled back to, and its commit.
    target_deployment_id bigint REFERENCES deployments (id) ON DELETE SET NULL,
    target_commit        text        NOT NULL CHECK (target_commit ~ '^([0-9a-f]{40}|[0-9a-f]{64})$'),
    strategy             text        NOT NULL CHECK (strategy IN ('revert', 'pin')),
    -- Where the app lives in Git: the repository, branch and directory the revert restores.
    repository_id        bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    branch               text        NOT NULL CHECK (branch <> ''),
    path                 text        NOT NULL CHECK (path <> '' AND path !~ '(^/|(^|/)\.\.(/|$))'),
    -- The Flux Kustomization that applies the app.
    resource_id          bigint REFERENCES gitops_resources (id) ON DELETE SET NULL,
    -- pending (waiting for its job or for approvals), committed (revert pushed, or pin
    -- applied), reconciling (Flux asked to apply it), then a final phase.
    phase                text        NOT NULL DEFAULT 'pending' CHECK (phase IN (
        'pending', 'committed', 'reconciling', 'succeeded', 'failed', 'timed_out', 'cancelled')),
    message              text        NOT NULL DEFAULT '',
    -- The commit Flux must report applied: the revert commit, or the target for a pin.
    expected_commit      text        NOT NULL DEFAULT '',
    -- The reconcile.fluxcd.io/requestedAt token the job set on the Kustomization.
    reconcile_token      text        NOT NULL DEFAULT '',
    -- Pin: the GitRepository pinned to the commit, and the Kustomization's sourceRef before.
    pin_resource_id      bigint REFERENCES gitops_resources (id) ON DELETE SET NULL,
    original_source      jsonb,
    -- The lock: image automation suspended by this rollback, resumed on unlock.
    locked               boolean     NOT NULL DEFAULT false,
    locked_resource_ids  bigint[]    NOT NULL DEFAULT '{}',
    unlocked_at          timestamptz,
    unlocked_by          bigint REFERENCES users (id) ON DELETE SET NULL,
    requested_by         bigint REFERENCES users (id) ON DELETE SET NULL,
    deadline_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    CHECK (NOT locked OR unlocked_at IS NULL)
);
CREATE INDEX rollbacks_app_idx ON rollbacks (environment_id, app, id DESC);
-- An app is held by at most one rollback at a time; a newer rollback takes the lock over.
CREATE UNIQUE INDEX rollbacks_locked_once ON rollbacks (environment_id, app) WHERE locked;

-- Image automation (R6b): the "<namespace>:<name>" of the ImagePolicy whose setter comment marks
-- the image line of a deploy's manifests, when its form asks for image automation.
ALTER TABLE deployment_specs ADD COLUMN image_policy text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deployment_specs DROP COLUMN image_policy;
DROP TABLE rollbacks;
