package store

import (
	"context"
	"fmt"
	"time"
)

// Notification is one in-app notification. A nil UserID addresses every project member.
type Notification struct {
	ID            int64      `db:"id" json:"id"`
	ProjectID     *int64     `db:"project_id" json:"project_id"`
	EnvironmentID *int64     `db:"environment_id" json:"environment_id"`
	UserID        *int64     `db:"user_id" json:"user_id"`
	Severity      string     `db:"severity" json:"severity"`
	Title         string     `db:"title" json:"title"`
	Body          string     `db:"body" json:"body"`
	TargetType    string     `db:"target_type" json:"target_type"`
	TargetID      string     `db:"target_id" json:"target_id"`
	CreatedAt     time.Time  `db:"created_at" json:"created_at"`
	ReadAt        *time.Time `db:"read_at" json:"read_at"`
}

// InsertNotification stores a notification and returns its ID.
func (s *Store) InsertNotification(ctx context.Context, db DBTX, n Notification) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, `
		INSERT INTO notifications (project_id, environment_id, user_id, severity, title, body, target_type, target_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		n.ProjectID, n.EnvironmentID, n.UserID, n.Severity, n.Title, n.Body, n.TargetType, n.TargetID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert notification: %w", err)
	}
	return id, nil
}

// ListNotifications returns a project's notifications newest first (all projects when 0).
func (s *Store) ListNotifications(ctx context.Context, db DBTX, projectID int64, limit int) ([]Notification, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM notifications WHERE ($1 = 0 OR project_id = $1) ORDER BY id DESC LIMIT $2`, projectID, limit)
	out, err := collectAll[Notification](rows)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return out, nil
}
