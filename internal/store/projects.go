package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// User is one row of users.
type User struct {
	ID          int64     `db:"id" json:"id"`
	Username    string    `db:"username" json:"username"`
	DisplayName string    `db:"display_name" json:"display_name"`
	Email       string    `db:"email" json:"email"`
	IsAdmin     bool      `db:"is_admin" json:"is_admin"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	// DisabledAt is set when the user may no longer sign in; their history stays.
	DisabledAt *time.Time `db:"disabled_at" json:"disabled_at"`
	// NotificationsReadThrough is the user's "mark all read" watermark: every notification
	// with an id up to it is read for them.
	NotificationsReadThrough int64 `db:"notifications_read_through" json:"-"`
}

// Project is one row of projects.
type Project struct {
	ID          int64     `db:"id" json:"id"`
	Slug        string    `db:"slug" json:"slug"`
	Name        string    `db:"name" json:"name"`
	Description string    `db:"description" json:"description"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
}

// Environment is one row of environments.
type Environment struct {
	ID           int64           `db:"id" json:"id"`
	ProjectID    int64           `db:"project_id" json:"project_id"`
	Name         string          `db:"name" json:"name"`
	Kind         string          `db:"kind" json:"kind"`
	Cluster      string          `db:"cluster" json:"cluster"`
	GitopsConfig json.RawMessage `db:"gitops_config" json:"gitops_config"`
	CreatedAt    time.Time       `db:"created_at" json:"created_at"`
}

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, db DBTX, u User) (*User, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO users (username, display_name, email, is_admin) VALUES ($1, $2, $3, $4) RETURNING *`,
		u.Username, u.DisplayName, u.Email, u.IsAdmin)
	out, err := collectOne[User](rows)
	if err != nil {
		return nil, fmt.Errorf("insert user: %w", err)
	}
	return out, nil
}

// CreateProject inserts a project.
func (s *Store) CreateProject(ctx context.Context, db DBTX, p Project) (*Project, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO projects (slug, name, description) VALUES ($1, $2, $3) RETURNING *`,
		p.Slug, p.Name, p.Description)
	out, err := collectOne[Project](rows)
	if err != nil {
		return nil, fmt.Errorf("insert project: %w", err)
	}
	return out, nil
}

// AddMember gives a user a role in a project (or changes it).
func (s *Store) AddMember(ctx context.Context, db DBTX, projectID, userID int64, role string) error {
	_, err := db.Exec(ctx, `
		INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role`, projectID, userID, role)
	if err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	return nil
}

// CreateEnvironment inserts an environment.
func (s *Store) CreateEnvironment(ctx context.Context, db DBTX, e Environment) (*Environment, error) {
	if len(e.GitopsConfig) == 0 {
		e.GitopsConfig = json.RawMessage(`{}`)
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO environments (project_id, name, kind, cluster, gitops_config) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
		e.ProjectID, e.Name, e.Kind, e.Cluster, e.GitopsConfig)
	out, err := collectOne[Environment](rows)
	if err != nil {
		return nil, fmt.Errorf("insert environment: %w", err)
	}
	return out, nil
}

// EnvironmentByID returns one environment.
func (s *Store) EnvironmentByID(ctx context.Context, db DBTX, id int64) (*Environment, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM environments WHERE id = $1`, id)
	e, err := collectOne[Environment](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("environment %d", id))
	}
	return e, nil
}

// ProjectBySlug returns the project with the given slug.
func (s *Store) ProjectBySlug(ctx context.Context, db DBTX, slug string) (*Project, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM projects WHERE slug = $1`, slug)
	p, err := collectOne[Project](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("project %q", slug))
	}
	return p, nil
}

// ListProjects returns projects by slug; with userID > 0, only those the user is a member of:
// at most limit (DefaultLimit when 0), those after the slug after ("": from the first).
func (s *Store) ListProjects(ctx context.Context, db DBTX, userID int64, after string, limit int) ([]Project, error) {
	rows, _ := db.Query(ctx, `
		SELECT p.* FROM projects p
		WHERE ($1 = 0 OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = $1))
		  AND ($2 = '' OR p.slug > $2)
		ORDER BY p.slug LIMIT $3`, userID, after, limitOr(limit))
	out, err := collectAll[Project](rows)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return out, nil
}

// AllProjects returns every project by slug (with userID > 0, those the user is a member of),
// reading them a page at a time.
func (s *Store) AllProjects(ctx context.Context, db DBTX, userID int64) ([]Project, error) {
	return readAll(func(last *Project, limit int) ([]Project, error) {
		after := ""
		if last != nil {
			after = last.Slug
		}
		return s.ListProjects(ctx, db, userID, after, limit)
	})
}

// EnvironmentByName returns a project's environment by name.
func (s *Store) EnvironmentByName(ctx context.Context, db DBTX, projectID int64, name string) (*Environment, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM environments WHERE project_id = $1 AND name = $2`, projectID, name)
	e, err := collectOne[Environment](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("environment %q", name))
	}
	return e, nil
}

// ListEnvironments returns a project's environments by name: at most limit (DefaultLimit when
// 0) named after after ("": from the first).
func (s *Store) ListEnvironments(ctx context.Context, db DBTX, projectID int64, after string, limit int) ([]Environment, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM environments WHERE project_id = $1 AND ($2 = '' OR name > $2)
		ORDER BY name LIMIT $3`, projectID, after, limitOr(limit))
	out, err := collectAll[Environment](rows)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	return out, nil
}

// ProjectEnvironments returns every environment of a project by name, reading them a page at a
// time: for the pages and checks that name them all (filters, the overview).
func (s *Store) ProjectEnvironments(ctx context.Context, db DBTX, projectID int64) ([]Environment, error) {
	return readAll(func(last *Environment, limit int) ([]Environment, error) {
		after := ""
		if last != nil {
			after = last.Name
		}
		return s.ListEnvironments(ctx, db, projectID, after, limit)
	})
}

// AllEnvironments returns every environment of every project by project and name, reading
// them a page at a time: for the isolation checks, which compare each with all the others.
func (s *Store) AllEnvironments(ctx context.Context, db DBTX) ([]Environment, error) {
	return readAll(func(last *Environment, limit int) ([]Environment, error) {
		var a Environment
		if last != nil {
			a = *last
		}
		rows, _ := db.Query(ctx, `SELECT * FROM environments WHERE (project_id, name) > ($1, $2)
			ORDER BY project_id, name LIMIT $3`, a.ProjectID, a.Name, limit)
		out, err := collectAll[Environment](rows)
		if err != nil {
			return nil, fmt.Errorf("list environments: %w", err)
		}
		return out, nil
	})
}
