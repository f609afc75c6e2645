package jobs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ReconcileOnPush returns the AfterPushFunc that asks Flux to apply a pushed deploy at once,
// as `flux reconcile kustomization --with-source` does: a reconcile request of the
// deployment's Kustomization, and its job, in the transaction that records the push. Without
// it Flux finds the commit on its next interval. A Kustomization that is not in the cluster
// yet (its first apply is on its way) is requested all the same: the reconcile job retries
// until the object exists. It leaves alone a deployment whose commit Flux already applied, a
// Kustomization in a cluster fluxbridge does not manage (webhook only: nobody could request
// it), a suspended one, an environment that syncs only on request, and an environment with
// gitops_config.reconcileOnDeploy false; a reconcile with source that has not started yet is
// joined.
func ReconcileOnPush(st *store.Store, clusters *cluster.Registry) AfterPushFunc {
	return func(ctx context.Context, tx pgx.Tx, d *store.Deployment) error {
		if d.GitopsResourceID == nil || d.Status != store.DeployPushed {
			return nil
		}
		res, err := st.ResourceByID(ctx, tx, *d.GitopsResourceID)
		if err != nil {
			return err
		}
		if !fluxspec.IsApplier(res.Kind) || res.Suspended || res.ApplyStatus == store.ApplyDeleting {
			return nil
		}
		if clusters == nil {
			return nil
		}
		if _, err := clusters.Get(res.Cluster); err != nil {
			return nil
		}
		env, err := st.EnvironmentByID(ctx, tx, d.EnvironmentID)
		if err != nil {
			return err
		}
		if g, err := env.Gitops(); err == nil && g.ReconcileOnDeploy != nil && !*g.ReconcileOnDeploy {
			return nil
		}
		if s, err := fluxspec.ParseEnvSettings(env.GitopsConfig); err == nil && s.Manual() {
			return nil
		}
		return RequestReconcileTx(ctx, tx, st, res, fmt.Sprintf("deployment %d", d.ID), d.RequestedBy)
	}
}

// RequestReconcileTx records a reconcile request with source for res, and its job, in tx,
// unless one is still open. by names who asks, for the request's record.
func RequestReconcileTx(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, by string, userID *int64) error {
	open, err := st.ListReconcileRequests(ctx, tx, res.ID, 0, 1)
	if err != nil {
		return err
	}
	if len(open) == 1 && open[0].Open() && open[0].WithSource && open[0].Status == store.ReconcilePending {
		return nil // not started yet: it will see this commit
	}
	rr, err := st.CreateReconcileRequest(ctx, tx, store.ReconcileRequest{
		ResourceID: res.ID, WithSource: true, RequestedBy: userID, RequestedByName: by,
	})
	if err != nil {
		return err
	}
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("enqueue reconcile of %s %s/%s: %w", res.Kind, res.Namespace, res.Name, err)
	}
	if _, err := rc.InsertTx(ctx, tx, ReconcileResourceArgs{RequestID: rr.ID}, nil); err != nil {
		return fmt.Errorf("enqueue reconcile of %s %s/%s: %w", res.Kind, res.Namespace, res.Name, err)
	}
	return nil
}
