package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// followGrace is how long a followed Kustomization may sit idle at an older revision before
// the job asks for a run itself. kustomize-controller starts the run its source's new
// artifact triggers within milliseconds; one that never attempts the artifact failed before
// it could (the artifact could not be fetched, the path is missing), and a requested run
// reports that failure against the request.
const followGrace = 10 * time.Second

// followMessage is the progress message of a request that follows Flux's own run. It does not
// change while the job follows, so the row's updated_at tells when following began.
func followMessage(rev string) string {
	return "source has the new revision " + rev + "; waiting for Flux to apply it"
}

// reactsToArtifact tells whether kustomize-controller reconciles res on its own after its
// source produced the artifact src reports, and returns that artifact's revision. It does when
// the artifact is one the Kustomization has not attempted yet, or is attempting now: its
// controller watches the source and enqueues the Kustomization on a new revision, as `flux
// reconcile kustomization --with-source` relies on too. Annotating the Kustomization as well
// would only queue a second, full run (apply and health checks) behind the first. Objects of
// other kinds, suspended ones and those of a manual-sync environment (suspended by design,
// resumed only by a request) are requested as before.
func (w *ReconcileResourceWorker) reactsToArtifact(kctx, ctx context.Context, tx pgx.Tx, cl *cluster.Cluster, res *store.Resource, src flux.Progress) (string, bool, error) {
	rev := src.AppliedRevision
	if res.Kind != fluxspec.KindKustomization || res.Suspended || rev == "" || res.EnvironmentID == nil {
		return "", false, nil
	}
	env, err := w.Store.EnvironmentByID(ctx, tx, *res.EnvironmentID)
	if err != nil {
		return "", false, err
	}
	if s, _ := fluxspec.ParseEnvSettings(env.GitopsConfig); s.Manual() {
		return "", false, nil
	}
	u, err := flux.Get(kctx, cl.Client, refOf(res))
	if err != nil {
		return "", false, err
	}
	k := flux.Observe(u)
	if k.Suspended {
		return "", false, nil
	}
	inProgress := k.Status == flux.StatusReconciling && k.Reason == meta.ProgressingReason
	return rev, k.AttemptedRevision != rev || inProgress, nil
}

// follow decides a request whose Kustomization kustomize-controller reconciles on its own for
// the source revision rr.Revision: the verdict is Flux's once it attempted that revision and
// Ready is decided. A Kustomization waiting on dependencies is given their dependencyTimeout,
// as a requested run is; one that stays idle at an older revision past followGrace is asked
// for a run (the token path), whose verdict then counts.
func (w *ReconcileResourceWorker) follow(kctx, ctx context.Context, tx pgx.Tx, cl *cluster.Cluster, res *store.Resource, spec fluxspec.Spec, rr *store.ReconcileRequest) error {
	u, err := flux.Get(kctx, cl.Client, refOf(res))
	if err != nil {
		return err
	}
	k := flux.Observe(u)
	deadline := rr.CreatedAt.Add(fluxspec.ReconcileTimeout(spec))
	switch {
	case k.Suspended:
		return w.finish(ctx, tx, res, rr, store.ReconcileSuspended, "suspended while the reconcile was pending", "")
	case k.AttemptedRevision == rr.Revision && k.Decided():
		status := store.ReconcileSucceeded
		if k.Status == flux.StatusFailed {
			status = store.ReconcileFailed
		}
		return w.finish(ctx, tx, res, rr, status, k.Message, k.Revision)
	case k.Reason == meta.DependencyNotReadyReason:
		if wait := fluxspec.DependencyWait(spec); time.Since(rr.CreatedAt) > wait {
			return w.finish(ctx, tx, res, rr, store.ReconcileTimedOut, fmt.Sprintf("dependencies not ready after %s: %s", wait, k.Message), "")
		}
		deadline = deadline.Add(fluxspec.DependencyWait(spec))
	case k.AttemptedRevision != rr.Revision && k.Status != flux.StatusReconciling && time.Since(rr.UpdatedAt) > followGrace:
		return w.request(kctx, ctx, tx, cl, res, rr)
	}
	if time.Now().After(deadline) {
		return w.finish(ctx, tx, res, rr, store.ReconcileTimedOut, fmt.Sprintf("Flux did not apply %s in time: %s %s", rr.Revision, k.Status, k.Message), "")
	}
	return errSnooze
}
