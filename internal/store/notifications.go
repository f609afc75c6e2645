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

// ListNotifications returns a project's notifications newest first (all projects when 0): at
// most limit (DefaultLimit when 0) with an ID below before (0: from the newest).
func (s *Store) ListNotifications(ctx context.Context, db DBTX, projectID, before int64, limit int) ([]Notification, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM notifications WHERE ($1 = 0 OR project_id = $1) AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, projectID, before, limitOr(limit))
	out, err := collectAll[Notification](rows)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return out, nil
}

// InboxNotification is a notification as one user sees it: with its project and whether that
// user has read it.
type InboxNotification struct {
	Notification
	ProjectSlug *string `db:"project_slug" json:"project_slug"`
	ProjectName *string `db:"project_name" json:"project_name"`
	Read        bool    `db:"read" json:"read"`
}

// NotificationQuery selects a user's notifications.
type NotificationQuery struct {
	UserID int64
	// Admin sees every project's notifications and those of no project; anyone else those of
	// the projects they are a member of and those addressed to them.
	Admin      bool
	UnreadOnly bool
	// Before pages: only notifications with a smaller id (0: from the newest).
	Before int64
	Limit  int
}

// visibleNotification is the condition, on notifications n, that user $1 (admin when $2) may
// see n.
const visibleNotification = `(n.user_id = $1 OR n.user_id IS NULL AND
	($2 OR n.project_id IN (SELECT project_id FROM project_members WHERE user_id = $1)))`

// readNotification is the condition that user $1 (users u) has read n.
const readNotification = `(n.id <= u.notifications_read_through OR EXISTS (
	SELECT 1 FROM notification_reads r WHERE r.user_id = $1 AND r.notification_id = n.id))`

// UserNotifications returns the notifications q's user may see, newest first, and how many of
// all of them (not only this page) are unread.
func (s *Store) UserNotifications(ctx context.Context, db DBTX, q NotificationQuery) ([]InboxNotification, int, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	rows, _ := db.Query(ctx, `
		SELECT n.*, p.slug AS project_slug, p.name AS project_name, `+readNotification+` AS read
		FROM notifications n JOIN users u ON u.id = $1 LEFT JOIN projects p ON p.id = n.project_id
		WHERE `+visibleNotification+` AND (NOT $3 OR NOT `+readNotification+`) AND ($4 = 0 OR n.id < $4)
		ORDER BY n.id DESC LIMIT $5`, q.UserID, q.Admin, q.UnreadOnly, q.Before, q.Limit)
	items, err := collectAll[InboxNotification](rows)
	if err != nil {
		return nil, 0, fmt.Errorf("list notifications: %w", err)
	}
	unread, err := s.UnreadNotifications(ctx, db, q.UserID, q.Admin)
	return items, unread, err
}

// UnreadNotifications counts the notifications user may see and has not read.
func (s *Store) UnreadNotifications(ctx context.Context, db DBTX, userID int64, admin bool) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT count(*) FROM notifications n JOIN users u ON u.id = $1
		WHERE n.id > u.notifications_read_through AND `+visibleNotification+` AND NOT `+readNotification,
		userID, admin).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count unread notifications: %w", err)
	}
	return n, nil
}

// MarkNotificationsRead marks ids read for the user and returns those of them the user may not
// see (or that do not exist), which it leaves alone.
func (s *Store) MarkNotificationsRead(ctx context.Context, db DBTX, userID int64, admin bool, ids []int64) ([]int64, error) {
	rows, _ := db.Query(ctx, `
		WITH seen AS (
			SELECT n.id FROM notifications n WHERE n.id = ANY($3) AND `+visibleNotification+`
		), ins AS (
			INSERT INTO notification_reads (user_id, notification_id) SELECT $1, id FROM seen
			ON CONFLICT DO NOTHING
		)
		SELECT id FROM unnest($3::bigint[]) AS want(id) WHERE id NOT IN (SELECT id FROM seen)`,
		userID, admin, ids)
	missing, err := collectInt64(rows)
	if err != nil {
		return nil, fmt.Errorf("mark notifications read: %w", err)
	}
	return missing, nil
}

// MarkAllNotificationsRead marks every notification the user may see read, up to the newest
// one now, and returns how many were unread.
func (s *Store) MarkAllNotificationsRead(ctx context.Context, db DBTX, userID int64, admin bool) (int, error) {
	unread, err := s.UnreadNotifications(ctx, db, userID, admin)
	if err != nil {
		return 0, err
	}
	if _, err := db.Exec(ctx, `
		UPDATE users SET notifications_read_through = greatest(notifications_read_through,
			(SELECT coalesce(max(id), 0) FROM notifications)) WHERE id = $1`, userID); err != nil {
		return 0, fmt.Errorf("mark notifications read: %w", err)
	}
	if _, err := db.Exec(ctx, `
		DELETE FROM notification_reads r USING users u
		WHERE r.user_id = $1 AND u.id = $1 AND r.notification_id <= u.notifications_read_through`, userID); err != nil {
		return 0, fmt.Errorf("mark notifications read: %w", err)
	}
	return unread, nil
}
