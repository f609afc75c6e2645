-- +goose Up
-- The platform tables the seed calls "existing" (users, projects, members, environments,
-- repositories, deployments, audit_logs, notifications), extended for GitOps, plus the one new
-- table gitops_resources and the flux_events inbox that makes webhook deliveries idempotent.

CREATE TABLE users (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username     text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    display_name text        NOT NULL DEFAULT '',
    email        text        NOT NULL DEFAULT '',
    is_admin     boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name        text        NOT NULL CHECK (name <> ''),
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE project_members (
    project_id bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('viewer', 'developer', 'maintainer', 'owner')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id);

CREATE TABLE environments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    kind          text        NOT NULL CHECK (kind IN ('dev', 'test', 'staging', 'prod')),
    cluster       text        NOT NULL CHECK (cluster <> ''),
    gitops_config jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(gitops_config) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE repositories (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id           bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                 text        NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    url                  text        NOT NULL CHECK (url <> ''),
    auth_type            text        NOT NULL DEFAULT 'none' CHECK (auth_type IN ('none', 'https', 'ssh')),
    -- A reference into the secret store (a Kubernetes Secret or a local file), never the secret.
    credential_ref       text        NOT NULL DEFAULT '',
    gitops_enabled       boolean     NOT NULL DEFAULT false,
    gitops_config        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(gitops_config) = 'object'),
    flux_sync_status     text        NOT NULL DEFAULT 'unknown'
        CHECK (flux_sync_status IN ('unknown', 'syncing', 'synced', 'failed')),
    flux_sync_message    text        NOT NULL DEFAULT '',
    last_synced_revision text        NOT NULL DEFAULT '',
    last_synced_at       timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name),
    CHECK ((auth_type = 'none') = (credential_ref = ''))
);

-- gitops_resources: the one new table. Each row is one Flux object in one cluster; its settings
-- live in config, and the status columns mirror what Flux reports (webhook events and watches).
CREATE TABLE gitops_resources (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id              bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- NULL for sources shared by the project's environments (a GitRepository, a HelmRepository).
    environment_id          bigint REFERENCES environments (id) ON DELETE CASCADE,
    repository_id           bigint REFERENCES repositories (id) ON DELETE SET NULL,
    cluster                 text        NOT NULL CHECK (cluster <> ''),
    kind                    text        NOT NULL CHECK (kind IN (
        'GitRepository', 'OCIRepository', 'HelmRepository', 'HelmChart', 'Bucket',
        'Kustomization', 'HelmRelease',
        'ImageRepository', 'ImagePolicy', 'ImageUpdateAutomation')),
    namespace               text        NOT NULL CHECK (namespace ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name                    text        NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$'),
    config                  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    status                  text        NOT NULL DEFAULT 'unknown'
        CHECK (status IN ('unknown', 'ready', 'reconciling', 'failed', 'suspended')),
    status_reason           text        NOT NULL DEFAULT '',
    status_message          text        NOT NULL DEFAULT '',
    conditions              jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(conditions) = 'array'),
    last_applied_revision   text        NOT NULL DEFAULT '',
    last_attempted_revision text        NOT NULL DEFAULT '',
    last_reconcile_at       timestamptz,
    -- The time of the observation the status columns reflect; older observations never win.
    status_observed_at      timestamptz,
    object_uid              text        NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cluster, kind, namespace, name),
    -- Appliers (a Kustomization, a HelmRelease) deploy into an environment.
    CHECK (kind NOT IN ('Kustomization', 'HelmRelease') OR environment_id IS NOT NULL)
);
CREATE INDEX gitops_resources_project_idx ON gitops_resources (project_id, environment_id);
CREATE INDEX gitops_resources_repository_idx ON gitops_resources (repository_id) WHERE repository_id IS NOT NULL;

CREATE TABLE deployments (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id         bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    environment_id     bigint      NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    gitops_resource_id bigint REFERENCES gitops_resources (id) ON DELETE SET NULL,
    deployment_method  text        NOT NULL CHECK (deployment_method IN ('manual', 'gitops-ui', 'gitops-git')),
    status             text        NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'awaiting_approval', 'pushed', 'succeeded', 'failed', 'cancelled', 'rejected')),
    app                text        NOT NULL DEFAULT '',
    -- What Flux reported as applied (e.g. main@sha1:<sha>, or a chart version for a HelmRelease).
    revision           text        NOT NULL DEFAULT '',
    commit_sha         text        NOT NULL DEFAULT '' CHECK (commit_sha ~ '^([0-9a-f]{40}|[0-9a-f]{64})?$'),
    commit_message     text        NOT NULL DEFAULT '',
    commit_author      text        NOT NULL DEFAULT '',
    requested_by       bigint REFERENCES users (id) ON DELETE SET NULL,
    message            text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);
CREATE INDEX deployments_project_idx ON deployments (project_id, environment_id, created_at DESC);
CREATE INDEX deployments_resource_idx ON deployments (gitops_resource_id, status) WHERE gitops_resource_id IS NOT NULL;
-- Exactly one gitops-git deployment per (resource, revision), however often Flux reports it.
CREATE UNIQUE INDEX deployments_gitops_git_once ON deployments (gitops_resource_id, revision)
    WHERE deployment_method = 'gitops-git';

CREATE TABLE audit_logs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_type     text        NOT NULL CHECK (actor_type IN ('user', 'token', 'flux', 'system')),
    actor_id       bigint REFERENCES users (id) ON DELETE SET NULL,
    actor_name     text        NOT NULL,
    action         text        NOT NULL CHECK (action <> ''),
    target_type    text        NOT NULL,
    target_id      text        NOT NULL DEFAULT '',
    project_id     bigint REFERENCES projects (id) ON DELETE SET NULL,
    environment_id bigint REFERENCES environments (id) ON DELETE SET NULL,
    cluster        text        NOT NULL DEFAULT '',
    request_id     text        NOT NULL DEFAULT '',
    source_ip      text        NOT NULL DEFAULT '',
    message        text        NOT NULL DEFAULT '',
    details        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX audit_logs_at_idx ON audit_logs (at DESC, id DESC);
CREATE INDEX audit_logs_project_idx ON audit_logs (project_id, at DESC) WHERE project_id IS NOT NULL;
CREATE INDEX audit_logs_target_idx ON audit_logs (target_type, target_id);

-- In-app notifications. A NULL user_id addresses every member of the project.
CREATE TABLE notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint REFERENCES projects (id) ON DELETE CASCADE,
    environment_id bigint REFERENCES environments (id) ON DELETE CASCADE,
    user_id        bigint REFERENCES users (id) ON DELETE CASCADE,
    severity       text        NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
    title          text        NOT NULL CHECK (title <> ''),
    body           text        NOT NULL DEFAULT '',
    target_type    text        NOT NULL DEFAULT '',
    target_id      text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    read_at        timestamptz
);
CREATE INDEX notifications_project_idx ON notifications (project_id, created_at DESC);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC) WHERE user_id IS NOT NULL;

-- flux_events is the inbox of notification-controller deliveries. The fingerprint makes a
-- redelivery of the same event a no-op; processed_at tells which ones the worker has handled.
CREATE TABLE flux_events (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster              text        NOT NULL,
    fingerprint          bytea       NOT NULL UNIQUE CHECK (length(fingerprint) = 32),
    received_at          timestamptz NOT NULL DEFAULT now(),
    event_time           timestamptz NOT NULL,
    api_version          text        NOT NULL DEFAULT '',
    kind                 text        NOT NULL,
    namespace            text        NOT NULL,
    name                 text        NOT NULL,
    uid                  text        NOT NULL DEFAULT '',
    severity             text        NOT NULL CHECK (severity IN ('trace', 'info', 'error')),
    reason               text        NOT NULL,
    message              text        NOT NULL,
    revision             text        NOT NULL DEFAULT '',
    reporting_controller text        NOT NULL,
    metadata             jsonb       NOT NULL DEFAULT '{}',
    processed_at         timestamptz
);
CREATE INDEX flux_events_object_idx ON flux_events (cluster, kind, namespace, name, event_time DESC);
CREATE INDEX flux_events_unprocessed_idx ON flux_events (id) WHERE processed_at IS NULL;

-- +goose Down
DROP TABLE flux_events;
DROP TABLE notifications;
DROP TABLE audit_logs;
DROP TABLE deployments;
DROP TABLE gitops_resources;
DROP TABLE repositories;
DROP TABLE environments;
DROP TABLE project_members;
DROP TABLE projects;
DROP TABLE users;
