package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// DeploymentSpec is one row of deployment_specs: the form a gitops-ui deployment renders and
// where in Git it goes.
type DeploymentSpec struct {
	DeploymentID int64           `db:"deployment_id" json:"deployment_id"`
	RepositoryID int64           `db:"repository_id" json:"repository_id"`
	Branch       string          `db:"branch" json:"branch"`
	Path         string          `db:"path" json:"path"`
	Namespace    string          `db:"namespace" json:"namespace"`
	Kind         string          `db:"kind" json:"kind"`
	TemplateID   *int64          `db:"template_id" json:"template_id"`
	TemplateName string          `db:"template_name" json:"template_name"`
	Form         json.RawMessage `db:"form" json:"form"`
	PushedAt     *time.Time      `db:"pushed_at" json:"pushed_at"`
	// ImagePolicy is "<namespace>:<name>" of the app's ImagePolicy when the form asks for image
	// automation; the rendered image line carries its setter comment.
	ImagePolicy string `db:"image_policy" json:"image_policy,omitempty"`
}

// CreateDeploymentSpec inserts the spec of a deployment.
func (s *Store) CreateDeploymentSpec(ctx context.Context, db DBTX, d DeploymentSpec) (*DeploymentSpec, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO deployment_specs (deployment_id, repository_id, branch, path, namespace, kind, template_id, template_name, form, image_policy)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
		d.DeploymentID, d.RepositoryID, d.Branch, d.Path, d.Namespace, d.Kind, d.TemplateID, d.TemplateName, d.Form, d.ImagePolicy)
	out, err := collectOne[DeploymentSpec](rows)
	if err != nil {
		return nil, fmt.Errorf("insert deployment spec: %w", err)
	}
	return out, nil
}

// DeploymentSpecByID returns the spec of a deployment.
func (s *Store) DeploymentSpecByID(ctx context.Context, db DBTX, deploymentID int64) (*DeploymentSpec, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM deployment_specs WHERE deployment_id = $1`, deploymentID)
	d, err := collectOne[DeploymentSpec](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("spec of deployment %d", deploymentID))
	}
	return d, nil
}

// LastPushedSpec returns the spec most recently pushed to a path of a repository branch, other
// than the deployment excluding's own: what the path held before the next push. ErrNotFound
// means nothing was pushed there yet.
func (s *Store) LastPushedSpec(ctx context.Context, db DBTX, repositoryID int64, branch, path string, excluding int64) (*DeploymentSpec, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM deployment_specs
		WHERE repository_id = $1 AND branch = $2 AND path = $3 AND pushed_at IS NOT NULL AND deployment_id <> $4
		ORDER BY pushed_at DESC, deployment_id DESC LIMIT 1`, repositoryID, branch, path, excluding)
	d, err := collectOne[DeploymentSpec](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("pushed spec at %s of %s", path, branch))
	}
	return d, nil
}

// PushOutcome is what a commit_push job records when its push is done.
type PushOutcome struct {
	Status        string // DeployPushed, or DeploySucceeded when Flux already applied the commit
	CommitSHA     string
	CommitMessage string
	CommitAuthor  string
	Message       string
}

// RecordPush moves a pending deployment to o.Status with its commit and stamps its spec as
// pushed now. It reports false, changing nothing, when the deployment is no longer pending
// (a job that ran twice).
func (s *Store) RecordPush(ctx context.Context, db DBTX, id int64, o PushOutcome) (bool, error) {
	tag, err := db.Exec(ctx, `
		UPDATE deployments SET status = $2, commit_sha = $3, commit_message = $4, commit_author = $5,
			message = $6, updated_at = now(), finished_at = CASE WHEN $2 = 'succeeded' THEN now() END
		WHERE id = $1 AND status = 'pending'`, id, o.Status, o.CommitSHA, o.CommitMessage, o.CommitAuthor, o.Message)
	if err != nil {
		return false, fmt.Errorf("record push of deployment %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := db.Exec(ctx, `UPDATE deployment_specs SET pushed_at = now() WHERE deployment_id = $1`, id); err != nil {
		return false, fmt.Errorf("stamp spec of deployment %d: %w", id, err)
	}
	return true, nil
}

// SettlePendingDeployment moves a pending deployment to a final status (failed, cancelled)
// with a message saying why, and reports whether it was still pending.
func (s *Store) SettlePendingDeployment(ctx context.Context, db DBTX, id int64, status, message string) (bool, error) {
	tag, err := db.Exec(ctx, `
		UPDATE deployments SET status = $2, message = $3, updated_at = now(), finished_at = now()
		WHERE id = $1 AND status = 'pending'`, id, status, message)
	if err != nil {
		return false, fmt.Errorf("settle deployment %d as %s: %w", id, status, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PushTargetOfCommit returns the repository and branch a gitops-ui deployment pushed commit
// sha to; ErrNotFound when no deployment recorded that commit.
func (s *Store) PushTargetOfCommit(ctx context.Context, db DBTX, sha string) (repositoryID int64, branch string, err error) {
	err = db.QueryRow(ctx, `
		SELECT s.repository_id, s.branch FROM deployment_specs s JOIN deployments d ON d.id = s.deployment_id
		WHERE d.commit_sha = $1 ORDER BY d.id DESC LIMIT 1`, sha).Scan(&repositoryID, &branch)
	if err != nil {
		return 0, "", notFound(err, fmt.Sprintf("deployment of commit %s", sha))
	}
	return repositoryID, branch, nil
}
