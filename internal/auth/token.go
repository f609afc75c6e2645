package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TokenPrefix starts every API token, so that people and secret scanners recognise one.
const TokenPrefix = "fxb_"

const (
	tokenBytes     = 32                                                                 // 256 bits of randomness
	tokenLen       = len(TokenPrefix) + (tokenBytes*8+5)/6                              // 4 + 43 characters
	displayLen     = len(TokenPrefix) + 8                                               // what lists show: fxb_ and 8 characters
	tokenAlphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" // base64url
	bearerScheme   = "bearer "
	maxHeaderToken = 256 // longer Authorization values are not ours; do not hash them
	touchInterval  = time.Minute
)

// NewToken returns a fresh random API token and its SHA-256. The token is shown to its owner
// once; only the hash is stored.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("read random token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of a token, the form in which it is stored and looked up.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// DisplayPrefix returns the first characters of a token, which identify it in lists without
// revealing it.
func DisplayPrefix(token string) string {
	if len(token) < displayLen {
		return token
	}
	return token[:displayLen]
}

// IsToken tells whether s has the shape of an API token: the prefix and 43 base64url characters.
func IsToken(s string) bool {
	if len(s) != tokenLen || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	for _, c := range s[len(TokenPrefix):] {
		if !strings.ContainsRune(tokenAlphabet, c) {
			return false
		}
	}
	return true
}

// TokenAuthenticator authenticates "Authorization: Bearer fxb_…" requests against api_tokens.
type TokenAuthenticator struct {
	store *store.Store
}

// NewTokenAuthenticator returns an authenticator that looks tokens up in st.
func NewTokenAuthenticator(st *store.Store) *TokenAuthenticator {
	return &TokenAuthenticator{store: st}
}

// Authenticate implements Authenticator. A request without a bearer token of our shape is
// ErrNoCredentials; an unknown, revoked or expired token, or one whose user is disabled, is a
// *CredentialError. A successful call records the token's last use (at most once a minute).
func (a *TokenAuthenticator) Authenticate(r *http.Request) (*Principal, error) {
	h := r.Header.Get("Authorization")
	if len(h) > maxHeaderToken || len(h) < len(bearerScheme) || !strings.EqualFold(h[:len(bearerScheme)], bearerScheme) {
		return nil, ErrNoCredentials
	}
	token := strings.TrimSpace(h[len(bearerScheme):])
	if !IsToken(token) {
		return nil, ErrNoCredentials
	}
	hash := HashToken(token)
	ctx := r.Context()
	t, err := a.store.TokenByHash(ctx, a.store.Pool(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &CredentialError{Reason: "invalid API token"}
	}
	if err != nil {
		return nil, fmt.Errorf("look up api token: %w", err)
	}
	// The lookup was by hash; compare again in constant time so that no code path ever
	// branches on a partial match of secret material.
	if subtle.ConstantTimeCompare(t.Hash, hash) != 1 {
		return nil, &CredentialError{Reason: "invalid API token"}
	}
	switch {
	case t.RevokedAt != nil:
		return nil, &CredentialError{Reason: fmt.Sprintf("API token %s was revoked at %s", t.Prefix, t.RevokedAt.UTC().Format(time.RFC3339))}
	case t.ExpiresAt != nil && !time.Now().Before(*t.ExpiresAt):
		return nil, &CredentialError{Reason: fmt.Sprintf("API token %s expired at %s", t.Prefix, t.ExpiresAt.UTC().Format(time.RFC3339))}
	case t.UserDisabledAt != nil:
		return nil, &CredentialError{Reason: fmt.Sprintf("user %s is disabled", t.Username)}
	}
	// Recording every use would turn each request into a write; once a minute is enough, and
	// checking here first spares the round trip.
	if t.LastUsedAt == nil || time.Since(*t.LastUsedAt) > touchInterval {
		if err := a.store.TouchToken(ctx, a.store.Pool(), t.ID); err != nil {
			return nil, err
		}
	}
	return &Principal{UserID: t.UserID, Username: t.Username, Admin: t.IsAdmin, TokenID: t.ID, Method: MethodToken}, nil
}
