// Package auth tells who is calling fluxbridge's API. An Authenticator turns a request's
// credentials into a Principal; a Chain tries several in order, so that an OIDC or session
// authenticator can be added next to API tokens without the handlers noticing: they only ever
// see the Principal in the request context.
package auth

import (
	"context"
	"errors"
	"net/http"
)

// Method says how a principal proved who they are.
type Method string

// Authentication methods; MethodSession is in session.go. OIDC would add its own.
const (
	MethodToken Method = "token"
)

// Principal is an authenticated caller: always a user of the platform.
type Principal struct {
	UserID   int64
	Username string
	Admin    bool
	// TokenID is the API token the request came with; 0 for other methods.
	TokenID int64
	// SessionID is the console session the request came with; 0 for other methods.
	SessionID int64
	Method    Method
}

// Authenticator finds and checks the credentials of a request. It returns ErrNoCredentials
// when the request carries none it understands (so that the next one in a Chain may try), a
// *CredentialError when it carries credentials that are not valid, and any other error when it
// could not decide (the database is down).
type Authenticator interface {
	Authenticate(r *http.Request) (*Principal, error)
}

// ErrNoCredentials means the request carries no credentials the authenticator understands.
var ErrNoCredentials = errors.New("no credentials")

// CredentialError means the request's credentials are not valid. Reason is safe to show the
// caller: it says what is wrong (expired, revoked, disabled) without revealing anything they
// do not already hold.
type CredentialError struct {
	Reason string
}

// Error returns Reason.
func (e *CredentialError) Error() string { return e.Reason }

// Chain tries each authenticator in order; the first that finds credentials decides. An empty
// chain, or one where nobody finds any, returns ErrNoCredentials.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(r *http.Request) (*Principal, error) {
	for _, a := range c {
		p, err := a.Authenticate(r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return p, err
	}
	return nil, ErrNoCredentials
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, or nil when the request was not authenticated.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
