package handlers

import (
	"context"
	"net/http"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// dnsLabelRE is the shape of project slugs and environment names, as the schema enforces.
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// createProjectReq is the body of POST /projects.
type createProjectReq struct {
	Slug        string `json:"slug"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Owner is the username that becomes the project's first owner; optional, since admins
	// can manage any project.
	Owner string `json:"owner"`
}

// Validate checks the slug's shape and the name.
func (q *createProjectReq) Validate() error {
	if !dnsLabelRE.MatchString(q.Slug) {
		return errBadRequest("slug", "must be a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'")
	}
	return validateProjectText(q.Name, q.Description)
}

func validateProjectText(name, description string) error {
	if name == "" || len(name) > 200 {
		return errBadRequest("name", "must be 1-200 characters")
	}
	if len(description) > 4000 {
		return errBadRequest("description", "must be at most 4000 characters")
	}
	return nil
}

// createProject adds a project (admin only), with an optional first owner.
func (h *Handler) createProject(w http.ResponseWriter, r *http.Request) {
	var q createProjectReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := q.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	var p *store.Project
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var err error
		p, err = h.store.CreateProject(ctx, tx, store.Project{Slug: q.Slug, Name: q.Name, Description: q.Description})
		if _, dup := store.IsUniqueViolation(err); dup {
			return nil, errConflict("project %q already exists", q.Slug)
		}
		if err != nil {
			return nil, err
		}
		after := map[string]any{"project": p}
		if q.Owner != "" {
			u, err := h.store.UserByUsername(ctx, tx, q.Owner)
			if err != nil {
				return nil, errBadRequest("owner", "no user %q", q.Owner)
			}
			if err := h.store.AddMember(ctx, tx, p.ID, u.ID, policy.Owner.String()); err != nil {
				return nil, err
			}
			after["owner"] = u.Username
		}
		return &auditChange{TargetType: "project", TargetID: p.ID, After: after, ProjectID: &p.ID,
			Message: "created project " + p.Slug}, nil
	}) {
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// updateProjectReq is the body of PATCH /projects/{project}; absent fields stay.
type updateProjectReq struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// updateProject changes a project's name or description (owner). The slug is its identity in
// URLs and never changes.
func (h *Handler) updateProject(w http.ResponseWriter, r *http.Request) {
	var q updateProjectReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	before := scopeOf(r).Project
	p := *before
	if q.Name != nil {
		p.Name = *q.Name
	}
	if q.Description != nil {
		p.Description = *q.Description
	}
	if err := validateProjectText(p.Name, p.Description); err != nil {
		h.fail(w, r, err)
		return
	}
	var after *store.Project
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var err error
		after, err = h.store.UpdateProject(ctx, tx, p)
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "project", TargetID: p.ID, Before: before, After: after, Message: "updated project " + p.Slug}, nil
	}) {
		return
	}
	writeJSON(w, http.StatusOK, after)
}
