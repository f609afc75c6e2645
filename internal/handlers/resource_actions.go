package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ReconcileInput is the optional body of POST …/resources/{id}/reconcile, after the flags of
// `flux reconcile`: --with-source, and for a HelmRelease --force and --reset.
type ReconcileInput struct {
	WithSource bool `json:"with_source"`
	Force      bool `json:"force"`
	Reset      bool `json:"reset"`
}

// reconcileResource asks Flux to reconcile a resource now. It answers 202 with the reconcile
// request, whose status the worker moves to succeeded, failed, timed_out or suspended; a
// request that is still open is returned instead of making a second one. A resource suspended
// through the API is refused with 409, as Flux would silently ignore the request.
func (h *Handler) reconcileResource(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	var req ReconcileInput
	if err := readJSON(w, r, &req); err != nil && !isEmptyBody(err) {
		h.fail(w, r, err)
		return
	}
	out, err := h.Reconcile(r, id, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, out)
}

// Reconcile is the typed core of reconcileResource, for the API and the console; r carries the
// authorized scope of action resource.reconcile.
func (h *Handler) Reconcile(r *http.Request, id int64, req ReconcileInput) (*store.ReconcileRequest, error) {
	var out *store.ReconcileRequest
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		res, err := h.lockOwnResource(ctx, tx, scopeOf(r), id)
		if err != nil {
			return nil, err
		}
		if (req.Force || req.Reset) && res.Kind != fluxspec.KindHelmRelease {
			return nil, errBadRequest("force", "force and reset apply to a HelmRelease only")
		}
		if res.Suspended {
			return nil, &httpError{Status: http.StatusConflict, Msg: fmt.Sprintf("%s %s/%s is suspended; resume it first", res.Kind, res.Namespace, res.Name)}
		}
		open, err := h.store.ListReconcileRequests(ctx, tx, res.ID, 0, 1)
		if err != nil {
			return nil, err
		}
		if len(open) == 1 && open[0].Open() && open[0].WithSource == req.WithSource && open[0].Force == req.Force && open[0].Reset == req.Reset {
			out = &open[0]
			ch := resourceChange(res, nil, nil, "reconcile already in progress for")
			ch.Details = map[string]any{"reconcile_request_id": out.ID, "joined": true}
			return ch, nil
		}
		rr := store.ReconcileRequest{ResourceID: res.ID, WithSource: req.WithSource, Force: req.Force, Reset: req.Reset}
		if p := scopeOf(r).Principal; p != nil {
			rr.RequestedBy, rr.RequestedByName = &p.UserID, p.Username
		}
		out, err = h.store.CreateReconcileRequest(ctx, tx, rr)
		if err != nil {
			return nil, err
		}
		if _, err := h.river.InsertTx(ctx, tx, jobs.ReconcileResourceArgs{RequestID: out.ID}, nil); err != nil {
			return nil, fmt.Errorf("enqueue reconcile: %w", err)
		}
		ch := resourceChange(res, nil, nil, "reconcile requested for")
		ch.Details = map[string]any{"reconcile_request_id": out.ID, "with_source": req.WithSource, "force": req.Force, "reset": req.Reset}
		return ch, nil
	})
	return out, err
}

func isEmptyBody(err error) bool { return err == errEmptyBody }

func (h *Handler) suspendResource(w http.ResponseWriter, r *http.Request) { h.setSuspended(w, r, true) }
func (h *Handler) resumeResource(w http.ResponseWriter, r *http.Request)  { h.setSuspended(w, r, false) }

func (h *Handler) setSuspended(w http.ResponseWriter, r *http.Request, suspend bool) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	out, err := h.SetSuspended(r, id, suspend)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, out)
}

// SetSuspended records `flux suspend` / `flux resume` as the resource's desired spec.suspend
// and enqueues the apply that puts it into the cluster (the API answers 202 with the resource).
// r carries the authorized scope of action resource.suspend or resource.resume.
func (h *Handler) SetSuspended(r *http.Request, id int64, suspend bool) (*store.Resource, error) {
	var out *store.Resource
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		res, err := h.lockOwnResource(ctx, tx, scopeOf(r), id)
		if err != nil {
			return nil, err
		}
		if out, err = h.store.SetResourceSuspended(ctx, tx, res.ID, suspend); err != nil {
			return nil, err
		}
		if err := jobs.EnqueueApplyTx(ctx, h.river, tx, res.ID); err != nil {
			return nil, err
		}
		verb := "resumed"
		if suspend {
			verb = "suspended"
		}
		return resourceChange(res, map[string]bool{"suspended": res.Suspended}, map[string]bool{"suspended": suspend}, verb), nil
	})
	return out, err
}

// listReconciles lists a resource's reconcile requests, newest first, paged by ?before=id.
func (h *Handler) listReconciles(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	before, limit := p.int64("before"), p.limit()
	res, err := h.ownResource(r, &p, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.store.ListReconcileRequests(r.Context(), h.store.Pool(), res.ID, before, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, limit, func(q store.ReconcileRequest) int64 { return q.ID }))
}

// ownResource reads the resource the path's id names, once the request's parameters in p
// parsed (their error first): one of the scoped project's; another project's is a 404.
func (h *Handler) ownResource(r *http.Request, p *params, id int64) (*store.Resource, error) {
	if p.err != nil {
		return nil, p.err
	}
	res, err := h.store.ResourceByID(r.Context(), h.store.Pool(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && res.ProjectID != scopeOf(r).projectID():
		return nil, errNotFound("gitops resource %d: not found", id)
	case err != nil:
		return nil, err // the database's failure is a 500, not a missing resource
	}
	return res, nil
}
