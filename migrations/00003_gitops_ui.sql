-- +goose Up
-- UI → Git: the deploy form behind each gitops-ui deployment, and the deploy templates users
-- save per project. Credentials stay out of the database: repositories.credential_ref names
-- them in the secret store.

-- deploy_templates: a named, partial deploy form of one built-in kind that deploys start from.
CREATE TABLE deploy_templates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
                                AND name NOT IN ('web-app', 'microservice', 'cron-job')),
    description text        NOT NULL DEFAULT '',
    kind        text        NOT NULL CHECK (kind IN ('web-app', 'microservice', 'cron-job')),
    form        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(form) = 'object'),
    created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- deployment_specs: what a gitops-ui deployment writes and where. The commit_push job renders
-- form into path on branch of the repository; pushed_at orders the pushes to one path, so the
-- next deploy's commit message can say what changed since the previous one.
CREATE TABLE deployment_specs (
    deployment_id bigint      PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    branch        text        NOT NULL CHECK (branch <> ''),
    -- The app's directory, relative to the repository root.
    path          text        NOT NULL CHECK (path <> '' AND path !~ '(^/|(^|/)\.\.(/|$))'),
    namespace     text        NOT NULL CHECK (namespace ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    kind          text        NOT NULL CHECK (kind IN ('web-app', 'microservice', 'cron-job')),
    template_id   bigint REFERENCES deploy_templates (id) ON DELETE SET NULL,
    template_name text        NOT NULL DEFAULT '',
    form          jsonb       NOT NULL CHECK (jsonb_typeof(form) = 'object'),
    pushed_at     timestamptz
);
CREATE INDEX deployment_specs_path_idx ON deployment_specs (repository_id, branch, path, pushed_at DESC)
    WHERE pushed_at IS NOT NULL;

-- +goose Down
DROP TABLE deployment_specs;
DROP TABLE deploy_templates;
