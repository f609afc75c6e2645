package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ReconcileResourceArgs asks the worker to carry out a manual reconcile request.
type ReconcileResourceArgs struct {
	RequestID int64 `json:"request_id"`
}

// Kind implements river.JobArgs.
func (ReconcileResourceArgs) Kind() string { return "reconcile_resource" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ReconcileResourceArgs) InsertOpts() river.InsertOpts { return kubeInsertOpts() }

// ReconcileResourceWorker carries out `flux reconcile [--with-source]` for a reconcile request
// and follows it to a verdict. Each run does one step and snoozes (never sleeps): request the
// source and wait until it handled the request; request the object (resuming it for this one
// reconcile if its environment syncs only on request); wait until
// status.lastHandledReconcileAt equals the token and Ready is decided. When the source came
// back with an artifact a Kustomization has not applied yet, kustomize-controller runs it
// for that artifact on its own; the job then follows that run (reconcile_follow.go) instead
// of requesting a second one. The request row shows the progress; the verdict is audited. A
// suspended object ends the request as "suspended".
type ReconcileResourceWorker struct {
	river.WorkerDefaults[ReconcileResourceArgs]
	kubeDeps
}

// Timeout bounds one step.
func (w *ReconcileResourceWorker) Timeout(*river.Job[ReconcileResourceArgs]) time.Duration {
	return 2 * kubeCallTimeout
}

// NextRetry implements river.Worker.
func (w *ReconcileResourceWorker) NextRetry(job *river.Job[ReconcileResourceArgs]) time.Time {
	return time.Now().Add(kubeBackoff(job.Attempt))
}

// errSnooze tells Work to commit the step and then snooze; returning river.JobSnooze from
// inside the transaction would roll the step back.
var errSnooze = errors.New("snooze")

// Work implements river.Worker.
func (w *ReconcileResourceWorker) Work(ctx context.Context, job *river.Job[ReconcileResourceArgs]) error {
	snooze := false
	err := w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		rr, err := w.Store.LockReconcileRequest(ctx, tx, job.Args.RequestID)
		if errors.Is(err, store.ErrNotFound) {
			return river.JobCancel(err)
		}
		if err != nil || !rr.Open() {
			return err
		}
		res, err := w.Store.ResourceByID(ctx, tx, rr.ResourceID)
		if err != nil {
			return err
		}
		spec, err := fluxspec.Decode(res.Kind, res.Config)
		if err != nil {
			return w.finish(ctx, tx, res, rr, store.ReconcileFailed, "config no longer valid: "+err.Error(), "")
		}
		cl, err := w.clusterOf(res)
		if err != nil {
			var cancel *river.JobCancelError
			if errors.As(err, &cancel) {
				return w.finish(ctx, tx, res, rr, store.ReconcileFailed, err.Error(), "")
			}
			return err
		}
		kctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
		defer cancel()
		err = w.step(kctx, ctx, tx, cl, res, spec, rr)
		if errors.Is(err, errSnooze) {
			snooze = true
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if snooze {
		return river.JobSnooze(w.Poll)
	}
	return nil
}

// step advances the request by one state; kctx bounds the cluster calls.
func (w *ReconcileResourceWorker) step(kctx, ctx context.Context, tx pgx.Tx, cl *cluster.Cluster, res *store.Resource, spec fluxspec.Spec, rr *store.ReconcileRequest) error {
	ref := refOf(res)
	deadline := rr.CreatedAt.Add(fluxspec.ReconcileTimeout(spec))
	switch rr.Status {
	case store.ReconcilePending:
		if rr.WithSource {
			if src, ok := fluxspec.SourceOf(spec, res.Namespace, res.Name); ok {
				token := flux.NewToken(time.Now())
				err := flux.RequestReconcile(kctx, cl.Client, flux.Ref(src), token, flux.RequestOptions{})
				if errors.Is(err, flux.ErrSuspended) {
					return w.finish(ctx, tx, res, rr, store.ReconcileSuspended, fmt.Sprintf("source %s is suspended; resume it first", src), "")
				}
				if err != nil {
					return err
				}
				rr.Status, rr.SourceToken, rr.Message = store.ReconcileSourceRequested, token, "waiting for source "+src.String()
				return w.saveAndSnooze(ctx, tx, rr)
			}
		}
		return w.request(kctx, ctx, tx, cl, res, rr)

	case store.ReconcileSourceRequested:
		src, _ := fluxspec.SourceOf(spec, res.Namespace, res.Name)
		p, err := flux.ReadProgress(kctx, cl.Client, flux.Ref(src), rr.SourceToken)
		if err != nil {
			return err
		}
		switch {
		case p.Done() && p.Status == flux.StatusFailed:
			return w.finish(ctx, tx, res, rr, store.ReconcileFailed, fmt.Sprintf("source %s failed: %s", src, p.Message), "")
		case p.Done():
			if rev, ok, err := w.reactsToArtifact(kctx, ctx, tx, cl, res, p); err != nil || ok {
				if err != nil {
					return err
				}
				rr.Status, rr.Revision, rr.Message = store.ReconcileRequested, rev, followMessage(rev)
				return w.saveAndSnooze(ctx, tx, rr)
			}
			return w.request(kctx, ctx, tx, cl, res, rr)
		case time.Now().After(deadline):
			return w.finish(ctx, tx, res, rr, store.ReconcileTimedOut, fmt.Sprintf("source %s did not reconcile within %s", src, fluxspec.ReconcileTimeout(spec)), "")
		}
		return errSnooze

	case store.ReconcileRequested:
		if rr.Token == "" {
			return w.follow(kctx, ctx, tx, cl, res, spec, rr)
		}
		p, err := flux.ReadProgress(kctx, cl.Client, ref, rr.Token)
		if err != nil {
			return err
		}
		if p.Suspended && !rr.Resumed {
			return w.finish(ctx, tx, res, rr, store.ReconcileSuspended, "suspended while the reconcile was pending", "")
		}
		if p.Done() {
			status, msg := store.ReconcileSucceeded, p.Message
			if p.Status == flux.StatusFailed {
				status = store.ReconcileFailed
			}
			return w.finishResuspending(kctx, ctx, tx, cl, res, rr, status, msg, p.Revision)
		}
		if p.Handled && p.Reason == meta.DependencyNotReadyReason {
			if wait := fluxspec.DependencyWait(spec); time.Since(rr.CreatedAt) > wait {
				return w.finishResuspending(kctx, ctx, tx, cl, res, rr, store.ReconcileTimedOut,
					fmt.Sprintf("dependencies not ready after %s: %s", wait, p.Message), "")
			}
			deadline = deadline.Add(fluxspec.DependencyWait(spec))
		}
		if time.Now().After(deadline) {
			msg := "Flux did not handle the request in time (is the controller running?)"
			if p.Handled {
				msg = "no verdict in time: " + p.Message
			}
			return w.finishResuspending(kctx, ctx, tx, cl, res, rr, store.ReconcileTimedOut, msg, "")
		}
		msg := "waiting for Flux to handle the request"
		if p.Handled {
			msg = "reconciling: " + p.Message
		}
		if msg != rr.Message {
			rr.Message = msg
			return w.saveAndSnooze(ctx, tx, rr)
		}
		return errSnooze
	}
	return nil
}

// request sets the reconcile token on the object itself.
func (w *ReconcileResourceWorker) request(kctx, ctx context.Context, tx pgx.Tx, cl *cluster.Cluster, res *store.Resource, rr *store.ReconcileRequest) error {
	if res.Suspended {
		return w.finish(ctx, tx, res, rr, store.ReconcileSuspended, "suspended; resume it first", "")
	}
	// An applier of a manual-sync environment is suspended by design: resume it for this one
	// reconcile, and suspend it again when Flux has decided.
	manual := false
	if fluxspec.IsApplier(res.Kind) && res.EnvironmentID != nil {
		env, err := w.Store.EnvironmentByID(ctx, tx, *res.EnvironmentID)
		if err != nil {
			return err
		}
		settings, _ := fluxspec.ParseEnvSettings(env.GitopsConfig)
		manual = settings.Manual()
	}
	token := flux.NewToken(time.Now())
	err := flux.RequestReconcile(kctx, cl.Client, refOf(res), token, flux.RequestOptions{Force: rr.Force, Reset: rr.Reset, Resume: manual})
	if errors.Is(err, flux.ErrSuspended) {
		return w.finish(ctx, tx, res, rr, store.ReconcileSuspended, "suspended in the cluster; resume it first", "")
	}
	if err != nil {
		return err
	}
	rr.Status, rr.Token, rr.Resumed, rr.Message = store.ReconcileRequested, token, manual, "waiting for Flux to handle the request"
	return w.saveAndSnooze(ctx, tx, rr)
}

func (w *ReconcileResourceWorker) saveAndSnooze(ctx context.Context, tx pgx.Tx, rr *store.ReconcileRequest) error {
	if err := w.Store.SaveReconcileRequest(ctx, tx, rr); err != nil {
		return err
	}
	return errSnooze
}

// finishResuspending suspends a manual-sync object again before finishing.
func (w *ReconcileResourceWorker) finishResuspending(kctx, ctx context.Context, tx pgx.Tx, cl *cluster.Cluster, res *store.Resource, rr *store.ReconcileRequest, status, msg, revision string) error {
	if rr.Resumed {
		if err := flux.SetSuspend(kctx, cl.Client, refOf(res), true); err != nil {
			return err
		}
		rr.Resumed = false
	}
	return w.finish(ctx, tx, res, rr, status, msg, revision)
}

// finish records the verdict on the request and in the audit log.
func (w *ReconcileResourceWorker) finish(ctx context.Context, tx pgx.Tx, res *store.Resource, rr *store.ReconcileRequest, status, msg, revision string) error {
	rr.Status, rr.Message, rr.Revision = status, msg, revision
	if err := w.Store.SaveReconcileRequest(ctx, tx, rr); err != nil {
		return err
	}
	return auditSystem(ctx, w.Store, tx, res, "resource.reconcile_"+status,
		fmt.Sprintf("reconcile of %s %s/%s in cluster %s: %s", res.Kind, res.Namespace, res.Name, res.Cluster, status),
		map[string]any{"reconcile_request_id": rr.ID, "token": rr.Token, "revision": revision, "message": msg, "with_source": rr.WithSource})
}
