-- +goose Up
-- What the watch alone sees is audited as the event would be (R5b.2): a fact both the webhook
-- and the watch can report (a source's new artifact, an applier's new revision, an image
-- policy's new tag) carries a key, and the second reporter finds it taken.
ALTER TABLE audit_logs ADD COLUMN dedup_key text;
CREATE UNIQUE INDEX audit_logs_dedup_key ON audit_logs (dedup_key) WHERE dedup_key IS NOT NULL;

-- What set off a deployment besides a person: '' (a person, in the console or in Git) or
-- 'image-automation' (image-automation-controller's push, R6b.5), and what did (the
-- ImageUpdateAutomation, namespace/name).
ALTER TABLE deployments ADD COLUMN trigger text NOT NULL DEFAULT ''
    CHECK (trigger IN ('', 'image-automation', 'auto-rollback'));
ALTER TABLE deployments ADD COLUMN trigger_ref text NOT NULL DEFAULT '';
CREATE INDEX deployments_git_commit_idx ON deployments (project_id, commit_sha)
    WHERE deployment_method = 'gitops-git' AND commit_sha <> '';

-- +goose Down
DROP INDEX deployments_git_commit_idx;
ALTER TABLE deployments DROP COLUMN trigger_ref;
ALTER TABLE deployments DROP COLUMN trigger;
DROP INDEX audit_logs_dedup_key;
ALTER TABLE audit_logs DROP COLUMN dedup_key;
