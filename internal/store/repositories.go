package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Repository sync statuses (repositories.flux_sync_status).
const (
	SyncUnknown = "unknown"
	SyncSyncing = "syncing"
	SyncSynced  = "synced"
	SyncFailed  = "failed"
)

// Repository is one row of repositories. CredentialRef points into the secret store; the
// secret itself is never in the database.
type Repository struct {
	ID                 int64           `db:"id" json:"id"`
	ProjectID          int64           `db:"project_id" json:"project_id"`
	Name               string          `db:"name" json:"name"`
	URL                string          `db:"url" json:"url"`
	AuthType           string          `db:"auth_type" json:"auth_type"`
	CredentialRef      string          `db:"credential_ref" json:"credential_ref"`
	GitopsEnabled      bool            `db:"gitops_enabled" json:"gitops_enabled"`
	GitopsConfig       json.RawMessage `db:"gitops_config" json:"gitops_config"`
	FluxSyncStatus     string          `db:"flux_sync_status" json:"flux_sync_status"`
	FluxSyncMessage    string          `db:"flux_sync_message" json:"flux_sync_message"`
	LastSyncedRevision string          `db:"last_synced_revision" json:"last_synced_revision"`
	LastSyncedAt       *time.Time      `db:"last_synced_at" json:"last_synced_at"`
	CreatedAt          time.Time       `db:"created_at" json:"created_at"`
	UpdatedAt          time.Time       `db:"updated_at" json:"updated_at"`
}

// NewRepository holds what CreateRepository needs.
type NewRepository struct {
	ProjectID     int64
	Name          string
	URL           string
	AuthType      string
	CredentialRef string
	GitopsEnabled bool
	GitopsConfig  json.RawMessage
}

// CreateRepository inserts a repository.
func (s *Store) CreateRepository(ctx context.Context, db DBTX, r NewRepository) (*Repository, error) {
	if r.AuthType == "" {
		r.AuthType = "none"
	}
	if len(r.GitopsConfig) == 0 {
		r.GitopsConfig = json.RawMessage(`{}`)
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO repositories (project_id, name, url, auth_type, credential_ref, gitops_enabled, gitops_config)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
		r.ProjectID, r.Name, r.URL, r.AuthType, r.CredentialRef, r.GitopsEnabled, r.GitopsConfig)
	out, err := collectOne[Repository](rows)
	if err != nil {
		return nil, fmt.Errorf("insert repository: %w", err)
	}
	return out, nil
}

// RepositoryByID returns one repository.
func (s *Store) RepositoryByID(ctx context.Context, db DBTX, id int64) (*Repository, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM repositories WHERE id = $1`, id)
	r, err := collectOne[Repository](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("repository %d", id))
	}
	return r, nil
}

// ListRepositories returns a project's repositories by name: at most limit (DefaultLimit when
// 0) named after after ("": from the first).
func (s *Store) ListRepositories(ctx context.Context, db DBTX, projectID int64, after string, limit int) ([]Repository, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM repositories WHERE project_id = $1 AND ($2 = '' OR name > $2)
		ORDER BY name LIMIT $3`, projectID, after, limitOr(limit))
	out, err := collectAll[Repository](rows)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}

// AllRepositories returns every repository of a project (of every project when projectID is
// 0) by project and name, reading them a page at a time: for the checks that must see them all.
func (s *Store) AllRepositories(ctx context.Context, db DBTX, projectID int64) ([]Repository, error) {
	return readAll(func(last *Repository, limit int) ([]Repository, error) {
		var a Repository
		if last != nil {
			a = *last
		}
		rows, _ := db.Query(ctx, `SELECT * FROM repositories WHERE ($1 = 0 OR project_id = $1)
			AND (project_id, name) > ($2, $3) ORDER BY project_id, name LIMIT $4`, projectID, a.ProjectID, a.Name, limit)
		out, err := collectAll[Repository](rows)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		return out, nil
	})
}

// ApplyRepositorySync records a Flux source observation of a repository unless a newer one is
// stored. A status of synced also moves the last synced revision and time.
func (s *Store) ApplyRepositorySync(ctx context.Context, db DBTX, id int64, status, message, revision string, at time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `
		UPDATE repositories SET
			flux_sync_status     = $2,
			flux_sync_message    = $3,
			last_synced_revision = CASE WHEN $2 = 'synced' AND $4 <> '' THEN $4 ELSE last_synced_revision END,
			last_synced_at       = CASE WHEN $2 = 'synced' THEN $5 ELSE last_synced_at END,
			updated_at           = now()
		WHERE id = $1 AND (last_synced_at IS NULL OR last_synced_at < $5
			OR (last_synced_at = $5 AND $2 <> 'syncing')
			OR last_synced_at > now() + $6::interval)`,
		id, status, message, revision, at, MaxClockSkew)
	if err != nil {
		return false, fmt.Errorf("update sync status of repository %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
