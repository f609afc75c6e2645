package handlers

import (
	"context"
	"net/http"
	"net/mail"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// meResp is who the caller is.
type meResp struct {
	User       *store.User `json:"user"`
	AuthMethod string      `json:"auth_method"`
	TokenID    int64       `json:"token_id,omitempty"`
}

// me returns the authenticated user and how they authenticated.
func (h *Handler) me(w http.ResponseWriter, r *http.Request) {
	p := scopeOf(r).Principal
	u, err := h.store.UserByID(r.Context(), h.store.Pool(), p.UserID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, meResp{User: u, AuthMethod: string(p.Method), TokenID: p.TokenID})
}

// listUsers lists users by username, paged by ?after=username.
func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.after(), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListUsers(r.Context(), h.store.Pool(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(u store.User) string { return u.Username }))
}

// createUserReq is the body of POST /users.
type createUserReq struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
	IsAdmin     bool   `json:"is_admin"`
}

// Validate checks the username's shape and the email's syntax.
func (q *createUserReq) Validate() error {
	if !usernameRE.MatchString(q.Username) {
		return errBadRequest("username", "must be 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return validateProfile(q.DisplayName, q.Email)
}

func validateProfile(displayName, email string) error {
	if len(displayName) > 200 {
		return errBadRequest("display_name", "must be at most 200 characters")
	}
	if email != "" {
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
			return errBadRequest("email", "must be a plain address like alice@example.com")
		}
	}
	return nil
}

// createUser adds a user (admin only). A user has no project until an owner adds them, and no
// token until one is created for them.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	var q createUserReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.CreateUser(r, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

// NewUser is what creating a user takes.
type NewUser = createUserReq

// CreateUser adds a user (admin only): no project until an owner adds them, no password or
// token until one is made for them.
func (h *Handler) CreateUser(r *http.Request, q NewUser) (*store.User, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var u *store.User
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var err error
		u, err = h.store.CreateUser(ctx, tx, store.User{Username: q.Username, DisplayName: q.DisplayName, Email: q.Email, IsAdmin: q.IsAdmin})
		if _, dup := store.IsUniqueViolation(err); dup {
			return nil, errConflict("user %q already exists", q.Username)
		}
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "user", TargetID: u.ID, After: u, Message: "created user " + u.Username}, nil
	})
	return u, err
}

// updateUserReq is the body of PATCH /users/{user}; absent fields stay as they are.
type updateUserReq struct {
	DisplayName *string `json:"display_name"`
	Email       *string `json:"email"`
	IsAdmin     *bool   `json:"is_admin"`
	Disabled    *bool   `json:"disabled"`
}

// updateUser changes a user's profile, admin flag or disabled state (admin only). A disabled
// user's tokens stop working at once and their approval votes stop counting; enabling them
// again restores both. The last enabled admin cannot be demoted or disabled (409), so the
// platform never locks itself out.
func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request) {
	var q updateUserReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	after, err := h.UpdateUser(r, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, after)
}

// UserChange is a change of a user: absent fields stay as they are.
type UserChange = updateUserReq

// UpdateUser changes the route's {user} (admin only); see updateUser.
func (h *Handler) UpdateUser(r *http.Request, q UserChange) (*store.User, error) {
	target := scopeOf(r).User
	var after *store.User
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		// Admin changes run one at a time, so two admins cannot demote each other at once.
		if _, err := tx.Exec(ctx, `SELECT id FROM users WHERE is_admin AND disabled_at IS NULL FOR UPDATE`); err != nil {
			return nil, err
		}
		before, err := h.store.LockUser(ctx, tx, target.ID)
		if err != nil {
			return nil, err
		}
		u := *before
		if q.DisplayName != nil {
			u.DisplayName = *q.DisplayName
		}
		if q.Email != nil {
			u.Email = *q.Email
		}
		if err := validateProfile(u.DisplayName, u.Email); err != nil {
			return nil, err
		}
		if q.IsAdmin != nil {
			u.IsAdmin = *q.IsAdmin
		}
		switch {
		case q.Disabled == nil:
		case *q.Disabled && u.DisabledAt == nil:
			now := time.Now()
			u.DisabledAt = &now
		case !*q.Disabled:
			u.DisabledAt = nil
		}
		wasAdmin := before.IsAdmin && before.DisabledAt == nil
		if wasAdmin && (!u.IsAdmin || u.DisabledAt != nil) {
			n, err := h.store.CountActiveAdmins(ctx, tx)
			if err != nil {
				return nil, err
			}
			if n <= 1 {
				return nil, errConflict("%s is the last enabled admin; make someone else an admin first", u.Username)
			}
		}
		after, err = h.store.UpdateUser(ctx, tx, u)
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "user", TargetID: u.ID, Before: before, After: after, Message: "updated user " + u.Username}, nil
	})
	return after, err
}

// passwordLinkTTL is how long a one-time password link works.
const passwordLinkTTL = 72 * time.Hour

// passwordLinkResp is the one-time link an admin hands a user; the token is shown only here.
type passwordLinkResp struct {
	Path      string    `json:"path"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createPasswordLink issues a one-time link with which {user} sets their console password
// (POST …/users/{user}/password-link). Only its hash is stored; the path is answered once.
func (h *Handler) createPasswordLink(w http.ResponseWriter, r *http.Request) {
	out, err := h.PasswordLink(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// PasswordLinkOut is a one-time password link: shown once.
type PasswordLinkOut = passwordLinkResp

// PasswordLink issues a one-time link with which the route's {user} sets their console
// password. Only its hash is stored.
func (h *Handler) PasswordLink(r *http.Request) (*PasswordLinkOut, error) {
	target := scopeOf(r).User
	token, hash, err := auth.NewLinkToken()
	if err != nil {
		return nil, err
	}
	var out passwordLinkResp
	if err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		exp, err := h.store.CreatePasswordLink(ctx, tx, target.ID, hash, &scopeOf(r).Principal.UserID, passwordLinkTTL)
		if err != nil {
			return nil, err
		}
		out = passwordLinkResp{Path: "/password/" + token, ExpiresAt: exp}
		return &auditChange{TargetType: "user", TargetID: target.ID, Message: "issued a one-time password link for " + target.Username,
			Details: map[string]any{"expires_at": exp}}, nil
	}); err != nil {
		return nil, err
	}
	return &out, nil
}
