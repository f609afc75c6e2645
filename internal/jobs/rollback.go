package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// RollbackArgs asks the worker to carry out a rollback (R11).
type RollbackArgs struct {
	RollbackID int64 `json:"rollback_id"`
}

// Kind implements river.JobArgs.
func (RollbackArgs) Kind() string { return "rollback" }

// InsertOpts implements river.JobArgsWithInsertOpts: the git queue (the revert is a push), one
// job per rollback.
func (RollbackArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueGit, MaxAttempts: commitPushAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RollbackWorker carries a rollback through its phases, one step per run, snoozing (never
// sleeping) while Flux works:
//
//  1. pending → committed: the revert strategy restores the app's directory to its content at
//     the target commit in one new commit (gitops.Writer.Restore, under the repository's push
//     lock; never a force push), recorded on the rollback's deployment like a UI deploy; the
//     pin strategy points the environment's Kustomization at a GitRepository pinned to the
//     commit. Either way the app is locked: the image automation that writes to its directory
//     is suspended, so it does not roll the app forward again, until someone unlocks it.
//  2. committed → reconciling: Flux is asked to reconcile the source and the Kustomization
//     (reconcile.fluxcd.io/requestedAt), with a deadline.
//  3. reconciling → succeeded, failed or timed_out: when the Kustomization has handled the
//     request, applied the expected commit (or a descendant) and reports Ready, the rollback
//     succeeded; a Ready=False verdict at that commit fails it with Flux's message, and the
//     deadline times it out. The verdict is recorded on the deployment and in the audit log.
//
// It is safe to run twice: each step reads the row's phase under a lock.
type RollbackWorker struct {
	river.WorkerDefaults[RollbackArgs]
	Store     *store.Store
	Git       *gitops.Writer
	Secrets   secrets.Store
	Locks     *store.PushLocks
	Committer gitops.Signature
	// Clusters let the job ask Flux to reconcile and read its verdict; without them a rollback
	// ends at committed and its deployment is settled by Flux's events alone.
	Clusters *cluster.Registry
	// IsAncestor accepts a later commit that contains the revert; optional.
	IsAncestor AncestorFunc
	// Poll is the snooze between looks at the Kustomization.
	Poll time.Duration
}

// Timeout bounds one step; the commit step may wait for the repository's lock.
func (w *RollbackWorker) Timeout(*river.Job[RollbackArgs]) time.Duration { return 10 * time.Minute }

// NextRetry backs off like commit_push: a Git host's hiccup is retried soon.
func (w *RollbackWorker) NextRetry(job *river.Job[RollbackArgs]) time.Time {
	d := 5 * time.Second << min(job.Attempt, 9)
	return time.Now().Add(min(d, 15*time.Minute))
}

// Work implements river.Worker.
func (w *RollbackWorker) Work(ctx context.Context, job *river.Job[RollbackArgs]) error {
	db := w.Store.Pool()
	rb, err := w.Store.RollbackByID(ctx, db, job.Args.RollbackID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil || rb.Final() {
		return err
	}
	d, err := w.Store.DeploymentByID(ctx, db, rb.DeploymentID)
	if err != nil {
		return err
	}
	switch d.Status {
	case store.DeployCancelled, store.DeployRejected:
		return w.finish(ctx, rb, store.RollbackCancelled, "the rollback's deployment was "+d.Status, "")
	case store.DeployAwaitingApproval:
		return river.JobCancel(fmt.Errorf("rollback %d is awaiting approval", rb.ID))
	}
	switch rb.Phase {
	case store.RollbackPending:
		if rb.Strategy == store.RollbackPin {
			return w.pinStep(ctx, job, rb, d)
		}
		if err := w.commit(ctx, job, rb, d); err != nil {
			return err
		}
	case store.RollbackCommitted:
		if err := w.reconcileStep(ctx, job, rb); err != nil {
			return err
		}
	case store.RollbackReconciling:
		return w.verify(ctx, rb)
	}
	if rb, err = w.Store.RollbackByID(ctx, db, rb.ID); err != nil || rb.Final() || w.Clusters == nil {
		return err
	}
	return river.JobSnooze(w.Poll)
}

// pinStep pins the environment's Kustomization to the target commit and locks the app.
func (w *RollbackWorker) pinStep(ctx context.Context, job *river.Job[RollbackArgs], rb *store.Rollback, d *store.Deployment) error {
	if w.Clusters == nil {
		return w.failed(ctx, job, rb, permanent(errors.New("pinning needs cluster access, and no cluster is configured")))
	}
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	err = w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		cur, err := w.Store.LockRollback(ctx, tx, rb.ID)
		if err != nil || cur.Phase != store.RollbackPending {
			return err
		}
		if err := w.pin(ctx, tx, rc, cur); err != nil {
			return err
		}
		if err := lockImageAutomation(ctx, tx, w.Store, rc, cur); err != nil {
			return err
		}
		msg := fmt.Sprintf("pinned %s to commit %s", rb.Path, shortSHA(rb.TargetCommit))
		if _, err := w.Store.RecordPush(ctx, tx, d.ID, store.PushOutcome{Status: store.DeployPushed, CommitSHA: rb.TargetCommit, Message: msg}); err != nil {
			return err
		}
		cur.Phase, cur.ExpectedCommit, cur.Message = store.RollbackCommitted, rb.TargetCommit, msg
		if err := w.Store.SaveRollback(ctx, tx, cur); err != nil {
			return err
		}
		return w.audit(ctx, tx, cur, "deployment.pinned", msg, map[string]any{"pin_resource_id": cur.PinResourceID, "locked_resource_ids": cur.LockedResourceIDs})
	})
	if err != nil {
		return w.failed(ctx, job, rb, err)
	}
	return river.JobSnooze(w.Poll)
}

// reconcileStep asks Flux to reconcile once what the rollback changed is in the cluster.
func (w *RollbackWorker) reconcileStep(ctx context.Context, job *river.Job[RollbackArgs], rb *store.Rollback) error {
	if w.Clusters == nil || rb.ResourceID == nil {
		return nil // nothing to ask Flux; its events settle the deployment
	}
	if rb.Strategy == store.RollbackPin {
		ok, err := w.pinApplied(ctx, rb)
		if err != nil {
			return w.failed(ctx, job, rb, err)
		}
		if !ok {
			return nil // snoozes
		}
	}
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		cur, err := w.Store.LockRollback(ctx, tx, rb.ID)
		if err != nil || cur.Phase != store.RollbackCommitted {
			return err
		}
		if err := w.startReconcile(ctx, tx, cur); err != nil {
			return err
		}
		return w.Store.SaveRollback(ctx, tx, cur)
	})
}

// commit makes the revert commit and records it.
func (w *RollbackWorker) commit(ctx context.Context, job *river.Job[RollbackArgs], rb *store.Rollback, d *store.Deployment) error {
	log := zerolog.Ctx(ctx).With().Int64("rollback_id", rb.ID).Int64("deployment_id", d.ID).Logger()
	db := w.Store.Pool()
	repo, err := w.Store.RepositoryByID(ctx, db, rb.RepositoryID)
	if err != nil {
		return w.failed(ctx, job, rb, permanent(err))
	}
	gr, err := GitRepo(ctx, w.Secrets, repo, rb.Branch)
	if err != nil {
		if errors.Is(err, ErrCredentialsMissing) {
			err = permanent(err)
		}
		return w.failed(ctx, job, rb, err)
	}
	m, err := w.message(ctx, job, rb, d)
	if err != nil {
		return err
	}
	unlock, err := w.Locks.Lock(ctx, rb.RepositoryID)
	if err != nil {
		return w.failed(ctx, job, rb, err)
	}
	defer unlock()
	if rb, err = w.Store.RollbackByID(ctx, db, rb.ID); err != nil || rb.Phase != store.RollbackPending {
		return err // another run got here first
	}
	ci := m.commitInfo()
	res, err := w.Git.Restore(ctx, gr, rb.Path, rb.TargetCommit, ci)
	if errors.Is(err, gitops.ErrRevisionNotFound) {
		err = permanent(fmt.Errorf("commit %s is no longer in the history of %s (was the branch rewritten?): %w", shortSHA(rb.TargetCommit), rb.Branch, err))
	}
	if err != nil {
		return w.failed(ctx, job, rb, err)
	}
	out := store.PushOutcome{Status: store.DeployPushed, CommitSHA: res.SHA, CommitAuthor: signature(ci.Author)}
	if res.Changed {
		out.CommitMessage = fullMessage(ci)
		out.Message = fmt.Sprintf("pushed %s restoring %s to %s", shortSHA(res.SHA), rb.Path, shortSHA(rb.TargetCommit))
	} else {
		out.CommitAuthor = ""
		out.Message = fmt.Sprintf("nothing to commit: %s on %s already has its content at %s", rb.Path, rb.Branch, shortSHA(rb.TargetCommit))
	}
	// The commit is pushed: record it even when the worker is stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err = w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		if err := w.copySpec(ctx, tx, rb, d); err != nil {
			return err
		}
		if ok, err := w.Store.RecordPush(ctx, tx, d.ID, out); err != nil || !ok {
			return err
		}
		rb.Phase, rb.ExpectedCommit, rb.Message = store.RollbackCommitted, res.SHA, out.Message
		rc, _ := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err := lockImageAutomation(ctx, tx, w.Store, rc, rb); err != nil {
			return err
		}
		if w.Clusters != nil && rb.ResourceID != nil {
			if err := w.startReconcile(ctx, tx, rb); err != nil {
				return err
			}
		}
		if err := w.Store.SaveRollback(ctx, tx, rb); err != nil {
			return err
		}
		return w.audit(ctx, tx, rb, "deployment.pushed", out.Message, map[string]any{
			"commit_sha": res.SHA, "changed": res.Changed, "files": res.Files, "rollback_to": rb.TargetCommit,
			"locked_resource_ids": rb.LockedResourceIDs,
		})
	})
	if err != nil {
		return err
	}
	log.Info().Str("sha", res.SHA).Bool("changed", res.Changed).Str("path", rb.Path).Msg("rollback committed")
	return nil
}

// message gathers who asked and who approved.
func (w *RollbackWorker) message(ctx context.Context, job *river.Job[RollbackArgs], rb *store.Rollback, d *store.Deployment) (rollbackMessage, error) {
	db := w.Store.Pool()
	env, err := w.Store.EnvironmentByID(ctx, db, rb.EnvironmentID)
	if err != nil {
		return rollbackMessage{}, err
	}
	m := rollbackMessage{App: rb.App, Env: env.Name, Dir: rb.Path, Target: rb.TargetCommit, DeployID: d.ID, Committer: w.Committer}
	if d.Trigger == store.TriggerAutoRollback {
		m.FailedID = d.TriggerRef
	}
	if rb.TargetDeploymentID != nil {
		if m.TargetDep, err = w.Store.DeploymentByID(ctx, db, *rb.TargetDeploymentID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return m, err
		}
	}
	if d.RequestedBy != nil {
		if m.Requester, err = w.Store.UserByID(ctx, db, *d.RequestedBy); err != nil && !errors.Is(err, store.ErrNotFound) {
			return m, err
		}
	}
	votes, err := approval.New(w.Store, nil).ApprovedByJob(ctx, db, job.ID)
	if err != nil {
		return m, fmt.Errorf("read approvers: %w", err)
	}
	m.Approvers = approverNames(votes)
	return m, nil
}

// copySpec gives the rollback's deployment the form of the deployment rolled back to, when it
// had one, so that the next deploy of the app describes its changes against what the
// rollback restored.
func (w *RollbackWorker) copySpec(ctx context.Context, tx pgx.Tx, rb *store.Rollback, d *store.Deployment) error {
	if rb.TargetDeploymentID == nil {
		return nil
	}
	if _, err := w.Store.DeploymentSpecByID(ctx, tx, d.ID); err == nil {
		return nil // a second run
	}
	src, err := w.Store.DeploymentSpecByID(ctx, tx, *rb.TargetDeploymentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // a gitops-git deployment: no form
	}
	if err != nil {
		return err
	}
	_, err = w.Store.CreateDeploymentSpec(ctx, tx, store.DeploymentSpec{
		DeploymentID: d.ID, RepositoryID: rb.RepositoryID, Branch: rb.Branch, Path: rb.Path,
		Namespace: src.Namespace, Kind: src.Kind, TemplateID: src.TemplateID, TemplateName: src.TemplateName, Form: src.Form,
		ImagePolicy: src.ImagePolicy,
	})
	return err
}

// failed settles a failed step as commit_push does: a permanent failure, or a transient one on
// the last attempt, fails the rollback and its deployment with a message a person can act on.
func (w *RollbackWorker) failed(ctx context.Context, job *river.Job[RollbackArgs], rb *store.Rollback, err error) error {
	perm := isPermanent(err)
	if !perm && job.Attempt < job.MaxAttempts {
		return err
	}
	msg := explain(err)
	if !perm {
		msg = fmt.Sprintf("gave up after %d attempts: %s", job.Attempt, msg)
	}
	if ferr := w.finish(context.WithoutCancel(ctx), rb, store.RollbackFailed, msg, ""); ferr != nil {
		return errors.Join(err, ferr)
	}
	if perm {
		return river.JobCancel(err)
	}
	return err
}

// finish records a final phase on the rollback and its deployment, with its audit row.
func (w *RollbackWorker) finish(ctx context.Context, rb *store.Rollback, phase, msg, revision string) error {
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		cur, err := w.Store.LockRollback(ctx, tx, rb.ID)
		if err != nil || cur.Final() {
			return err
		}
		cur.Phase, cur.Message = phase, msg
		if err := w.Store.SaveRollback(ctx, tx, cur); err != nil {
			return err
		}
		status := map[string]string{
			store.RollbackSucceeded: store.DeploySucceeded, store.RollbackFailed: store.DeployFailed,
			store.RollbackTimedOut: store.DeployFailed, store.RollbackCancelled: store.DeployCancelled,
		}[phase]
		d, err := w.Store.LockDeployment(ctx, tx, cur.DeploymentID)
		if err != nil {
			return err
		}
		switch d.Status {
		case store.DeployPending, store.DeployPushed:
			if err := w.Store.FinishDeployment(ctx, tx, d.ID, status, revision, msg, time.Now()); err != nil {
				return err
			}
		}
		return w.audit(ctx, tx, cur, "deployment.rollback_"+phase, msg, map[string]any{"revision": revision})
	})
}

// audit appends a row about the rollback, done by the worker.
func (w *RollbackWorker) audit(ctx context.Context, tx pgx.Tx, rb *store.Rollback, action, msg string, details map[string]any) error {
	env, err := w.Store.EnvironmentByID(ctx, tx, rb.EnvironmentID)
	if err != nil {
		return err
	}
	det := map[string]any{"rollback_id": rb.ID, "strategy": rb.Strategy, "target_commit": rb.TargetCommit, "app": rb.App, "phase": rb.Phase}
	for k, v := range details {
		det[k] = v
	}
	b, err := json.Marshal(det)
	if err != nil {
		return err
	}
	_, err = w.Store.InsertAudit(ctx, tx, store.AuditEntry{
		ActorType: store.ActorSystem, ActorName: "rollback", Action: action,
		TargetType: "deployment", TargetID: fmt.Sprint(rb.DeploymentID), ProjectID: &rb.ProjectID,
		EnvironmentID: &rb.EnvironmentID, Cluster: env.Cluster, Message: msg, Details: b,
	})
	return err
}
