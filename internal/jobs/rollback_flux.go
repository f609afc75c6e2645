package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// pinSuffix names the GitRepository a pinned Kustomization reads: <kustomization>-pinned.
const pinSuffix = "-pinned"

// pin points the environment's Kustomization at a copy of its GitRepository pinned to the
// target commit (spec.ref.commit), in tx: the copy is a new resource (applied by its own job,
// credentials included), the Kustomization's sourceRef is changed to it, and the original
// sourceRef is kept on the rollback so that unlocking restores it. Only this environment is
// pinned; other environments reading the same GitRepository go on following the branch.
func (w *RollbackWorker) pin(ctx context.Context, tx pgx.Tx, rc *river.Client[pgx.Tx], rb *store.Rollback) error {
	if rb.ResourceID == nil {
		return permanent(errors.New("the app has no Kustomization to pin"))
	}
	k, err := w.Store.LockResourceByID(ctx, tx, *rb.ResourceID)
	if err != nil {
		return err
	}
	src, ok := sourceOfKustomization(k)
	if !ok {
		return permanent(fmt.Errorf("%s %s/%s does not read a GitRepository fluxbridge can pin", k.Kind, k.Namespace, k.Name))
	}
	orig, err := w.Store.LockResourceByRef(ctx, tx, store.ObjectRef{Cluster: k.Cluster, Kind: src.Kind, Namespace: src.Namespace, Name: src.Name})
	if errors.Is(err, store.ErrNotFound) {
		return permanent(fmt.Errorf("GitRepository %s/%s is not managed by fluxbridge, so it cannot be pinned", src.Namespace, src.Name))
	}
	if err != nil {
		return err
	}
	spec, err := fluxspec.Decode(orig.Kind, orig.Config)
	if err != nil {
		return permanent(fmt.Errorf("GitRepository %s/%s: %w", orig.Namespace, orig.Name, err))
	}
	gc := *spec.(*fluxspec.GitRepositoryConfig)
	// The copy has its own credential Secret (written by its apply job), unless the original
	// names one.
	gc.Ref = &fluxspec.GitRef{Commit: rb.TargetCommit}
	if gc.SecretRef == fluxspec.AuthSecretName(orig.Name) {
		gc.SecretRef = "" // the original's own Secret: the copy derives one of its own
	}
	cfg, err := json.Marshal(gc)
	if err != nil {
		return err
	}
	name := k.Name + pinSuffix
	pinned, err := w.Store.LockResourceByRef(ctx, tx, store.ObjectRef{Cluster: k.Cluster, Kind: src.Kind, Namespace: src.Namespace, Name: name})
	switch {
	case errors.Is(err, store.ErrNotFound):
		pinned, err = w.Store.CreateResource(ctx, tx, store.NewResource{
			ProjectID: rb.ProjectID, EnvironmentID: &rb.EnvironmentID, RepositoryID: orig.RepositoryID, Cluster: k.Cluster,
			Kind: src.Kind, Namespace: src.Namespace, Name: name, Config: cfg,
		})
	case err == nil && pinned.ApplyStatus == store.ApplyDeleting:
		return fmt.Errorf("the previous pin %s/%s is still being deleted", src.Namespace, name)
	case err == nil:
		pinned, err = w.Store.UpdateResourceConfig(ctx, tx, pinned.ID, cfg, orig.RepositoryID)
	}
	if err != nil {
		return err
	}
	prev, _ := json.Marshal(fluxspec.SourceRef{Kind: src.Kind, Name: src.Name, Namespace: src.Namespace})
	if rb.OriginalSource == nil {
		rb.OriginalSource = prev
		if old, err := w.Store.PinningRollback(ctx, tx, k.ID); err == nil && len(old.OriginalSource) > 0 {
			rb.OriginalSource = old.OriginalSource // pinned again: unlocking goes back to the branch
		}
	}
	ref, _ := json.Marshal(fluxspec.SourceRef{Kind: src.Kind, Name: name, Namespace: src.Namespace})
	kcfg, err := withSourceRef(k.Config, ref)
	if err != nil {
		return err
	}
	if _, err := w.Store.UpdateResourceConfig(ctx, tx, k.ID, kcfg, k.RepositoryID); err != nil {
		return err
	}
	rb.PinResourceID = &pinned.ID
	return EnqueueApplyTx(ctx, rc, tx, pinned.ID, k.ID)
}

// pinApplied tells whether the pinned source and the Kustomization pointing at it are in the
// cluster.
func (w *RollbackWorker) pinApplied(ctx context.Context, rb *store.Rollback) (bool, error) {
	for _, id := range []*int64{rb.PinResourceID, rb.ResourceID} {
		if id == nil {
			continue
		}
		r, err := w.Store.ResourceByID(ctx, w.Store.Pool(), *id)
		if err != nil {
			return false, err
		}
		if r.ApplyStatus == store.ApplyFailed {
			return false, permanent(fmt.Errorf("%s %s/%s could not be applied: %s", r.Kind, r.Namespace, r.Name, r.ApplyError))
		}
		if r.AppliedSpecVersion < r.SpecVersion {
			return false, nil
		}
	}
	return true, nil
}

// startReconcile asks Flux, in tx, to reconcile the Kustomization with its source, and moves
// the rollback to reconciling with its deadline: the Kustomization's timeout and a minute.
func (w *RollbackWorker) startReconcile(ctx context.Context, tx pgx.Tx, rb *store.Rollback) error {
	k, err := w.Store.ResourceByID(ctx, tx, *rb.ResourceID)
	if err != nil {
		return err
	}
	if err := RequestReconcileTx(ctx, tx, w.Store, k, fmt.Sprintf("rollback %d", rb.ID), rb.RequestedBy); err != nil {
		return err
	}
	timeout := fluxspec.DefaultReconcileTimeout
	if spec, err := fluxspec.Decode(k.Kind, k.Config); err == nil {
		timeout = fluxspec.ReconcileTimeout(spec)
	}
	deadline := time.Now().Add(timeout)
	rb.Phase, rb.DeadlineAt = store.RollbackReconciling, &deadline
	rb.Message = fmt.Sprintf("waiting for Flux to apply %s and report Ready", shortSHA(rb.ExpectedCommit))
	return nil
}

// verify reads the Kustomization from its cluster and decides the rollback: succeeded when it
// applied the expected commit (a revert commit, or a commit on top of it) and is Ready,
// failed when Flux's verdict at that commit is a failure, timed out at the deadline;
// otherwise it records the progress and snoozes.
func (w *RollbackWorker) verify(ctx context.Context, rb *store.Rollback) error {
	k, err := w.Store.ResourceByID(ctx, w.Store.Pool(), *rb.ResourceID)
	if err != nil {
		return err
	}
	cl, err := w.Clusters.Get(k.Cluster)
	if err != nil {
		return w.finish(ctx, rb, store.RollbackFailed, fmt.Sprintf("cluster %s: %v", k.Cluster, err), "")
	}
	kctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	u, err := flux.Get(kctx, cl.Client, refOf(k))
	if err != nil {
		return err // the cluster may be back soon; River retries
	}
	o := flux.Observe(u)
	covered := func(rev string) (bool, error) {
		sha := revisionSHA(rev)
		switch {
		case sha == "":
			return false, nil
		case sha == rb.ExpectedCommit:
			return true, nil
		case rb.Strategy == store.RollbackPin || w.IsAncestor == nil || k.RepositoryID == nil:
			return false, nil
		}
		return w.IsAncestor(kctx, *k.RepositoryID, rb.ExpectedCommit, sha)
	}
	applied, err := covered(o.AppliedRevision)
	if err != nil {
		return err
	}
	switch {
	case o.Status == flux.StatusReady && applied:
		return w.finish(ctx, rb, store.RollbackSucceeded,
			fmt.Sprintf("Flux applied %s and reports %s/%s Ready: %s", o.AppliedRevision, k.Namespace, k.Name, o.Message), o.AppliedRevision)
	case o.Status == flux.StatusFailed:
		attempted, err := covered(o.AttemptedRevision)
		if err != nil {
			return err
		}
		if attempted {
			return w.finish(ctx, rb, store.RollbackFailed,
				fmt.Sprintf("Flux could not apply %s: %s: %s", o.AttemptedRevision, o.Reason, o.Message), o.AttemptedRevision)
		}
	case o.Status == flux.StatusSuspended:
		return w.finish(ctx, rb, store.RollbackFailed, fmt.Sprintf("%s %s/%s is suspended: resume it to apply the rollback", k.Kind, k.Namespace, k.Name), "")
	}
	if rb.DeadlineAt != nil && time.Now().After(*rb.DeadlineAt) {
		return w.finish(ctx, rb, store.RollbackTimedOut, fmt.Sprintf("Flux did not apply %s in time; last seen: %s %s: %s (applied %s)",
			shortSHA(rb.ExpectedCommit), o.Status, o.Reason, o.Message, o.AppliedRevision), "")
	}
	msg := fmt.Sprintf("waiting for Flux to apply %s: %s %s", shortSHA(rb.ExpectedCommit), o.Status, o.Reason)
	if msg != rb.Message {
		rb.Message = msg
		if err := w.Store.SaveRollback(ctx, w.Store.Pool(), rb); err != nil {
			return err
		}
	}
	return river.JobSnooze(w.Poll)
}
