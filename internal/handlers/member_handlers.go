package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// listMembers lists a project's members by username, paged by ?after=username.
func (h *Handler) listMembers(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.after(), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListMembers(r.Context(), h.store.Pool(), scopeOf(r).projectID(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(m store.Member) string { return m.Username }))
}

// setMemberReq is the body of PUT /projects/{project}/members/{user}.
type setMemberReq struct {
	Role string `json:"role"`
}

// Validate checks that the role is one of the project roles.
func (q *setMemberReq) Validate() error {
	if _, ok := policy.ParseRole(q.Role); !ok {
		return errBadRequest("role", "must be one of %v, got %q", policy.RoleNames(), q.Role)
	}
	return nil
}

// errLastOwner keeps a project from losing its last owner, who alone can manage its members.
func errLastOwner(slug string) *httpError {
	return errConflict("that would leave project %s without an owner; make someone else owner first", slug)
}

// setMember adds the user to the project with a role, or changes their role (owner).
func (h *Handler) setMember(w http.ResponseWriter, r *http.Request) {
	var q setMemberReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	added, err := h.SetMember(r, sc.User, q.Role)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"project": sc.Project.Slug, "username": sc.User.Username, "role": q.Role})
}

// SetMember adds user to the scoped project with role, or changes their role; it reports
// whether they were added. The last owner keeps their role.
func (h *Handler) SetMember(r *http.Request, user *store.User, role string) (bool, error) {
	q := setMemberReq{Role: role}
	if err := q.Validate(); err != nil {
		return false, err
	}
	sc := scopeOf(r)
	if user.DisabledAt != nil {
		return false, errConflict("user %s is disabled", user.Username)
	}
	added := false
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		owners, err := h.store.LockProjectMembers(ctx, tx, sc.Project.ID)
		if err != nil {
			return nil, err
		}
		prev, err := h.store.MemberRole(ctx, tx, sc.Project.ID, user.ID)
		if err != nil {
			return nil, err
		}
		if prev == policy.Owner.String() && q.Role != prev && owners <= 1 {
			return nil, errLastOwner(sc.Project.Slug)
		}
		if err := h.store.AddMember(ctx, tx, sc.Project.ID, user.ID, q.Role); err != nil {
			return nil, err
		}
		ch := &auditChange{TargetType: "project_member", TargetID: user.Username,
			After: map[string]string{"role": q.Role}, Message: user.Username + " is now " + q.Role}
		if prev == "" {
			added = true
		} else {
			ch.Before = map[string]string{"role": prev}
		}
		return ch, nil
	})
	return added, err
}

// removeMember removes the user from the project (owner); the last owner stays.
func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request) {
	if err := h.RemoveMember(r, scopeOf(r).User); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RemoveMember removes user from the scoped project; the last owner stays.
func (h *Handler) RemoveMember(r *http.Request, user *store.User) error {
	sc := scopeOf(r)
	return h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		owners, err := h.store.LockProjectMembers(ctx, tx, sc.Project.ID)
		if err != nil {
			return nil, err
		}
		prev, err := h.store.RemoveMember(ctx, tx, sc.Project.ID, user.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("%s is not a member of project %s", user.Username, sc.Project.Slug)
		}
		if err != nil {
			return nil, err
		}
		if prev == policy.Owner.String() && owners <= 1 {
			return nil, errLastOwner(sc.Project.Slug)
		}
		return &auditChange{TargetType: "project_member", TargetID: user.Username,
			Before: map[string]string{"role": prev}, Message: user.Username + " removed"}, nil
	})
}
