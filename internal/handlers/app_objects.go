package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// appObject is a Flux object a deploy makes for its app (image automation, a helm-app's
// HelmRelease and chart source): where it goes, the config it must have, and its row when the
// cluster has one already.
type appObject struct {
	ref    store.ObjectRef
	cfg    json.RawMessage
	repoID *int64
	row    *store.Resource // nil: the deploy creates it
	id     int64           // the row's ID once the deploy has synced it
}

// changes tells whether the deploy creates or changes the object.
func (o *appObject) changes() bool { return o.row == nil || !sameJSON(o.row.Config, o.cfg) }

// syncAppObject makes the object match o in tx: created, changed, or left as it is. It returns
// the row and whether the deploy's job carries its apply (created, changed, or changed before
// by a deploy that was never pushed). Creating and changing Flux objects is maintainers' work
// (R13.1): what names the change for a refusal ("the image automation of api"). With held (the
// deploy waits for approvals) a change is a proposal that the deploy's approval makes live.
// field names the request field a conflict is reported at.
func (h *Handler) syncAppObject(ctx context.Context, tx pgx.Tx, sc *reqScope, o *appObject, held bool, field, what string) (*store.Resource, bool, error) {
	ref := o.ref
	res, err := h.store.LockResourceByRef(ctx, tx, ref)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := h.checkObjectFree(ctx, tx, ref.Cluster, fluxspec.Ref{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}); err != nil {
			return nil, false, err
		}
		if err := h.mayChangeFlux(sc, "create "+what); err != nil {
			return nil, false, err
		}
		res, err = h.store.CreateResource(ctx, tx, store.NewResource{
			ProjectID: sc.Project.ID, EnvironmentID: &sc.Env.ID, RepositoryID: o.repoID, Cluster: ref.Cluster,
			Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Config: o.cfg, Proposed: held,
		})
		return res, err == nil, err
	case err != nil:
		return nil, false, err
	case res.ProjectID != sc.Project.ID:
		return nil, false, errConflictf(field, "cluster %s already has a %s %s/%s of another project", ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
	case res.ApplyStatus == store.ApplyDeleting:
		return nil, false, errConflictf(field, "%s %s/%s is still being deleted; deploy again in a moment", ref.Kind, ref.Namespace, ref.Name)
	case res.HasPending():
		return nil, false, h.refuse("proposal_pending", errConflictf(field,
			"%s %s/%s has a change awaiting approval (approval request %s); approve or reject it first", ref.Kind, ref.Namespace, ref.Name, requestRef(res)))
	case !sameJSON(res.Config, o.cfg):
		if err := h.mayChangeFlux(sc, "change "+what); err != nil {
			return nil, false, err
		}
		if held {
			res, err = h.store.ProposeResource(ctx, tx, res.ID, nil, store.Proposal{Config: o.cfg, RepositoryID: o.repoID})
		} else {
			res, err = h.store.UpdateResourceConfig(ctx, tx, res.ID, o.cfg, o.repoID)
		}
		return res, err == nil, err
	}
	return res, h.unapplied(ctx, tx, res), nil // changed by a deploy that was never pushed
}

// deleteAppObjects removes the app's Flux objects at refs that the deploy no longer asks for;
// with held, the removal is a proposal the deploy's approval carries out. keep says how to keep
// them, for a refusal ("deploy with image_automation to keep it").
func (h *Handler) deleteAppObjects(ctx context.Context, tx pgx.Tx, sc *reqScope, refs []store.ObjectRef, held bool, field, keep string) error {
	for _, ref := range refs {
		res, err := h.store.LockResourceByRef(ctx, tx, ref)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if res.ApplyStatus == store.ApplyDeleting || res.ProjectID != sc.Project.ID || res.EnvironmentID == nil || *res.EnvironmentID != sc.Env.ID {
			continue
		}
		if res.HasPending() {
			return h.refuse("proposal_pending", errConflictf(field,
				"%s %s/%s has a change awaiting approval (approval request %s); approve or reject it first", ref.Kind, ref.Namespace, ref.Name, requestRef(res)))
		}
		if err := h.mayChangeFlux(sc, "remove "+keep); err != nil {
			return err
		}
		if held {
			if _, err := h.store.ProposeResource(ctx, tx, res.ID, nil, store.Proposal{Delete: true}); err != nil {
				return err
			}
			continue
		}
		if _, err := h.store.MarkResourceDeleting(ctx, tx, res.ID); err != nil {
			return err
		}
		if _, err := h.river.InsertTx(ctx, tx, jobs.DeleteResourceArgs{ResourceID: res.ID}, nil); err != nil {
			return fmt.Errorf("enqueue delete of %s: %w", ref, err)
		}
	}
	return nil
}

// findAppObject fills o.row with the object's row, if the cluster has one (read-only, for a
// preview; in a transaction the row stays locked until it ends).
func (h *Handler) findAppObject(ctx context.Context, db store.DBTX, o *appObject) error {
	res, err := h.store.LockResourceByRef(ctx, db, o.ref)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	o.row = res
	return nil
}
