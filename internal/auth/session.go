package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// MethodSession is a browser signed in to the console with a password.
const MethodSession Method = "session"

// SessionCookie names the console's session cookie. The __Host- prefix (when served over TLS)
// pins it to this host and path "/", so that a sibling subdomain cannot plant one.
const (
	SessionCookie       = "fluxbridge_session"
	secureSessionCookie = "__Host-fluxbridge_session"
)

// Session lifetimes: a session ends after IdleTimeout without use or after Lifetime whatever happens.
const (
	DefaultIdleTimeout = 8 * time.Hour
	DefaultLifetime    = 7 * 24 * time.Hour
	sessionTouch       = time.Minute
	sessionBytes       = 32
)

// Sessions signs people in with passwords and authenticates their browsers by cookie.
type Sessions struct {
	Store *store.Store
	// Idle and Lifetime default to DefaultIdleTimeout and DefaultLifetime.
	Idle, Lifetime time.Duration
	// Secure marks cookies Secure (and __Host-) even on plain-HTTP requests, for a receiver
	// behind a TLS-terminating proxy.
	Secure bool
}

func (s *Sessions) idle() time.Duration {
	if s.Idle > 0 {
		return s.Idle
	}
	return DefaultIdleTimeout
}

func (s *Sessions) lifetime() time.Duration {
	if s.Lifetime > 0 {
		return s.Lifetime
	}
	return DefaultLifetime
}

func (s *Sessions) secure(r *http.Request) bool { return s.Secure || r.TLS != nil }

func (s *Sessions) cookieName(r *http.Request) string {
	if s.secure(r) {
		return secureSessionCookie
	}
	return SessionCookie
}

// ErrBadSignIn is a wrong username or password; which one is never said.
var ErrBadSignIn = errors.New("wrong username or password")

// SignIn checks username and password and, when they match an enabled user, starts a new
// session and sets its cookie on w. A session cookie the request already carries is revoked
// first, so that a session id is never reused across sign-ins (no session fixation).
func (s *Sessions) SignIn(w http.ResponseWriter, r *http.Request, username, password string) (*Principal, error) {
	ctx := r.Context()
	db := s.Store.Pool()
	u, err := s.Store.UserByUsername(ctx, db, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	hash := dummyHash()
	if u != nil {
		switch h, err := s.Store.PasswordHash(ctx, db, u.ID); {
		case err == nil:
			hash = h
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	ok, err := CheckPassword(hash, password)
	if err != nil {
		return nil, fmt.Errorf("check password: %w", err)
	}
	if !ok || u == nil || hash == dummyHash() {
		return nil, ErrBadSignIn
	}
	if u.DisabledAt != nil {
		return nil, &CredentialError{Reason: fmt.Sprintf("user %s is disabled", u.Username)}
	}
	b := make([]byte, sessionBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("read random session id: %w", err)
	}
	value := base64.RawURLEncoding.EncodeToString(b)
	err = s.Store.WithTx(ctx, func(tx pgx.Tx) error {
		if old := s.current(r); old != nil {
			if err := s.Store.RevokeSession(ctx, tx, old.ID); err != nil {
				return err
			}
		}
		_, err := s.Store.CreateSession(ctx, tx, store.NewSession{
			UserID: u.ID, Hash: HashToken(value), Idle: s.idle(), Absolute: s.lifetime(),
			UserAgent: truncate(r.UserAgent(), 256), SourceIP: peer(r),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(r), Value: value, Path: "/", HttpOnly: true, Secure: s.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.lifetime().Seconds()),
	})
	return &Principal{UserID: u.ID, Username: u.Username, Admin: u.IsAdmin, Method: MethodSession}, nil
}

// SignOut revokes the request's session, if any, and clears its cookie.
func (s *Sessions) SignOut(w http.ResponseWriter, r *http.Request) error {
	if cur := s.current(r); cur != nil {
		if err := s.Store.RevokeSession(r.Context(), s.Store.Pool(), cur.ID); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(r), Value: "", Path: "/", HttpOnly: true, Secure: s.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: -1,
	})
	return nil
}

// current returns the session the request's cookie names, valid or not, or nil.
func (s *Sessions) current(r *http.Request) *store.SessionOwner {
	c, err := r.Cookie(s.cookieName(r))
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(sessionBytes) {
		return nil
	}
	so, err := s.Store.SessionByHash(r.Context(), s.Store.Pool(), HashToken(c.Value))
	if err != nil {
		return nil
	}
	return so
}

// Authenticate implements Authenticator for the session cookie. A request without one is
// ErrNoCredentials; an unknown, revoked or expired session, or a disabled user, is a
// *CredentialError. A use moves the idle expiry on (written at most once a minute).
func (s *Sessions) Authenticate(r *http.Request) (*Principal, error) {
	c, err := r.Cookie(s.cookieName(r))
	if err != nil || c.Value == "" {
		return nil, ErrNoCredentials
	}
	if len(c.Value) != base64.RawURLEncoding.EncodedLen(sessionBytes) {
		return nil, &CredentialError{Reason: "invalid session; sign in again"}
	}
	hash := HashToken(c.Value)
	ctx := r.Context()
	so, err := s.Store.SessionByHash(ctx, s.Store.Pool(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &CredentialError{Reason: "invalid session; sign in again"}
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	switch {
	case so.RevokedAt != nil:
		return nil, &CredentialError{Reason: "signed out; sign in again"}
	case !so.Now.Before(so.ExpiresAt), !so.Now.Before(so.IdleExpiresAt):
		return nil, &CredentialError{Reason: "session expired; sign in again"}
	case so.UserDisabledAt != nil:
		return nil, &CredentialError{Reason: fmt.Sprintf("user %s is disabled", so.Username)}
	}
	if so.Now.Sub(so.LastSeenAt) > sessionTouch {
		if err := s.Store.TouchSession(ctx, s.Store.Pool(), so.ID, s.idle()); err != nil {
			return nil, err
		}
	}
	return &Principal{UserID: so.UserID, Username: so.Username, Admin: so.IsAdmin, SessionID: so.ID, Method: MethodSession}, nil
}

// SetPasswordWithLink sets the password of the user a one-time link is for and uses the link
// up; ErrNotFound-wrapped for a link that is unknown, used or expired.
func SetPasswordWithLink(ctx context.Context, st *store.Store, token, password string) (userID int64, err error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return 0, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return 0, err
	}
	err = st.WithTx(ctx, func(tx pgx.Tx) error {
		linkID, uid, err := st.PasswordLinkUser(ctx, tx, HashToken(token))
		if err != nil {
			return err
		}
		userID = uid
		if err := st.UsePasswordLink(ctx, tx, linkID); err != nil {
			return err
		}
		return st.SetPasswordHash(ctx, tx, uid, hash)
	})
	return userID, err
}

// NewLinkToken returns a fresh one-time link token and its SHA-256.
func NewLinkToken() (string, []byte, error) {
	b := make([]byte, sessionBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("read random link token: %w", err)
	}
	t := base64.RawURLEncoding.EncodeToString(b)
	return t, HashToken(t), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func peer(r *http.Request) string {
	addr := r.RemoteAddr
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
	}
	return addr
}
