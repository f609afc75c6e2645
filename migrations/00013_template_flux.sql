-- +goose Up
-- Deploy templates that carry Flux objects (R7b.2): a saved template's "flux" object holds
-- the settings of the environment's GitRepository and Kustomization and, for the new helm-app
-- kind, its HelmRelease and the chart's source, in Flux's spelling (fluxspec.Template).
ALTER TABLE deploy_templates ADD COLUMN flux jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(flux) = 'object');

ALTER TABLE deploy_templates DROP CONSTRAINT deploy_templates_name_check;
ALTER TABLE deploy_templates ADD CONSTRAINT deploy_templates_name_check CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
    AND name NOT IN ('web-app', 'microservice', 'cron-job', 'helm-app'));
ALTER TABLE deploy_templates DROP CONSTRAINT deploy_templates_kind_check;
ALTER TABLE deploy_templates ADD CONSTRAINT deploy_templates_kind_check CHECK (kind IN ('web-app', 'microservice', 'cron-job', 'helm-app'));
ALTER TABLE deployment_specs DROP CONSTRAINT deployment_specs_kind_check;
ALTER TABLE deployment_specs ADD CONSTRAINT deployment_specs_kind_check CHECK (kind IN ('web-app', 'microservice', 'cron-job', 'helm-app'));

-- +goose Down
DELETE FROM deployment_specs WHERE kind = 'helm-app';
DELETE FROM deploy_templates WHERE kind = 'helm-app' OR name = 'helm-app';
ALTER TABLE deployment_specs DROP CONSTRAINT deployment_specs_kind_check;
ALTER TABLE deployment_specs ADD CONSTRAINT deployment_specs_kind_check CHECK (kind IN ('web-app', 'microservice', 'cron-job'));
ALTER TABLE deploy_templates DROP CONSTRAINT deploy_templates_kind_check;
ALTER TABLE deploy_templates ADD CONSTRAINT deploy_templates_kind_check CHECK (kind IN ('web-app', 'microservice', 'cron-job'));
ALTER TABLE deploy_templates DROP CONSTRAINT deploy_templates_name_check;
ALTER TABLE deploy_templates ADD CONSTRAINT deploy_templates_name_check CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
    AND name NOT IN ('web-app', 'microservice', 'cron-job'));
ALTER TABLE deploy_templates DROP COLUMN flux;
