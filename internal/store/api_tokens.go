package store

import (
	"context"
	"fmt"
	"time"
)

// APIToken is one row of api_tokens, without its hash: nothing outside the store needs it.
type APIToken struct {
	ID         int64      `db:"id" json:"id"`
	UserID     int64      `db:"user_id" json:"user_id"`
	Name       string     `db:"name" json:"name"`
	Prefix     string     `db:"prefix" json:"prefix"`
	CreatedBy  *int64     `db:"created_by" json:"created_by"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	ExpiresAt  *time.Time `db:"expires_at" json:"expires_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at"`
}

const tokenCols = `id, user_id, name, prefix, created_by, created_at, expires_at, last_used_at, revoked_at`

// NewAPIToken holds what CreateToken needs. Hash is the SHA-256 of the token.
type NewAPIToken struct {
	UserID    int64
	Name      string
	Hash      []byte
	Prefix    string
	CreatedBy *int64
	ExpiresAt *time.Time
}

// CreateToken stores a token's hash for a user. A second token with the same hash, which only
// a broken random source could produce, is a unique violation.
func (s *Store) CreateToken(ctx context.Context, db DBTX, t NewAPIToken) (*APIToken, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO api_tokens (user_id, name, hash, prefix, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+tokenCols,
		t.UserID, t.Name, t.Hash, t.Prefix, t.CreatedBy, t.ExpiresAt)
	out, err := collectOne[APIToken](rows)
	if err != nil {
		return nil, fmt.Errorf("insert api token: %w", err)
	}
	return out, nil
}

// TokenOwner is a token together with the user it authenticates, as the authenticator needs.
type TokenOwner struct {
	APIToken
	Hash           []byte     `db:"hash" json:"-"`
	Username       string     `db:"username" json:"username"`
	IsAdmin        bool       `db:"is_admin" json:"is_admin"`
	UserDisabledAt *time.Time `db:"user_disabled_at" json:"user_disabled_at"`
}

// TokenByHash returns the token with the given SHA-256 and its user, whatever their state:
// the caller decides what a revoked or expired token or a disabled user means.
func (s *Store) TokenByHash(ctx context.Context, db DBTX, hash []byte) (*TokenOwner, error) {
	rows, _ := db.Query(ctx, `
		SELECT t.id, t.user_id, t.name, t.prefix, t.created_by, t.created_at, t.expires_at,
			t.last_used_at, t.revoked_at, t.hash, u.username, u.is_admin, u.disabled_at AS user_disabled_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.hash = $1`, hash)
	out, err := collectOne[TokenOwner](rows)
	if err != nil {
		return nil, notFound(err, "api token")
	}
	return out, nil
}

// TouchToken records that a token was used, at most once a minute per token, so that a busy
// client does not turn every request into a write.
func (s *Store) TouchToken(ctx context.Context, db DBTX, id int64) error {
	_, err := db.Exec(ctx, `
		UPDATE api_tokens SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, id)
	if err != nil {
		return fmt.Errorf("touch api token %d: %w", id, err)
	}
	return nil
}

// ListTokens returns a user's tokens, newest first, revoked and expired ones included: at most
// limit (DefaultLimit when 0) with an ID below before (0: from the newest).
func (s *Store) ListTokens(ctx context.Context, db DBTX, userID, before int64, limit int) ([]APIToken, error) {
	rows, _ := db.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = $1 AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, userID, before, limitOr(limit))
	out, err := collectAll[APIToken](rows)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return out, nil
}

// LockToken returns one of a user's tokens with its row locked; another user's token is
// ErrNotFound, so that callers cannot learn which token IDs exist.
func (s *Store) LockToken(ctx context.Context, db DBTX, userID, id int64) (*APIToken, error) {
	rows, _ := db.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE id = $1 AND user_id = $2 FOR UPDATE`, id, userID)
	out, err := collectOne[APIToken](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("api token %d", id))
	}
	return out, nil
}

// RevokeToken marks a token revoked now; revoking a revoked token keeps the first time.
func (s *Store) RevokeToken(ctx context.Context, db DBTX, id int64) (*APIToken, error) {
	rows, _ := db.Query(ctx, `
		UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING `+tokenCols, id)
	out, err := collectOne[APIToken](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("api token %d", id))
	}
	return out, nil
}

// ReviveToken makes the token with the given hash belong to userID again, unrevoked and without
// expiry, or stores it when it does not exist. Only the admin bootstrap uses it, to make a token
// file work again after its token was revoked or its admin disabled.
func (s *Store) ReviveToken(ctx context.Context, db DBTX, t NewAPIToken) (*APIToken, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO api_tokens (user_id, name, hash, prefix, created_by) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO UPDATE SET user_id = EXCLUDED.user_id, revoked_at = NULL, expires_at = NULL
		RETURNING `+tokenCols, t.UserID, t.Name, t.Hash, t.Prefix, t.CreatedBy)
	out, err := collectOne[APIToken](rows)
	if err != nil {
		return nil, fmt.Errorf("revive api token: %w", err)
	}
	return out, nil
}
