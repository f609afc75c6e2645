package store

import (
	"context"
	"fmt"
	"time"
)

// PasswordHash returns a user's password hash (a PHC string), or ErrNotFound when they have none.
func (s *Store) PasswordHash(ctx context.Context, db DBTX, userID int64) (string, error) {
	var h string
	err := db.QueryRow(ctx, `SELECT hash FROM user_passwords WHERE user_id = $1`, userID).Scan(&h)
	if err != nil {
		return "", notFound(err, fmt.Sprintf("password of user %d", userID))
	}
	return h, nil
}

// SetPasswordHash sets a user's password hash and revokes every session they have open, so that
// a password change signs out every other browser.
func (s *Store) SetPasswordHash(ctx context.Context, db DBTX, userID int64, hash string) error {
	if _, err := db.Exec(ctx, `
		INSERT INTO user_passwords (user_id, hash) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, set_at = now()`, userID, hash); err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return s.RevokeUserSessions(ctx, db, userID)
}

// Session is one signed-in browser, without its hash.
type Session struct {
	ID            int64      `db:"id" json:"id"`
	UserID        int64      `db:"user_id" json:"user_id"`
	CreatedAt     time.Time  `db:"created_at" json:"created_at"`
	LastSeenAt    time.Time  `db:"last_seen_at" json:"last_seen_at"`
	IdleExpiresAt time.Time  `db:"idle_expires_at" json:"idle_expires_at"`
	ExpiresAt     time.Time  `db:"expires_at" json:"expires_at"`
	RevokedAt     *time.Time `db:"revoked_at" json:"revoked_at"`
	UserAgent     string     `db:"user_agent" json:"user_agent"`
	SourceIP      string     `db:"source_ip" json:"source_ip"`
}

const sessionCols = `id, user_id, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, user_agent, source_ip`

// NewSession holds what CreateSession needs. Hash is the SHA-256 of the cookie's value.
type NewSession struct {
	UserID    int64
	Hash      []byte
	Idle      time.Duration
	Absolute  time.Duration
	UserAgent string
	SourceIP  string
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, db DBTX, n NewSession) (*Session, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO sessions (hash, user_id, idle_expires_at, expires_at, user_agent, source_ip)
		VALUES ($1, $2, now() + make_interval(secs => $3), now() + make_interval(secs => $4), $5, $6)
		RETURNING `+sessionCols,
		n.Hash, n.UserID, n.Idle.Seconds(), n.Absolute.Seconds(), n.UserAgent, n.SourceIP)
	out, err := collectOne[Session](rows)
	if err != nil {
		return nil, fmt.Errorf("insert session: %w", err)
	}
	return out, nil
}

// SessionOwner is a session together with its user, as the authenticator needs.
type SessionOwner struct {
	Session
	Username       string     `db:"username"`
	IsAdmin        bool       `db:"is_admin"`
	UserDisabledAt *time.Time `db:"user_disabled_at"`
	Now            time.Time  `db:"now"`
}

// SessionByHash returns the session with the given SHA-256 and its user, whatever their state,
// with the database's clock: the caller decides what an expired session means.
func (s *Store) SessionByHash(ctx context.Context, db DBTX, hash []byte) (*SessionOwner, error) {
	rows, _ := db.Query(ctx, `
		SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.idle_expires_at, s.expires_at, s.revoked_at,
		       s.user_agent, s.source_ip, u.username, u.is_admin, u.disabled_at AS user_disabled_at, now() AS now
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = $1`, hash)
	out, err := collectOne[SessionOwner](rows)
	if err != nil {
		return nil, notFound(err, "session")
	}
	return out, nil
}

// TouchSession records a use of a session and moves its idle expiry on, never past its
// absolute expiry.
func (s *Store) TouchSession(ctx context.Context, db DBTX, id int64, idle time.Duration) error {
	_, err := db.Exec(ctx, `
		UPDATE sessions SET last_seen_at = now(),
		       idle_expires_at = least(expires_at, now() + make_interval(secs => $2))
		WHERE id = $1 AND revoked_at IS NULL`, id, idle.Seconds())
	if err != nil {
		return fmt.Errorf("touch session %d: %w", id, err)
	}
	return nil
}

// RevokeSession ends one session (sign-out). Revoking a revoked session changes nothing.
func (s *Store) RevokeSession(ctx context.Context, db DBTX, id int64) error {
	_, err := db.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("revoke session %d: %w", id, err)
	}
	return nil
}

// RevokeUserSessions ends every open session of a user.
func (s *Store) RevokeUserSessions(ctx context.Context, db DBTX, userID int64) error {
	_, err := db.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, userID)
	if err != nil {
		return fmt.Errorf("revoke sessions of user %d: %w", userID, err)
	}
	return nil
}

// CreatePasswordLink stores a one-time password link's hash for a user.
func (s *Store) CreatePasswordLink(ctx context.Context, db DBTX, userID int64, hash []byte, createdBy *int64, ttl time.Duration) (time.Time, error) {
	var exp time.Time
	err := db.QueryRow(ctx, `
		INSERT INTO password_links (hash, user_id, created_by, expires_at)
		VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
		hash, userID, createdBy, ttl.Seconds()).Scan(&exp)
	if err != nil {
		return time.Time{}, fmt.Errorf("insert password link: %w", err)
	}
	return exp, nil
}

// PasswordLinkUser returns the user a usable (unused, unexpired) password link is for, locking
// the link; ErrNotFound for any other link.
func (s *Store) PasswordLinkUser(ctx context.Context, db DBTX, hash []byte) (linkID, userID int64, err error) {
	err = db.QueryRow(ctx, `
		SELECT id, user_id FROM password_links
		WHERE hash = $1 AND used_at IS NULL AND expires_at > now() FOR UPDATE`, hash).Scan(&linkID, &userID)
	if err != nil {
		return 0, 0, notFound(err, "password link")
	}
	return linkID, userID, nil
}

// UsePasswordLink marks a link used, so that it works once.
func (s *Store) UsePasswordLink(ctx context.Context, db DBTX, linkID int64) error {
	if _, err := db.Exec(ctx, `UPDATE password_links SET used_at = now() WHERE id = $1`, linkID); err != nil {
		return fmt.Errorf("use password link %d: %w", linkID, err)
	}
	return nil
}
