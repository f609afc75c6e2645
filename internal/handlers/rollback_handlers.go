package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// rollbackTarget is one deployment an app can be rolled back to.
type rollbackTarget struct {
	Deployment *store.Deployment `json:"deployment"`
	CommitSHA  string            `json:"commit_sha"`
	// Subject is the first line of the commit message, when fluxbridge made the commit.
	Subject string `json:"subject,omitempty"`
	// Current is true for the newest one: what the environment runs now.
	Current bool `json:"current"`
}

// rollbackTargetsResp lists the restorable deployments of an app and its lock.
type rollbackTargetsResp struct {
	App   string           `json:"app"`
	Items []rollbackTarget `json:"items"`
	// NextBefore is the ?before= of the next page, when more may follow.
	NextBefore *int64 `json:"next_before,omitempty"`
	// Lock is the rollback that holds the app back, if any.
	Lock *store.Rollback `json:"lock,omitempty"`
}

// appParam reads the {app} path parameter.
func appParam(r *http.Request) (string, error) {
	app := chi.URLParam(r, "app")
	if !dnsLabelRE.MatchString(app) {
		return "", errBadRequest("app", "must be a DNS label, got %q", app)
	}
	return app, nil
}

// listRollbackTargets answers GET …/environments/{env}/apps/{app}/rollback-targets: every
// successful deployment with its commit (R11.1) that the app can be rolled back to (R11.2),
// newest first, and the app's lock: the app's own deployments, and the Git pushes that changed
// its directory (appTargets).
func (h *Handler) listRollbackTargets(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	before, limit := p.int64("before"), p.limit()
	app, err := appParam(r)
	if err == nil {
		err = p.err
	}
	var resp *rollbackTargetsResp
	if err == nil {
		resp, err = h.RollbackTargets(r, app, before, limit)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// RollbackTargets is an app's restorable deployments, newest (current) first, and its lock.
type RollbackTargets = rollbackTargetsResp

// RollbackTarget is one deployment an app can be rolled back to.
type RollbackTarget = rollbackTarget

// RollbackTargets returns up to limit deployments app in the scoped environment can be
// rolled back to, newest first, older than deployment before when it is not 0 (the
// next_before of the page before), and the rollback that locks it, if any.
func (h *Handler) RollbackTargets(r *http.Request, app string, before int64, limit int) (*RollbackTargets, error) {
	ctx, db, sc := r.Context(), h.store.Pool(), scopeOf(r)
	if before != 0 {
		d, err := h.store.DeploymentByID(ctx, db, before)
		if errors.Is(err, store.ErrNotFound) || err == nil && d.EnvironmentID != sc.Env.ID {
			return nil, errBadRequest("before", "must be the next_before of an earlier page: no deployment %d in environment %s", before, sc.Env.Name)
		}
		if err != nil {
			return nil, err
		}
	}
	scan := min(4*limit, maxTargetScan)
	scanned, err := h.store.RestorableDeployments(ctx, db, sc.Env.ID, app, before, scan)
	var ds []store.Deployment
	if err == nil {
		ds, err = h.appTargets(ctx, sc, app, scanned)
	}
	if err != nil {
		return nil, err
	}
	resp := rollbackTargetsResp{App: app}
	switch {
	case len(ds) > limit:
		ds = ds[:limit]
		next := ds[limit-1].ID
		resp.NextBefore = &next
	case len(scanned) == scan && scan > 0:
		// The scan was full: what follows its last row may hold more targets.
		next := scanned[len(scanned)-1].ID
		resp.NextBefore = &next
	}
	resp.Items = make([]rollbackTarget, 0, len(ds))
	for i := range ds {
		subject, _, _ := strings.Cut(ds[i].CommitMessage, "\n")
		resp.Items = append(resp.Items, rollbackTarget{Deployment: &ds[i], CommitSHA: ds[i].CommitSHA, Subject: subject, Current: i == 0 && before == 0})
	}
	lock, err := h.store.LockingRollback(ctx, db, sc.Env.ID, app)
	switch {
	case err == nil:
		resp.Lock = lock
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return &resp, nil
}

// rollbackReq is the body of POST …/environments/{env}/apps/{app}/rollback.
type rollbackReq struct {
	// DeploymentID is the successful deployment to roll back to.
	DeploymentID int64 `json:"deployment_id"`
	// Strategy is "revert" (default: a new commit restoring the app's directory) or "pin"
	// (the environment's Kustomization reads a GitRepository pinned to the commit).
	Strategy string `json:"strategy"`
}

// rollbackResp is a created rollback, its deployment and the approval request holding it.
type rollbackResp struct {
	Rollback   *store.Rollback   `json:"rollback"`
	Deployment *store.Deployment `json:"deployment"`
	Approval   *approvalView     `json:"approval,omitempty"`
}

// createRollback answers POST …/environments/{env}/apps/{app}/rollback. It records the rollback
// as a gitops-ui deployment of the app and submits its job through the environment's approval
// gate: 201 when the job runs at once, 202 when it waits for approvals. The job commits (or
// pins), locks image automation, asks Flux to reconcile and waits for its verdict.
func (h *Handler) createRollback(w http.ResponseWriter, r *http.Request) {
	app, err := appParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var q rollbackReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := h.Rollback(r, app, q.DeploymentID, q.Strategy)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if resp.Approval != nil {
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
}

// RollbackResult is a created rollback, its deployment and the approval request holding it.
type RollbackResult = rollbackResp

// Rollback rolls app in the scoped environment back to deployment depID with strategy
// ("revert", the default, or "pin"), through the environment's approval gate.
func (h *Handler) Rollback(r *http.Request, app string, depID int64, strategy string) (*RollbackResult, error) {
	q := rollbackReq{DeploymentID: depID, Strategy: strategy}
	switch q.Strategy {
	case "":
		q.Strategy = store.RollbackRevert
	case store.RollbackRevert, store.RollbackPin:
	default:
		return nil, errBadRequest("strategy", "must be %q or %q, got %q", store.RollbackRevert, store.RollbackPin, q.Strategy)
	}
	if q.DeploymentID <= 0 {
		return nil, errBadRequest("deployment_id", "is required: the deployment to roll back to (see rollback-targets)")
	}
	var resp *rollbackResp
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var ch *auditChange
		var err error
		resp, ch, err = h.submitRollback(ctx, tx, r, app, &q)
		return ch, err
	})
	return resp, err
}

// submitRollback checks the request against the app's history and records it in tx.
func (h *Handler) submitRollback(ctx context.Context, tx pgx.Tx, r *http.Request, app string, q *rollbackReq) (*rollbackResp, *auditChange, error) {
	sc := scopeOf(r)
	target, err := h.store.DeploymentByID(ctx, tx, q.DeploymentID)
	if errors.Is(err, store.ErrNotFound) || err == nil && target.EnvironmentID != sc.Env.ID {
		return nil, nil, errBadRequest("deployment_id", "deployment %d is not a deployment of environment %s", q.DeploymentID, sc.Env.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	switch {
	case target.Status != store.DeploySucceeded:
		return nil, nil, errBadRequest("deployment_id", "deployment %d is %s: only a successful deployment can be restored", target.ID, target.Status)
	case target.CommitSHA == "":
		return nil, nil, errBadRequest("deployment_id", "deployment %d has no Git commit to restore", target.ID)
	case target.App != app && target.DeploymentMethod != store.MethodGitopsGit:
		return nil, nil, errBadRequest("deployment_id", "deployment %d deployed %q, not %s", target.ID, target.App, app)
	}
	// Where the app lives: its newest UI deploy's directory.
	spec, err := h.store.LatestAppSpec(ctx, tx, sc.Env.ID, app)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errConflictf("app", "fluxbridge never deployed %s to %s, so it does not know its directory; roll it back in Git", app, sc.Env.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	latest, err := h.store.DeploymentByID(ctx, tx, spec.DeploymentID)
	if err != nil {
		return nil, nil, err
	}
	if q.Strategy == store.RollbackPin {
		// A pin creates a GitRepository and repoints the Kustomization: Flux objects (R13.1).
		if err := h.mayChangeFlux(sc, "pin the environment (a revert needs no more than the deploy permission)"); err != nil {
			return nil, nil, err
		}
	}
	if err := h.checkRollbackAllowed(ctx, tx, sc.Env.ID, app, latest.GitopsResourceID, q.Strategy); err != nil {
		return nil, nil, err
	}
	g, err := h.gate(ctx, tx, r)
	if err != nil {
		return nil, nil, err
	}
	status := store.DeployPending
	if g.Held() {
		status = store.DeployAwaitingApproval
	}
	summary := fmt.Sprintf("roll back %s in %s to deployment %d (commit %.12s, %s)", app, sc.Env.Name, target.ID, target.CommitSHA, q.Strategy)
	d, err := h.store.CreateDeployment(ctx, tx, store.NewDeployment{
		ProjectID: sc.Project.ID, EnvironmentID: sc.Env.ID, GitopsResourceID: latest.GitopsResourceID,
		Method: store.MethodGitopsUI, Status: status, App: app, RequestedBy: &sc.Principal.UserID, Message: summary,
	})
	if err != nil {
		return nil, nil, err
	}
	rb, err := h.store.CreateRollback(ctx, tx, store.NewRollback{
		DeploymentID: d.ID, ProjectID: sc.Project.ID, EnvironmentID: sc.Env.ID, App: app,
		TargetDeploymentID: &target.ID, TargetCommit: target.CommitSHA, Strategy: q.Strategy,
		RepositoryID: spec.RepositoryID, Branch: spec.Branch, Path: spec.Path, ResourceID: latest.GitopsResourceID,
		RequestedBy: &sc.Principal.UserID,
	})
	if err != nil {
		return nil, nil, err
	}
	sub, err := g.Submit(ctx, tx, approval.TargetDeployment, d.ID, summary, jobs.RollbackArgs{RollbackID: rb.ID}, nil)
	if err != nil {
		return nil, nil, err
	}
	resp := &rollbackResp{Rollback: rb, Deployment: d}
	if sub.Request != nil {
		resp.Approval = &approvalView{ApprovalRequest: sub.Request, Votes: []store.Vote{}}
	}
	details := submittedDetails(sub)
	details["rollback_id"], details["strategy"], details["target_deployment_id"], details["target_commit"] = rb.ID, rb.Strategy, target.ID, target.CommitSHA
	details["path"], details["branch"] = rb.Path, rb.Branch
	return resp, &auditChange{TargetType: "deployment", TargetID: d.ID, After: d, Message: summary, Details: details}, nil
}

// checkRollbackAllowed refuses a rollback while another one of the app is still running, and a
// revert while the environment's Kustomization is pinned (Flux would not apply the revert).
func (h *Handler) checkRollbackAllowed(ctx context.Context, tx pgx.Tx, envID int64, app string, resourceID *int64, strategy string) error {
	open, err := h.store.ListRollbacks(ctx, tx, envID, app, 20)
	if err != nil {
		return err
	}
	for _, rb := range open {
		if !rb.Final() {
			return errConflictf("app", "rollback %d of %s is still %s; wait for it to finish", rb.ID, app, rb.Phase)
		}
	}
	if strategy == store.RollbackPin && resourceID == nil {
		return errConflictf("strategy", "%s has no Kustomization to pin; use the revert strategy", app)
	}
	if resourceID != nil {
		pin, err := h.store.PinningRollback(ctx, tx, *resourceID)
		switch {
		case err == nil:
			return errConflictf("strategy", "the environment is pinned to commit %.12s by rollback %d of %s; unlock it first", pin.TargetCommit, pin.ID, pin.App)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	return nil
}

// rollbackView is a rollback with its deployment.
type rollbackView struct {
	*store.Rollback
	Deployment *store.Deployment `json:"deployment"`
}

// getRollback answers GET …/environments/{env}/rollbacks/{id}: the rollback's progress.
func (h *Handler) getRollback(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	ctx, db, sc := r.Context(), h.store.Pool(), scopeOf(r)
	rb, err := h.store.RollbackByID(ctx, db, id)
	if err == nil && rb.EnvironmentID != sc.Env.ID {
		err = errNotFound("rollback %d: not found", id)
	}
	var d *store.Deployment
	if err == nil {
		d, err = h.store.DeploymentByID(ctx, db, rb.DeploymentID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rollbackView{Rollback: rb, Deployment: d})
}

// unlockResp is what unlocking an app undid.
type unlockResp struct {
	Rollback *store.Rollback `json:"rollback"`
	jobs.Released
}

// unlockApp answers POST …/environments/{env}/apps/{app}/unlock: it releases the rollback that
// holds the app, resuming the image automation the rollback suspended and, for a pin, pointing
// the environment's Kustomization back at its branch. 409 when the app is not locked.
func (h *Handler) unlockApp(w http.ResponseWriter, r *http.Request) {
	app, err := appParam(r)
	var resp *unlockResp
	if err == nil {
		resp, err = h.Unlock(r, app)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// UnlockResult is what unlocking an app undid.
type UnlockResult = unlockResp

// Unlock releases the finished rollback that holds app in the scoped environment.
func (h *Handler) Unlock(r *http.Request, app string) (*UnlockResult, error) {
	var resp unlockResp
	if err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		sc := scopeOf(r)
		rb, err := h.store.LockingRollback(ctx, tx, sc.Env.ID, app)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errConflictf("app", "%s is not locked in %s", app, sc.Env.Name)
		}
		if err != nil {
			return nil, err
		}
		if !rb.Final() {
			return nil, errConflictf("app", "rollback %d of %s is still %s; unlock it when it is done", rb.ID, app, rb.Phase)
		}
		before := *rb
		released, err := jobs.ReleaseRollbackTx(ctx, tx, h.store, h.river, rb, &sc.Principal.UserID)
		if err != nil {
			return nil, err
		}
		resp = unlockResp{Rollback: rb, Released: released}
		msg := fmt.Sprintf("unlock %s in %s: resume %d image automation(s)", app, sc.Env.Name, len(released.Resumed))
		if released.Unpinned {
			msg += " and unpin the environment"
		}
		return &auditChange{TargetType: "rollback", TargetID: rb.ID, Before: before, After: rb, Message: msg,
			Details: map[string]any{"resumed_resource_ids": released.Resumed, "unpinned": released.Unpinned}}, nil
	}); err != nil {
		return nil, err
	}
	return &resp, nil
}
