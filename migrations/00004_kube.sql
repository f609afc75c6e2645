-- +goose Up
-- Kubernetes control of gitops_resources: what fluxbridge applied to the cluster (spec versions,
-- apply status, suspension), what the watch observed there beyond the status columns of 00001
-- (generations, next reconcile, HelmRelease chart and history), the reconciliation history, and
-- manual reconcile requests with their progress.

ALTER TABLE gitops_resources
    -- spec_version counts changes of config and suspension; the apply job records the one it
    -- applied, so "applied_spec_version < spec_version" means a change is on its way.
    ADD COLUMN spec_version              bigint      NOT NULL DEFAULT 1,
    ADD COLUMN applied_spec_version      bigint      NOT NULL DEFAULT 0,
    ADD COLUMN apply_status              text        NOT NULL DEFAULT 'pending'
        CHECK (apply_status IN ('pending', 'applied', 'failed', 'deleting')),
    ADD COLUMN apply_error               text        NOT NULL DEFAULT '',
    ADD COLUMN applied_at                timestamptz,
    -- suspended is the desired spec.suspend set through the API (flux suspend / resume).
    ADD COLUMN suspended                 boolean     NOT NULL DEFAULT false,
    ADD COLUMN generation                bigint      NOT NULL DEFAULT 0,
    ADD COLUMN observed_generation       bigint      NOT NULL DEFAULT 0,
    ADD COLUMN last_handled_reconcile_at text        NOT NULL DEFAULT '',
    ADD COLUMN next_reconcile_at         timestamptz,
    ADD COLUMN chart_name                text        NOT NULL DEFAULT '',
    ADD COLUMN chart_version             text        NOT NULL DEFAULT '',
    ADD COLUMN helm_history              jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(helm_history) = 'array');

-- One row per change of a resource's observed state (status, reason or revision), from the
-- watch, a webhook event or a reconcile request, newest last.
CREATE TABLE reconciliation_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_id bigint      NOT NULL REFERENCES gitops_resources (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    source      text        NOT NULL CHECK (source IN ('watch', 'webhook', 'reconcile')),
    status      text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    message     text        NOT NULL DEFAULT '',
    revision    text        NOT NULL DEFAULT ''
);
CREATE INDEX reconciliation_history_resource_idx ON reconciliation_history (resource_id, id DESC);

-- A manual reconcile (flux reconcile) and its progress. The reconcile_resource job moves it from
-- pending through requested (token set on the object) to a final status.
CREATE TABLE reconcile_requests (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_id       bigint      NOT NULL REFERENCES gitops_resources (id) ON DELETE CASCADE,
    with_source       boolean     NOT NULL DEFAULT false,
    force             boolean     NOT NULL DEFAULT false,
    reset             boolean     NOT NULL DEFAULT false,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'source_requested', 'requested', 'succeeded', 'failed', 'timed_out', 'suspended', 'cancelled')),
    source_token      text        NOT NULL DEFAULT '',
    token             text        NOT NULL DEFAULT '',
    -- resumed is true while a manual-sync object was resumed for this request only.
    resumed           boolean     NOT NULL DEFAULT false,
    message           text        NOT NULL DEFAULT '',
    revision          text        NOT NULL DEFAULT '',
    requested_by      bigint REFERENCES users (id) ON DELETE SET NULL,
    requested_by_name text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX reconcile_requests_resource_idx ON reconcile_requests (resource_id, id DESC);

-- +goose Down
DROP TABLE reconcile_requests;
DROP TABLE reconciliation_history;
ALTER TABLE gitops_resources
    DROP COLUMN helm_history, DROP COLUMN chart_version, DROP COLUMN chart_name,
    DROP COLUMN next_reconcile_at, DROP COLUMN last_handled_reconcile_at,
    DROP COLUMN observed_generation, DROP COLUMN generation, DROP COLUMN suspended,
    DROP COLUMN applied_at, DROP COLUMN apply_error, DROP COLUMN apply_status,
    DROP COLUMN applied_spec_version, DROP COLUMN spec_version;
