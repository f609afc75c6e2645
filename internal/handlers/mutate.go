package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/audit"
	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// auditChange is what a mutating call reports about the change it made, for its audit row.
// Only TargetType and TargetID are required; the rest defaults from the request's scope.
type auditChange struct {
	TargetType string
	TargetID   any // formatted with %v: an ID, a username
	// Before and After are the target before and after the change: nil Before for a
	// creation, nil After for a deletion. The row keeps only what differs, secrets redacted.
	Before, After any
	Message       string
	// Details are extra facts for the row (an approval request, a released job), redacted too.
	Details map[string]any
	// Action overrides the route's policy action, e.g. "environment.update_held".
	Action string
	// ProjectID, EnvironmentID and Cluster override the scoped project and environment, for
	// changes whose route names neither (an approval, a new project).
	ProjectID, EnvironmentID *int64
	Cluster                  string
}

// mutate runs fn in one transaction and writes, in that same transaction, the call's one audit
// row from the auditChange fn returns: actor, action, target, project, environment, cluster,
// request ID, source IP and a redacted before/after diff. It is how every mutating API handler
// changes anything, so that "one audit row per mutating call, committed with the change" holds
// by construction. On error it rolls back, answers through h.fail and returns false; on success
// it returns true and the handler writes its response. A second mutate in one request fails.
func (h *Handler) mutate(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, tx pgx.Tx) (*auditChange, error)) bool {
	if err := h.mutateErr(r, fn); err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// mutateErr is mutate for a caller that answers in its own way (a console page): it returns
// the error instead of answering it.
func (h *Handler) mutateErr(r *http.Request, fn func(ctx context.Context, tx pgx.Tx) (*auditChange, error)) error {
	sc := scopeOf(r)
	ctx := r.Context()
	err := h.store.WithTx(ctx, func(tx pgx.Tx) error {
		if sc.audits > 0 {
			return errors.New("mutate called twice in one request")
		}
		ch, err := fn(ctx, tx)
		if err != nil {
			return err
		}
		if ch == nil || ch.TargetType == "" {
			return errors.New("mutating call returned no audit change")
		}
		e, err := h.auditEntry(r, sc, ch)
		if err != nil {
			return err
		}
		if _, err := h.store.InsertAudit(ctx, tx, e); err != nil {
			return err
		}
		sc.audits++
		return nil
	})
	if err != nil {
		sc.audits = 0
	}
	return err
}

func (h *Handler) auditEntry(r *http.Request, sc *reqScope, ch *auditChange) (store.AuditEntry, error) {
	p := sc.Principal
	extra := map[string]any{"auth_method": string(p.Method)}
	if p.TokenID != 0 {
		extra["token_id"] = p.TokenID
	}
	for k, v := range ch.Details {
		extra[k] = v
	}
	details, err := audit.Details(ch.Before, ch.After, extra)
	if err != nil {
		return store.AuditEntry{}, err
	}
	e := store.AuditEntry{
		ActorType: store.ActorUser, ActorID: &p.UserID, ActorName: p.Username,
		Action: sc.Action, TargetType: ch.TargetType, TargetID: fmt.Sprint(ch.TargetID),
		ProjectID: ch.ProjectID, EnvironmentID: ch.EnvironmentID,
		RequestID: requestID(r), SourceIP: sourceIP(r), Message: ch.Message, Details: details,
	}
	if p.Method == auth.MethodToken {
		e.ActorType = store.ActorToken
	}
	if ch.Action != "" {
		e.Action = ch.Action
	}
	if e.ProjectID == nil && sc.Project != nil {
		e.ProjectID = &sc.Project.ID
	}
	if e.EnvironmentID == nil {
		e.EnvironmentID = sc.envID()
	}
	if sc.Env != nil {
		e.Cluster = sc.Env.Cluster
	}
	if ch.Cluster != "" {
		e.Cluster = ch.Cluster
	}
	return e, nil
}

func requestID(r *http.Request) string {
	if id, ok := hlog.IDFromRequest(r); ok {
		return id.String()
	}
	return ""
}

// sourceIP is the peer address. Forwarded headers are not trusted: anyone can send them, and a
// proxy in front of fluxbridge should be configured to replace RemoteAddr instead.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
