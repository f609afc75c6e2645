package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// RepositoryByName returns a project's repository by name.
func (s *Store) RepositoryByName(ctx context.Context, db DBTX, projectID int64, name string) (*Repository, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM repositories WHERE project_id = $1 AND name = $2`, projectID, name)
	r, err := collectOne[Repository](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("repository %q", name))
	}
	return r, nil
}

// LockRepository returns a repository with its row locked until the transaction ends.
func (s *Store) LockRepository(ctx context.Context, db DBTX, id int64) (*Repository, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM repositories WHERE id = $1 FOR UPDATE`, id)
	r, err := collectOne[Repository](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("repository %d", id))
	}
	return r, nil
}

// UpdateRepositoryGitops sets whether GitOps is enabled on a repository and its gitops_config.
func (s *Store) UpdateRepositoryGitops(ctx context.Context, db DBTX, id int64, enabled bool, config json.RawMessage) (*Repository, error) {
	rows, _ := db.Query(ctx, `
		UPDATE repositories SET gitops_enabled = $2, gitops_config = $3, updated_at = now()
		WHERE id = $1 RETURNING *`, id, enabled, config)
	r, err := collectOne[Repository](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("repository %d", id))
	}
	return r, nil
}

// UpdateRepositoryAuth sets a repository's auth type and credential reference ("" with
// auth type none).
func (s *Store) UpdateRepositoryAuth(ctx context.Context, db DBTX, id int64, authType, credentialRef string) (*Repository, error) {
	rows, _ := db.Query(ctx, `
		UPDATE repositories SET auth_type = $2, credential_ref = $3, updated_at = now()
		WHERE id = $1 RETURNING *`, id, authType, credentialRef)
	r, err := collectOne[Repository](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("repository %d", id))
	}
	return r, nil
}
