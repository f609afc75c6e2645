package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// nameRE is a DNS label: the names of repositories, templates and apps.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// userHeader names the user a request acts for until API authentication lands; the identity
// work replaces it with the authenticated principal.
const userHeader = "X-Fluxbridge-User"

// requester returns the user a mutating request acts for: the author of the commits it causes
// and the actor of its audit row.
func (h *Handler) requester(ctx context.Context, r *http.Request) (*store.User, error) {
	name := r.Header.Get(userHeader)
	if name == "" {
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "say who you are: set the " + userHeader + " header to your username"}
	}
	u, err := h.store.UserByUsername(ctx, h.store.Pool(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "unknown user " + name}
	}
	return u, err
}

// audit writes the audit row of a mutating call in its transaction, with the requester as
// actor. details must hold no secret.
func (h *Handler) audit(ctx context.Context, tx pgx.Tx, r *http.Request, action, targetType, targetID, msg string, details json.RawMessage) error {
	u, err := h.requester(ctx, r)
	if err != nil {
		return err
	}
	sc := scopeOf(r)
	e := store.AuditEntry{
		ActorType: store.ActorUser, ActorID: &u.ID, ActorName: u.Username, Action: action,
		TargetType: targetType, TargetID: targetID, RequestID: requestIDOf(r), SourceIP: r.RemoteAddr,
		Message: msg, Details: details,
	}
	if sc.Project != nil {
		e.ProjectID = &sc.Project.ID
	}
	if sc.Env != nil {
		e.EnvironmentID, e.Cluster = &sc.Env.ID, sc.Env.Cluster
	}
	_, err = h.store.InsertAudit(ctx, tx, e)
	return err
}

func requestIDOf(r *http.Request) string {
	if id, ok := hlog.IDFromRequest(r); ok {
		return id.String()
	}
	return ""
}
