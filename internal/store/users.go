package store

import (
	"context"
	"fmt"
)

// UserByID returns one user, disabled or not.
func (s *Store) UserByID(ctx context.Context, db DBTX, id int64) (*User, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM users WHERE id = $1`, id)
	u, err := collectOne[User](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("user %d", id))
	}
	return u, nil
}

// UserByUsername returns the user with the given username, disabled or not.
func (s *Store) UserByUsername(ctx context.Context, db DBTX, username string) (*User, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM users WHERE username = $1`, username)
	u, err := collectOne[User](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("user %q", username))
	}
	return u, nil
}

// LockUser returns a user with its row locked until the transaction ends.
func (s *Store) LockUser(ctx context.Context, db DBTX, id int64) (*User, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM users WHERE id = $1 FOR UPDATE`, id)
	u, err := collectOne[User](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("user %d", id))
	}
	return u, nil
}

// ListUsers returns users by username: at most limit (DefaultLimit when 0), those after the
// username after ("": from the first).
func (s *Store) ListUsers(ctx context.Context, db DBTX, after string, limit int) ([]User, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM users WHERE $1 = '' OR username > $1 ORDER BY username LIMIT $2`, after, limitOr(limit))
	out, err := collectAll[User](rows)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser writes a user's profile, admin flag and disabled time (nil enables them).
func (s *Store) UpdateUser(ctx context.Context, db DBTX, u User) (*User, error) {
	rows, _ := db.Query(ctx, `
		UPDATE users SET display_name = $2, email = $3, is_admin = $4, disabled_at = $5
		WHERE id = $1 RETURNING *`, u.ID, u.DisplayName, u.Email, u.IsAdmin, u.DisabledAt)
	out, err := collectOne[User](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("user %d", u.ID))
	}
	return out, nil
}

// CountActiveAdmins counts the admins who are not disabled.
func (s *Store) CountActiveAdmins(ctx context.Context, db DBTX) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM users WHERE is_admin AND disabled_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}

// EnsureAdmin makes username an enabled admin, creating the user when it does not exist.
func (s *Store) EnsureAdmin(ctx context.Context, db DBTX, username string) (*User, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO users (username, display_name, is_admin) VALUES ($1, 'Administrator', true)
		ON CONFLICT (username) DO UPDATE SET is_admin = true, disabled_at = NULL
		RETURNING *`, username)
	u, err := collectOne[User](rows)
	if err != nil {
		return nil, fmt.Errorf("ensure admin %q: %w", username, err)
	}
	return u, nil
}
