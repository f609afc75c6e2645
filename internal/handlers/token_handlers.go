package handlers

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// minTokenLifetime keeps an expiry from being a typo that makes the token useless at once.
const minTokenLifetime = time.Minute

// The token routes serve both /tokens (the caller's own) and /users/{user}/tokens (anyone's,
// for admins): the owner is the {user} in the URL when there is one, else the caller.
func tokenOwner(r *http.Request) (int64, string) {
	sc := scopeOf(r)
	if sc.User != nil {
		return sc.User.ID, sc.User.Username
	}
	return sc.Principal.UserID, sc.Principal.Username
}

// listTokens lists the owner's tokens newest first, paged by ?before=id.
func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	before, limit := p.int64("before"), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.Tokens(r, before, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, limit, func(t store.APIToken) int64 { return t.ID }))
}

// createTokenReq is the body of POST /tokens. At most one of ExpiresAt and ExpiresIn is set;
// neither means the token does not expire.
type createTokenReq struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
	ExpiresIn string     `json:"expires_in"` // a Go duration, e.g. "720h"
}

// Validate checks the name and turns the expiry into a time (nil for none).
func (q *createTokenReq) Validate(now time.Time) (*time.Time, error) {
	q.Name = strings.TrimSpace(q.Name)
	if q.Name == "" || len(q.Name) > 100 {
		return nil, errBadRequest("name", "must be 1-100 characters, e.g. \"ci deploy\"")
	}
	exp := q.ExpiresAt
	if q.ExpiresIn != "" {
		if exp != nil {
			return nil, errBadRequest("expires_in", "set expires_in or expires_at, not both")
		}
		d, err := time.ParseDuration(q.ExpiresIn)
		if err != nil {
			return nil, errBadRequest("expires_in", "must be a duration like \"720h\", got %q", q.ExpiresIn)
		}
		t := now.Add(d)
		exp = &t
	}
	if exp != nil && exp.Before(now.Add(minTokenLifetime)) {
		return nil, errBadRequest("expires_at", "must be at least %s in the future", minTokenLifetime)
	}
	return exp, nil
}

// createTokenResp is the created token: the only time its value is ever shown.
type createTokenResp struct {
	*store.APIToken
	Token string `json:"token"`
	Note  string `json:"note"`
}

// createToken issues an API token for the owner and returns it once; only its SHA-256 is kept.
func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) {
	var q createTokenReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := h.CreateToken(r, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// NewToken is what creating a token takes: a name and an optional expiry.
type NewToken = createTokenReq

// CreatedToken is a created token with its value: the only time it is shown.
type CreatedToken = createTokenResp

// Tokens lists the route's token owner's tokens (the caller's, or {user}'s for an admin),
// newest first: at most limit, older than token before when it is not 0.
func (h *Handler) Tokens(r *http.Request, before int64, limit int) ([]store.APIToken, error) {
	id, _ := tokenOwner(r)
	return h.store.ListTokens(r.Context(), h.store.Pool(), id, before, limit)
}

// CreateToken issues an API token for the route's token owner and returns it once; only its
// SHA-256 is kept.
func (h *Handler) CreateToken(r *http.Request, q NewToken) (*CreatedToken, error) {
	expires, err := q.Validate(time.Now())
	if err != nil {
		return nil, err
	}
	ownerID, ownerName := tokenOwner(r)
	if u := scopeOf(r).User; u != nil && u.DisabledAt != nil {
		return nil, errConflict("user %s is disabled; enable them first", u.Username)
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		return nil, err
	}
	resp := createTokenResp{Token: token, Note: "store this token now: it is not shown again"}
	if err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var err error
		resp.APIToken, err = h.store.CreateToken(ctx, tx, store.NewAPIToken{
			UserID: ownerID, Name: q.Name, Hash: hash, Prefix: auth.DisplayPrefix(token),
			CreatedBy: &scopeOf(r).Principal.UserID, ExpiresAt: expires,
		})
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "api_token", TargetID: resp.APIToken.ID, After: resp.APIToken,
			Message: "created API token " + q.Name + " for " + ownerName}, nil
	}); err != nil {
		return nil, err
	}
	return &resp, nil
}

// revokeToken revokes one of the owner's tokens at once; another user's token is 404.
// Revoking a revoked token is a no-op that still answers 200.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	after, err := h.RevokeToken(r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, after)
}

// RevokeToken revokes token id of the route's token owner.
func (h *Handler) RevokeToken(r *http.Request, id int64) (*store.APIToken, error) {
	ownerID, ownerName := tokenOwner(r)
	var after *store.APIToken
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		before, err := h.store.LockToken(ctx, tx, ownerID, id)
		if err != nil {
			return nil, err
		}
		after, err = h.store.RevokeToken(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "api_token", TargetID: id, Before: before, After: after,
			Message: "revoked API token " + before.Name + " of " + ownerName}, nil
	})
	return after, err
}
