package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// DeployTemplate is one row of deploy_templates: a project's saved, partial deploy form, and
// the Flux side it carries (Flux: settings of the environment's GitRepository and
// Kustomization, a helm-app's HelmRelease), "{}" for none.
type DeployTemplate struct {
	ID          int64           `db:"id" json:"id"`
	ProjectID   int64           `db:"project_id" json:"project_id"`
	Name        string          `db:"name" json:"name"`
	Description string          `db:"description" json:"description"`
	Kind        string          `db:"kind" json:"kind"`
	Form        json.RawMessage `db:"form" json:"form"`
	Flux        json.RawMessage `db:"flux" json:"flux"`
	CreatedBy   *int64          `db:"created_by" json:"created_by"`
	CreatedAt   time.Time       `db:"created_at" json:"created_at"`
}

// CreateDeployTemplate inserts a template; a name taken in the project is a unique violation
// of deploy_templates_project_id_name_key.
func (s *Store) CreateDeployTemplate(ctx context.Context, db DBTX, t DeployTemplate) (*DeployTemplate, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO deploy_templates (project_id, name, description, kind, form, flux, created_by)
		VALUES ($1, $2, $3, $4, $5, coalesce($6, '{}'::jsonb), $7) RETURNING *`,
		t.ProjectID, t.Name, t.Description, t.Kind, t.Form, t.Flux, t.CreatedBy)
	out, err := collectOne[DeployTemplate](rows)
	if err != nil {
		return nil, fmt.Errorf("insert deploy template: %w", err)
	}
	return out, nil
}

// DeployTemplateByName returns a project's template by name.
func (s *Store) DeployTemplateByName(ctx context.Context, db DBTX, projectID int64, name string) (*DeployTemplate, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM deploy_templates WHERE project_id = $1 AND name = $2`, projectID, name)
	t, err := collectOne[DeployTemplate](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("template %q", name))
	}
	return t, nil
}

// ListDeployTemplates returns a project's templates by name: at most limit (DefaultLimit when
// 0) named after after ("": from the first).
func (s *Store) ListDeployTemplates(ctx context.Context, db DBTX, projectID int64, after string, limit int) ([]DeployTemplate, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM deploy_templates WHERE project_id = $1 AND ($2 = '' OR name > $2)
		ORDER BY name LIMIT $3`, projectID, after, limitOr(limit))
	out, err := collectAll[DeployTemplate](rows)
	if err != nil {
		return nil, fmt.Errorf("list deploy templates: %w", err)
	}
	return out, nil
}

// DeleteDeployTemplate deletes a project's template by name and returns it; ErrNotFound when
// there is none. Deployments made from it keep their forms.
func (s *Store) DeleteDeployTemplate(ctx context.Context, db DBTX, projectID int64, name string) (*DeployTemplate, error) {
	rows, _ := db.Query(ctx, `DELETE FROM deploy_templates WHERE project_id = $1 AND name = $2 RETURNING *`, projectID, name)
	t, err := collectOne[DeployTemplate](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("template %q", name))
	}
	return t, nil
}
