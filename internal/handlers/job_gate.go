package handlers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/policy"
)

// jobGate decides whether the job of a change runs at once or waits for approvals, by the
// access settings of the environment the request changes, read inside the change's
// transaction (so an approved settings change that commits first is seen).
type jobGate struct {
	h        *Handler
	r        *http.Request
	required int
	ttl      time.Duration
}

// gate reads the approval requirement of the request's environment in tx, locking the
// environment's row against a concurrent settings change (FOR SHARE). A request outside an
// environment needs no approval.
func (h *Handler) gate(ctx context.Context, tx pgx.Tx, r *http.Request) (*jobGate, error) {
	sc := scopeOf(r)
	g := &jobGate{h: h, r: r}
	if sc.Env == nil {
		return g, nil
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT gitops_config FROM environments WHERE id = $1 FOR SHARE`, sc.Env.ID).Scan(&raw); err != nil {
		return nil, fmt.Errorf("read environment %d access settings: %w", sc.Env.ID, err)
	}
	cfg, err := policy.ParseEnvConfig(raw)
	if err != nil {
		return nil, errConflict("environment %q has invalid access settings (%v); an admin must repair its gitops_config", sc.Env.Name, err)
	}
	g.required, g.ttl = cfg.Approvals(sc.Env.Kind), cfg.TTL()
	return g, nil
}

// Held tells whether the change waits for approvals; the handler gives its domain row the
// matching status (a deployment: awaiting_approval instead of pending).
func (g *jobGate) Held() bool { return g.required > 0 }

// Submit inserts args in tx, or, when the environment requires approvals, stores an approval
// request holding it for the target row. The request records the route's action, the caller
// as requester and summary for the approvers.
func (g *jobGate) Submit(ctx context.Context, tx pgx.Tx, targetType string, targetID int64, summary string, args river.JobArgs, opts *river.InsertOpts) (*approval.Submitted, error) {
	sc := scopeOf(g.r)
	return g.h.approvals.Submit(ctx, tx, approval.Submission{
		ProjectID: sc.projectID(), EnvironmentID: sc.envID(), Action: sc.Action,
		TargetType: targetType, TargetID: targetID, Summary: summary, RequestedBy: sc.Principal.UserID,
		Required: g.required, TTL: g.ttl, Args: args, Opts: opts,
	})
}

// submittedDetails are the audit details of a submission: the held request or the job.
func submittedDetails(s *approval.Submitted) map[string]any {
	if s.Request != nil {
		return map[string]any{"approval_request_id": s.Request.ID, "required_approvals": s.Request.RequiredApprovals,
			"expires_at": s.Request.ExpiresAt, "job_kind": s.Request.JobKind}
	}
	return map[string]any{"job_id": s.JobID}
}
