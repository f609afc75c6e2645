package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Member is a user's membership of a project, with the user's names for display.
type Member struct {
	ProjectID   int64     `db:"project_id" json:"project_id"`
	UserID      int64     `db:"user_id" json:"user_id"`
	Username    string    `db:"username" json:"username"`
	DisplayName string    `db:"display_name" json:"display_name"`
	Role        string    `db:"role" json:"role"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
}

// MemberRole returns a user's role in a project, or "" when they are not a member.
func (s *Store) MemberRole(ctx context.Context, db DBTX, projectID, userID int64) (string, error) {
	var role string
	err := db.QueryRow(ctx, `SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2`,
		projectID, userID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read member role: %w", err)
	}
	return role, nil
}

// ListMembers returns a project's members by username: at most limit (DefaultLimit when 0),
// those after the username after ("": from the first).
func (s *Store) ListMembers(ctx context.Context, db DBTX, projectID int64, after string, limit int) ([]Member, error) {
	rows, _ := db.Query(ctx, `
		SELECT m.project_id, m.user_id, u.username, u.display_name, m.role, m.created_at
		FROM project_members m JOIN users u ON u.id = m.user_id
		WHERE m.project_id = $1 AND ($2 = '' OR u.username > $2) ORDER BY u.username LIMIT $3`, projectID, after, limitOr(limit))
	out, err := collectAll[Member](rows)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return out, nil
}

// LockProjectMembers locks a project's row so that membership changes of the project run one at
// a time; it returns how many owners the project has now.
func (s *Store) LockProjectMembers(ctx context.Context, db DBTX, projectID int64) (owners int, err error) {
	if _, err := db.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, projectID); err != nil {
		return 0, fmt.Errorf("lock project %d: %w", projectID, err)
	}
	err = db.QueryRow(ctx, `SELECT count(*) FROM project_members WHERE project_id = $1 AND role = 'owner'`,
		projectID).Scan(&owners)
	if err != nil {
		return 0, fmt.Errorf("count owners: %w", err)
	}
	return owners, nil
}

// RemoveMember removes a user from a project and returns the role they had; a non-member is
// ErrNotFound.
func (s *Store) RemoveMember(ctx context.Context, db DBTX, projectID, userID int64) (string, error) {
	var role string
	err := db.QueryRow(ctx, `DELETE FROM project_members WHERE project_id = $1 AND user_id = $2 RETURNING role`,
		projectID, userID).Scan(&role)
	if err != nil {
		return "", notFound(err, fmt.Sprintf("member %d of project %d", userID, projectID))
	}
	return role, nil
}

// UpdateProject writes a project's name and description.
func (s *Store) UpdateProject(ctx context.Context, db DBTX, p Project) (*Project, error) {
	rows, _ := db.Query(ctx, `UPDATE projects SET name = $2, description = $3 WHERE id = $1 RETURNING *`,
		p.ID, p.Name, p.Description)
	out, err := collectOne[Project](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("project %d", p.ID))
	}
	return out, nil
}
