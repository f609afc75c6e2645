package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Rollback strategies.
const (
	// RollbackRevert makes a new commit restoring the app's directory to the target commit.
	RollbackRevert = "revert"
	// RollbackPin points the environment's Kustomization at a GitRepository pinned to the
	// target commit (spec.ref.commit), until unlocked.
	RollbackPin = "pin"
)

// Rollback phases.
const (
	RollbackPending     = "pending"
	RollbackCommitted   = "committed"
	RollbackReconciling = "reconciling"
	RollbackSucceeded   = "succeeded"
	RollbackFailed      = "failed"
	RollbackTimedOut    = "timed_out"
	RollbackCancelled   = "cancelled"
)

// Rollback is one row of rollbacks.
type Rollback struct {
	ID                 int64           `db:"id" json:"id"`
	DeploymentID       int64           `db:"deployment_id" json:"deployment_id"`
	ProjectID          int64           `db:"project_id" json:"project_id"`
	EnvironmentID      int64           `db:"environment_id" json:"environment_id"`
	App                string          `db:"app" json:"app"`
	TargetDeploymentID *int64          `db:"target_deployment_id" json:"target_deployment_id"`
	TargetCommit       string          `db:"target_commit" json:"target_commit"`
	Strategy           string          `db:"strategy" json:"strategy"`
	RepositoryID       int64           `db:"repository_id" json:"repository_id"`
	Branch             string          `db:"branch" json:"branch"`
	Path               string          `db:"path" json:"path"`
	ResourceID         *int64          `db:"resource_id" json:"resource_id"`
	Phase              string          `db:"phase" json:"phase"`
	Message            string          `db:"message" json:"message"`
	ExpectedCommit     string          `db:"expected_commit" json:"expected_commit"`
	ReconcileToken     string          `db:"reconcile_token" json:"reconcile_token,omitempty"`
	PinResourceID      *int64          `db:"pin_resource_id" json:"pin_resource_id"`
	OriginalSource     json.RawMessage `db:"original_source" json:"original_source,omitempty"`
	Locked             bool            `db:"locked" json:"locked"`
	LockedResourceIDs  []int64         `db:"locked_resource_ids" json:"locked_resource_ids"`
	UnlockedAt         *time.Time      `db:"unlocked_at" json:"unlocked_at"`
	UnlockedBy         *int64          `db:"unlocked_by" json:"unlocked_by"`
	RequestedBy        *int64          `db:"requested_by" json:"requested_by"`
	DeadlineAt         *time.Time      `db:"deadline_at" json:"deadline_at"`
	CreatedAt          time.Time       `db:"created_at" json:"created_at"`
	UpdatedAt          time.Time       `db:"updated_at" json:"updated_at"`
	FinishedAt         *time.Time      `db:"finished_at" json:"finished_at"`
}

// Final tells whether the rollback's job is done.
func (r *Rollback) Final() bool {
	switch r.Phase {
	case RollbackSucceeded, RollbackFailed, RollbackTimedOut, RollbackCancelled:
		return true
	}
	return false
}

// NewRollback holds what CreateRollback needs.
type NewRollback struct {
	DeploymentID       int64
	ProjectID          int64
	EnvironmentID      int64
	App                string
	TargetDeploymentID *int64
	TargetCommit       string
	Strategy           string
	RepositoryID       int64
	Branch             string
	Path               string
	ResourceID         *int64
	RequestedBy        *int64
}

// CreateRollback inserts a rollback in phase pending.
func (s *Store) CreateRollback(ctx context.Context, db DBTX, r NewRollback) (*Rollback, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO rollbacks (deployment_id, project_id, environment_id, app, target_deployment_id, target_commit,
			strategy, repository_id, branch, path, resource_id, requested_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *`,
		r.DeploymentID, r.ProjectID, r.EnvironmentID, r.App, r.TargetDeploymentID, r.TargetCommit,
		r.Strategy, r.RepositoryID, r.Branch, r.Path, r.ResourceID, r.RequestedBy)
	out, err := collectOne[Rollback](rows)
	if err != nil {
		return nil, fmt.Errorf("insert rollback: %w", err)
	}
	return out, nil
}

// RollbackByID returns one rollback.
func (s *Store) RollbackByID(ctx context.Context, db DBTX, id int64) (*Rollback, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM rollbacks WHERE id = $1`, id)
	r, err := collectOne[Rollback](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("rollback %d", id))
	}
	return r, nil
}

// RollbackByDeployment returns the rollback a deployment records, or ErrNotFound for a
// deployment that is not a rollback.
func (s *Store) RollbackByDeployment(ctx context.Context, db DBTX, deploymentID int64) (*Rollback, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM rollbacks WHERE deployment_id = $1`, deploymentID)
	r, err := collectOne[Rollback](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("rollback of deployment %d", deploymentID))
	}
	return r, nil
}

// LockRollback returns a rollback with its row locked until the transaction ends.
func (s *Store) LockRollback(ctx context.Context, db DBTX, id int64) (*Rollback, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM rollbacks WHERE id = $1 FOR UPDATE`, id)
	r, err := collectOne[Rollback](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("rollback %d", id))
	}
	return r, nil
}

// LockingRollback returns the rollback that holds an app of an environment locked, with its
// row locked, or ErrNotFound when the app is not locked.
func (s *Store) LockingRollback(ctx context.Context, db DBTX, environmentID int64, app string) (*Rollback, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM rollbacks WHERE environment_id = $1 AND app = $2 AND locked FOR UPDATE`, environmentID, app)
	r, err := collectOne[Rollback](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("lock of %s", app))
	}
	return r, nil
}

// PinningRollback returns the rollback whose pin holds the Kustomization resourceID, or
// ErrNotFound.
func (s *Store) PinningRollback(ctx context.Context, db DBTX, resourceID int64) (*Rollback, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM rollbacks WHERE resource_id = $1 AND strategy = 'pin' AND locked
		ORDER BY id DESC LIMIT 1`, resourceID)
	r, err := collectOne[Rollback](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("pin of resource %d", resourceID))
	}
	return r, nil
}

// ListRollbacks returns the rollbacks of an environment's app (every app when app is ""),
// newest first.
func (s *Store) ListRollbacks(ctx context.Context, db DBTX, environmentID int64, app string, limit int) ([]Rollback, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM rollbacks WHERE environment_id = $1 AND ($2 = '' OR app = $2)
		ORDER BY id DESC LIMIT $3`, environmentID, app, limit)
	out, err := collectAll[Rollback](rows)
	if err != nil {
		return nil, fmt.Errorf("list rollbacks: %w", err)
	}
	return out, nil
}

// SaveRollback writes the fields the rollback job and unlock change.
func (s *Store) SaveRollback(ctx context.Context, db DBTX, r *Rollback) error {
	if r.LockedResourceIDs == nil {
		r.LockedResourceIDs = []int64{}
	}
	_, err := db.Exec(ctx, `
		UPDATE rollbacks SET phase = $2, message = $3, expected_commit = $4, reconcile_token = $5,
			pin_resource_id = $6, original_source = $7, locked = $8, locked_resource_ids = $9,
			unlocked_at = $10, unlocked_by = $11, deadline_at = $12, updated_at = now(),
			finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'timed_out', 'cancelled') THEN COALESCE(finished_at, now()) END
		WHERE id = $1`,
		r.ID, r.Phase, r.Message, r.ExpectedCommit, r.ReconcileToken, r.PinResourceID, r.OriginalSource,
		r.Locked, r.LockedResourceIDs, r.UnlockedAt, r.UnlockedBy, r.DeadlineAt)
	if err != nil {
		return fmt.Errorf("save rollback %d: %w", r.ID, err)
	}
	return nil
}

// RestorableDeployments returns what an app of an environment can be rolled back to, newest
// first: every succeeded deployment with a commit that is the app's own (a UI deploy or an
// earlier rollback of it) or came straight from Git (a push may have changed the app).
// At most limit (DefaultLimit when 0); before > 0 continues after that deployment in this
// order (a deployment of another environment or app continues from its own place).
func (s *Store) RestorableDeployments(ctx context.Context, db DBTX, environmentID int64, app string, before int64, limit int) ([]Deployment, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM deployments
		WHERE environment_id = $1 AND status = 'succeeded' AND commit_sha <> ''
		  AND (app = $2 OR deployment_method = 'gitops-git')
		  AND ($3 = 0 OR (COALESCE(finished_at, updated_at), id) <
			(SELECT COALESCE(finished_at, updated_at), id FROM deployments WHERE id = $3))
		ORDER BY COALESCE(finished_at, updated_at) DESC, id DESC LIMIT $4`, environmentID, app, before, limitOr(limit))
	out, err := collectAll[Deployment](rows)
	if err != nil {
		return nil, fmt.Errorf("list restorable deployments: %w", err)
	}
	return out, nil
}

// LatestAppSpec returns the spec of the newest pushed gitops-ui deployment of an app in an
// environment: where the app lives in Git. ErrNotFound means fluxbridge never deployed it.
func (s *Store) LatestAppSpec(ctx context.Context, db DBTX, environmentID int64, app string) (*DeploymentSpec, error) {
	rows, _ := db.Query(ctx, `
		SELECT s.* FROM deployment_specs s JOIN deployments d ON d.id = s.deployment_id
		WHERE d.environment_id = $1 AND d.app = $2 AND s.pushed_at IS NOT NULL
		ORDER BY s.pushed_at DESC, s.deployment_id DESC LIMIT 1`, environmentID, app)
	d, err := collectOne[DeploymentSpec](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("deployments of %s", app))
	}
	return d, nil
}
