package store

import (
	"context"
	"fmt"
	"time"
)

// Deployment methods, as enforced by the deployments CHECK constraint.
const (
	MethodManual    = "manual"
	MethodGitopsUI  = "gitops-ui"
	MethodGitopsGit = "gitops-git"
)

// Deployment statuses.
const (
	DeployPending          = "pending"
	DeployAwaitingApproval = "awaiting_approval"
	DeployPushed           = "pushed"
	DeploySucceeded        = "succeeded"
	DeployFailed           = "failed"
	DeployCancelled        = "cancelled"
	DeployRejected         = "rejected"
)

// Deployment is one row of deployments.
type Deployment struct {
	ID               int64      `db:"id" json:"id"`
	ProjectID        int64      `db:"project_id" json:"project_id"`
	EnvironmentID    int64      `db:"environment_id" json:"environment_id"`
	GitopsResourceID *int64     `db:"gitops_resource_id" json:"gitops_resource_id"`
	DeploymentMethod string     `db:"deployment_method" json:"deployment_method"`
	Status           string     `db:"status" json:"status"`
	App              string     `db:"app" json:"app"`
	Revision         string     `db:"revision" json:"revision"`
	CommitSHA        string     `db:"commit_sha" json:"commit_sha"`
	CommitMessage    string     `db:"commit_message" json:"commit_message"`
	CommitAuthor     string     `db:"commit_author" json:"commit_author"`
	RequestedBy      *int64     `db:"requested_by" json:"requested_by"`
	Message          string     `db:"message" json:"message"`
	CreatedAt        time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at" json:"updated_at"`
	FinishedAt       *time.Time `db:"finished_at" json:"finished_at"`
	// Trigger is what set the deployment off besides a person: TriggerImageAutomation or
	// TriggerAutoRollback; "" for a person. TriggerRef names it (the ImageUpdateAutomation's
	// namespace/name, or the failed deployment an automatic rollback undoes).
	Trigger    string `db:"trigger" json:"trigger"`
	TriggerRef string `db:"trigger_ref" json:"trigger_ref"`
}

// Triggers of deployments not started by a person.
const (
	TriggerImageAutomation = "image-automation"
	TriggerAutoRollback    = "auto-rollback"
)

// NewDeployment holds what CreateDeployment needs.
type NewDeployment struct {
	ProjectID        int64
	EnvironmentID    int64
	GitopsResourceID *int64
	Method           string
	Status           string
	App              string
	Revision         string
	CommitSHA        string
	CommitMessage    string
	CommitAuthor     string
	RequestedBy      *int64
	Message          string
	Trigger          string
	TriggerRef       string
}

// CreateDeployment inserts a deployment.
func (s *Store) CreateDeployment(ctx context.Context, db DBTX, d NewDeployment) (*Deployment, error) {
	if d.Status == "" {
		d.Status = DeployPending
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO deployments (project_id, environment_id, gitops_resource_id, deployment_method, status, app,
			revision, commit_sha, commit_message, commit_author, requested_by, message, trigger, trigger_ref)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING *`,
		d.ProjectID, d.EnvironmentID, d.GitopsResourceID, d.Method, d.Status, d.App,
		d.Revision, d.CommitSHA, d.CommitMessage, d.CommitAuthor, d.RequestedBy, d.Message, d.Trigger, d.TriggerRef)
	out, err := collectOne[Deployment](rows)
	if err != nil {
		return nil, fmt.Errorf("insert deployment: %w", err)
	}
	return out, nil
}

// DeploymentByID returns one deployment.
func (s *Store) DeploymentByID(ctx context.Context, db DBTX, id int64) (*Deployment, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM deployments WHERE id = $1`, id)
	d, err := collectOne[Deployment](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("deployment %d", id))
	}
	return d, nil
}

// OpenUIDeployments returns the gitops-ui deployments of a resource that were pushed (or are
// about to be) and wait for Flux to report them applied, oldest first. The Flux event job
// settles every one of them, so it reads them all, a page at a time.
func (s *Store) OpenUIDeployments(ctx context.Context, db DBTX, resourceID int64) ([]Deployment, error) {
	return readAll(func(last *Deployment, limit int) ([]Deployment, error) {
		var after int64
		if last != nil {
			after = last.ID
		}
		rows, _ := db.Query(ctx, `
			SELECT * FROM deployments
			WHERE gitops_resource_id = $1 AND deployment_method = 'gitops-ui'
			  AND status IN ('pending', 'pushed') AND commit_sha <> '' AND id > $2
			ORDER BY id LIMIT $3`, resourceID, after, limit)
		out, err := collectAll[Deployment](rows)
		if err != nil {
			return nil, fmt.Errorf("list open ui deployments: %w", err)
		}
		return out, nil
	})
}

// HasUIDeploymentOfCommit tells whether a gitops-ui deployment of resourceID already covers sha.
func (s *Store) HasUIDeploymentOfCommit(ctx context.Context, db DBTX, resourceID int64, sha string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM deployments
		WHERE gitops_resource_id = $1 AND deployment_method = 'gitops-ui' AND commit_sha = $2 AND commit_sha <> '')`,
		resourceID, sha).Scan(&ok)
	return ok, err
}

// FinishDeployment moves a deployment to a final status with a revision and message.
func (s *Store) FinishDeployment(ctx context.Context, db DBTX, id int64, status, revision, message string, at time.Time) error {
	_, err := db.Exec(ctx, `
		UPDATE deployments SET status = $2, revision = COALESCE(NULLIF($3, ''), revision),
			message = $4, finished_at = $5, updated_at = now()
		WHERE id = $1`, id, status, revision, message, at)
	if err != nil {
		return fmt.Errorf("finish deployment %d: %w", id, err)
	}
	return nil
}

// RecordGitDeployment records that Flux applied (or failed to apply) revision through resource
// for a change pushed to Git directly. There is exactly one gitops-git deployment per (resource,
// revision): a repeat is a no-op, except that a failed one becomes succeeded when a later
// attempt at the same revision succeeds. A succeeded one never turns failed. It returns the
// deployment and whether this call inserted or changed it.
func (s *Store) RecordGitDeployment(ctx context.Context, db DBTX, d NewDeployment, at time.Time) (*Deployment, bool, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO deployments (project_id, environment_id, gitops_resource_id, deployment_method, status,
			revision, commit_sha, message, finished_at, commit_author, trigger, trigger_ref)
		VALUES ($1, $2, $3, 'gitops-git', $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (gitops_resource_id, revision) WHERE deployment_method = 'gitops-git'
		DO UPDATE SET status = EXCLUDED.status, message = EXCLUDED.message,
			finished_at = EXCLUDED.finished_at, updated_at = now()
		WHERE deployments.status = 'failed' AND EXCLUDED.status = 'succeeded'
		RETURNING *`,
		d.ProjectID, d.EnvironmentID, d.GitopsResourceID, d.Status, d.Revision, d.CommitSHA, d.Message, at,
		d.CommitAuthor, d.Trigger, d.TriggerRef)
	out, err := collectAll[Deployment](rows)
	if err != nil {
		return nil, false, fmt.Errorf("record gitops-git deployment: %w", err)
	}
	if len(out) == 1 {
		return &out[0], true, nil
	}
	rows, _ = db.Query(ctx, `SELECT * FROM deployments
		WHERE gitops_resource_id = $1 AND revision = $2 AND deployment_method = 'gitops-git'`,
		d.GitopsResourceID, d.Revision)
	existing, err := collectOne[Deployment](rows)
	if err != nil {
		return nil, false, fmt.Errorf("read gitops-git deployment: %w", err)
	}
	return existing, false, nil
}

// HasGitDeploymentOfRevision tells whether a gitops-git deployment of resourceID at revision
// is recorded.
func (s *Store) HasGitDeploymentOfRevision(ctx context.Context, db DBTX, resourceID int64, revision string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deployments
		WHERE gitops_resource_id = $1 AND revision = $2 AND deployment_method = 'gitops-git')`, resourceID, revision).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("gitops-git deployment of %d at %s: %w", resourceID, revision, err)
	}
	return ok, nil
}

// MarkImageAutomationCommit records that commit sha was image-automation-controller's push
// for the ImageUpdateAutomation ref (namespace/name), authored as author: the project's
// gitops-git deployments of that commit recorded before the watch saw the push say so.
func (s *Store) MarkImageAutomationCommit(ctx context.Context, db DBTX, projectID int64, sha, ref, author string) (int64, error) {
	tag, err := db.Exec(ctx, `
		UPDATE deployments SET trigger = 'image-automation', trigger_ref = $3,
			commit_author = CASE WHEN commit_author = '' THEN $4 ELSE commit_author END, updated_at = now()
		WHERE project_id = $1 AND commit_sha = $2 AND deployment_method = 'gitops-git' AND trigger = ''`,
		projectID, sha, ref, author)
	if err != nil {
		return 0, fmt.Errorf("mark image automation commit %s: %w", sha, err)
	}
	return tag.RowsAffected(), nil
}

// ImageAutomationOfCommit returns the project's ImageUpdateAutomation whose last push was
// commit sha, or ErrNotFound.
func (s *Store) ImageAutomationOfCommit(ctx context.Context, db DBTX, projectID int64, sha string) (*Resource, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM gitops_resources
		WHERE project_id = $1 AND kind = 'ImageUpdateAutomation' AND last_applied_revision = $2
		ORDER BY id LIMIT 1`, projectID, sha)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, "image automation of commit "+sha)
	}
	return r, nil
}

// DeploymentFilter narrows ListDeployments; zero fields match everything.
type DeploymentFilter struct {
	ProjectID     int64
	EnvironmentID int64
	ResourceID    int64
	Method        string
	Status        string
	BeforeID      int64 // keyset paging: only rows with a smaller ID
	Limit         int
}

// ListDeployments returns deployments newest first.
func (s *Store) ListDeployments(ctx context.Context, db DBTX, f DeploymentFilter) ([]Deployment, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM deployments
		WHERE ($1 = 0 OR project_id = $1) AND ($2 = 0 OR environment_id = $2)
		  AND ($3 = 0 OR gitops_resource_id = $3) AND ($4 = '' OR deployment_method = $4)
		  AND ($5 = '' OR status = $5) AND ($6 = 0 OR id < $6)
		ORDER BY id DESC LIMIT $7`,
		f.ProjectID, f.EnvironmentID, f.ResourceID, f.Method, f.Status, f.BeforeID, f.Limit)
	out, err := collectAll[Deployment](rows)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return out, nil
}

// LockDeployment returns a deployment with its row locked until the transaction ends.
func (s *Store) LockDeployment(ctx context.Context, db DBTX, id int64) (*Deployment, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM deployments WHERE id = $1 FOR UPDATE`, id)
	d, err := collectOne[Deployment](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("deployment %d", id))
	}
	return d, nil
}

// MoveDeployment changes a deployment's status from one value to another and reports whether it
// did: a deployment no longer in status from is left alone. Final statuses set finished_at; the
// requester's message stays.
func (s *Store) MoveDeployment(ctx context.Context, db DBTX, id int64, from, to string) (bool, error) {
	tag, err := db.Exec(ctx, `
		UPDATE deployments SET status = $3, updated_at = now(),
			finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled', 'rejected') THEN now() END
		WHERE id = $1 AND status = $2`, id, from, to)
	if err != nil {
		return false, fmt.Errorf("move deployment %d from %s to %s: %w", id, from, to, err)
	}
	return tag.RowsAffected() == 1, nil
}
