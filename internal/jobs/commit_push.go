package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// CommitPushArgs asks the worker to render a gitops-ui deployment's form into Git and push it.
// Apply lists the Flux objects the deploy created or changed whose apply waits for the push:
// in an environment that requires approvals they are held with it, so nothing the deploy asks
// for reaches the cluster before the approvals do.
type CommitPushArgs struct {
	DeploymentID int64             `json:"deployment_id"`
	Apply        []ResourceVersion `json:"apply,omitempty"`
}

// Kind implements river.JobArgs.
func (CommitPushArgs) Kind() string { return "commit_push" }

// InsertOpts implements river.JobArgsWithInsertOpts: the git queue, and one job per deployment.
func (CommitPushArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueGit, MaxAttempts: commitPushAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// commitPushAttempts bounds River's retries of network failures (with its backoff, about an
// hour in all); the last failure marks the deployment failed.
const commitPushAttempts = 8

// AfterPushFunc runs in the transaction that records a deployment as pushed; the Kubernetes
// integration uses it to enqueue a Flux reconcile of the deployment's Kustomization.
type AfterPushFunc func(ctx context.Context, tx pgx.Tx, d *store.Deployment) error

// CommitPushWorker renders a deployment's form and pushes it as one commit: author the
// requesting user, committer the bot. Pushes to one repository run one at a time across all
// workers (a Postgres advisory lock). It is safe to run twice: a deployment that is no longer
// pending is left alone, and an unchanged tree makes no commit.
type CommitPushWorker struct {
	river.WorkerDefaults[CommitPushArgs]
	Store     *store.Store
	Git       *gitops.Writer
	Secrets   secrets.Store
	Locks     *store.PushLocks
	Committer gitops.Signature
	// AfterPush is optional.
	AfterPush AfterPushFunc
}

// recordTimeout bounds recording a push that has happened, which outlives the job's context.
const recordTimeout = 30 * time.Second

// ownCommitDepth is how far back a retried push looks for its own commit: further than the
// pushes that can land on one branch while a job waits for its retry.
const ownCommitDepth = 500

// Timeout bounds one run: waiting for the repository's lock behind other pushes, then the
// push itself (which the Writer bounds on its own).
func (w *CommitPushWorker) Timeout(*river.Job[CommitPushArgs]) time.Duration { return 10 * time.Minute }

// NextRetry retries network failures sooner than River's default at first (a Git host's
// hiccup), backing off to minutes.
func (w *CommitPushWorker) NextRetry(job *river.Job[CommitPushArgs]) time.Time {
	d := 5 * time.Second << min(job.Attempt, 9)
	return time.Now().Add(min(d, 15*time.Minute))
}

// Work implements river.Worker.
func (w *CommitPushWorker) Work(ctx context.Context, job *river.Job[CommitPushArgs]) error {
	id := job.Args.DeploymentID
	log := zerolog.Ctx(ctx).With().Int64("deployment_id", id).Logger()
	db := w.Store.Pool()
	d, err := w.Store.DeploymentByID(ctx, db, id)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if d.Status != store.DeployPending {
		log.Info().Str("status", d.Status).Msg("deployment no longer pending; nothing to push")
		return nil
	}
	p, err := w.prepare(ctx, job, d)
	if err != nil {
		return w.failed(ctx, job, d, err)
	}

	unlock, err := w.Locks.Lock(ctx, p.spec.RepositoryID)
	if err != nil {
		return w.failed(ctx, job, d, err)
	}
	defer unlock()
	// Another run may have pushed this deployment while we waited.
	if d, err = w.Store.DeploymentByID(ctx, db, id); err != nil || d.Status != store.DeployPending {
		return err
	}
	prev, err := w.Store.LastPushedSpec(ctx, db, p.spec.RepositoryID, p.spec.Branch, p.spec.Path, d.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = nil
	case err != nil:
		return w.failed(ctx, job, d, err)
	case prev.DeploymentID > d.ID:
		// A later request for the same app got here first (jobs run in any order); pushing this
		// older form now would silently roll the app back.
		return w.supersede(ctx, d, p, prev.DeploymentID)
	}
	if job.Attempt > 1 {
		// An earlier attempt may have pushed and then died before recording it (a crash, a
		// lost connection): its commit carries this deployment's trailer. Record exactly that
		// commit instead of pushing again or recording whatever the head is now.
		c, found, err := w.Git.FindTrailer(ctx, p.repo, "Deployment-Id", strconv.FormatInt(d.ID, 10), ownCommitDepth)
		if err != nil {
			return w.failed(ctx, job, d, err)
		}
		if found {
			log.Warn().Str("sha", c.SHA).Int("attempt", job.Attempt).Msg("found this deployment's commit from an earlier attempt; recording it")
			return w.record(ctx, d, p, store.PushOutcome{Status: store.DeployPushed, CommitSHA: c.SHA,
				CommitAuthor: signature(c.Author), CommitMessage: strings.TrimRight(c.Message, "\n"),
				Message: fmt.Sprintf("pushed %s to %s (found after an interrupted attempt)", shortSHA(c.SHA), p.spec.Branch)})
		}
	}
	msg, err := w.message(ctx, p, prev)
	if err != nil {
		return w.failed(ctx, job, d, err)
	}
	ci := msg.commitInfo()
	start := time.Now()
	res, err := w.Git.Apply(ctx, p.repo, p.changes, ci)
	if err != nil {
		return w.failed(ctx, job, d, err)
	}
	out := store.PushOutcome{Status: store.DeployPushed, CommitSHA: res.SHA, CommitAuthor: signature(ci.Author)}
	if res.Changed {
		out.CommitMessage = fullMessage(ci)
		out.Message = fmt.Sprintf("pushed %s to %s", shortSHA(res.SHA), p.spec.Branch)
	} else {
		out.CommitAuthor = ""
		out.Message = fmt.Sprintf("nothing to commit: %s on %s already holds this form", p.spec.Path, p.spec.Branch)
		if w.alreadyApplied(ctx, p, res.SHA) {
			out.Status = store.DeploySucceeded
			out.Message += ", and Flux has applied it"
		}
	}
	// The push happened: record it even if the worker is stopping (a graceful stop cancels ctx),
	// within a bound of its own, so a restart does not find a pushed commit unrecorded.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := w.record(rctx, d, p, out); err != nil {
		return err
	}
	log.Info().Str("sha", res.SHA).Bool("changed", res.Changed).Str("branch", p.spec.Branch).
		Str("path", p.spec.Path).Dur("push", time.Since(start)).Msg("deployment pushed")
	return nil
}

// pushPlan is everything a push needs, gathered before the repository lock is taken.
type pushPlan struct {
	jobID     int64
	deploy    *store.Deployment
	spec      *store.DeploymentSpec
	form      manifest.Form
	env       *store.Environment
	resource  *store.Resource // nil when the deployment has none
	requester *store.User
	repo      gitops.Repo
	files     []string
	changes   []gitops.Change
	apply     []ResourceVersion // applies carried by the job
}

// prepare loads the deployment's rows and credentials and renders its files.
func (w *CommitPushWorker) prepare(ctx context.Context, job *river.Job[CommitPushArgs], d *store.Deployment) (*pushPlan, error) {
	db := w.Store.Pool()
	p := &pushPlan{jobID: job.ID, deploy: d}
	var err error
	if p.spec, err = w.Store.DeploymentSpecByID(ctx, db, d.ID); err != nil {
		return nil, permanent(err)
	}
	if err := json.Unmarshal(p.spec.Form, &p.form); err != nil {
		return nil, permanent(fmt.Errorf("stored form of deployment %d: %w", d.ID, err))
	}
	if p.env, err = w.Store.EnvironmentByID(ctx, db, d.EnvironmentID); err != nil {
		return nil, permanent(err)
	}
	if d.RequestedBy != nil {
		if p.requester, err = w.Store.UserByID(ctx, db, *d.RequestedBy); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	if d.GitopsResourceID != nil {
		if p.resource, err = w.Store.ResourceByID(ctx, db, *d.GitopsResourceID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	repo, err := w.Store.RepositoryByID(ctx, db, p.spec.RepositoryID)
	if err != nil {
		return nil, permanent(err)
	}
	if p.repo, err = GitRepo(ctx, w.Secrets, repo, p.spec.Branch); err != nil {
		if errors.Is(err, ErrCredentialsMissing) {
			err = permanent(err)
		}
		return nil, err
	}
	files, err := manifest.Render(p.spec.Kind, p.form, manifest.Options{Namespace: p.spec.Namespace, ImagePolicy: p.spec.ImagePolicy})
	if err != nil {
		return nil, permanent(fmt.Errorf("render: %w", err))
	}
	if p.changes, err = DeployChanges(p.spec.Path, p.spec.Namespace, files); err != nil {
		return nil, permanent(err)
	}
	for _, c := range p.changes {
		if !c.Delete && !c.Create {
			p.files = append(p.files, c.Path)
		}
	}
	p.apply = job.Args.Apply
	return p, nil
}

// message describes the push, comparing with prev, what was last pushed to the same path (nil
// for none). It runs under the repository lock, so prev is the state this commit builds on.
func (w *CommitPushWorker) message(ctx context.Context, p *pushPlan, prev *store.DeploymentSpec) (deployMessage, error) {
	db := w.Store.Pool()
	m := deployMessage{
		App: p.form.App, Env: p.env.Name, Kind: p.spec.Kind, Template: p.spec.TemplateName,
		Image: imageOf(p.form), Namespace: p.spec.Namespace, Dir: p.spec.Path, Files: p.files,
		DeployID: p.deploy.ID, Requester: p.requester, Committer: w.Committer,
	}
	var err error
	if prev == nil {
		m.FirstDeploy = true
		m.Changes = manifest.Diff("", nil, p.spec.Kind, p.form)
	} else {
		var pf manifest.Form
		if err := json.Unmarshal(prev.Form, &pf); err != nil {
			return m, fmt.Errorf("stored form of deployment %d: %w", prev.DeploymentID, err)
		}
		m.Changes = manifest.Diff(prev.Kind, &pf, p.spec.Kind, p.form)
	}
	// A deploy to an environment that requires approvals runs as the job its last approval
	// released: its approvers sign the commit as Approved-By trailers.
	votes, err := approval.New(w.Store, nil).ApprovedByJob(ctx, db, p.jobID)
	if err != nil {
		return m, fmt.Errorf("read approvers: %w", err)
	}
	m.Approvers = approverNames(votes)
	return m, nil
}

// alreadyApplied tells whether Flux has applied head (or a later commit) through the
// deployment's Kustomization, so a no-change redeploy is already done.
func (w *CommitPushWorker) alreadyApplied(ctx context.Context, p *pushPlan, head string) bool {
	if p.resource == nil || head == "" {
		return false
	}
	applied := revisionSHA(p.resource.LastAppliedRevision)
	if applied == "" {
		return false
	}
	if applied == head {
		return true
	}
	ok, err := w.Git.IsAncestor(ctx, p.repo, head, applied)
	return err == nil && ok
}

// record stores the push outcome, its audit row, the applies the job carries and the after-push
// hook in one transaction.
func (w *CommitPushWorker) record(ctx context.Context, d *store.Deployment, p *pushPlan, o store.PushOutcome) error {
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		ok, err := w.Store.RecordPush(ctx, tx, d.ID, o)
		if err != nil || !ok {
			return err
		}
		details, _ := json.Marshal(map[string]any{
			"commit_sha": o.CommitSHA, "branch": p.spec.Branch, "path": p.spec.Path, "status": o.Status,
		})
		if _, err := w.Store.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "commit_push", Action: "deployment.pushed",
			TargetType: "deployment", TargetID: fmt.Sprint(d.ID), ProjectID: &d.ProjectID, EnvironmentID: &d.EnvironmentID,
			Cluster: p.env.Cluster, Message: o.Message, Details: details,
		}); err != nil {
			return err
		}
		if err := EnqueueCarriedApplyTx(ctx, tx, w.Store, p.apply); err != nil {
			return err
		}
		if w.AfterPush != nil {
			d.Status, d.CommitSHA = o.Status, o.CommitSHA
			return w.AfterPush(ctx, tx, d)
		}
		return nil
	})
}

// supersede cancels a deployment whose app a later deployment already pushed.
func (w *CommitPushWorker) supersede(ctx context.Context, d *store.Deployment, p *pushPlan, by int64) error {
	msg := fmt.Sprintf("superseded by deployment %d, a later request for %s that was pushed first; nothing pushed", by, p.spec.Path)
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		ok, err := w.Store.SettlePendingDeployment(ctx, tx, d.ID, store.DeployCancelled, msg)
		if err != nil || !ok {
			return err
		}
		_, err = w.Store.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "commit_push", Action: "deployment.superseded",
			TargetType: "deployment", TargetID: fmt.Sprint(d.ID), ProjectID: &d.ProjectID, EnvironmentID: &d.EnvironmentID,
			Cluster: p.env.Cluster, Message: msg,
		})
		return err
	})
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// isPermanent reports failures a retry cannot fix: bad credentials or an unknown host key, a
// refused push, a hand-edited file, an unsafe path, a missing repository or branch.
func isPermanent(err error) bool {
	var pe permanentError
	var ce *gitops.ConflictError
	var path *gitops.PathError
	for _, k := range []error{gitops.ErrAuth, gitops.ErrPushRejected, gitops.ErrInvalidArgument, gitops.ErrRepoNotFound, gitops.ErrBranchNotFound} {
		if errors.Is(err, k) {
			return true
		}
	}
	return errors.As(err, &pe) || errors.As(err, &ce) || errors.As(err, &path)
}

// failed settles a failed run: a permanent failure, or a transient one on the last attempt,
// marks the deployment failed with a message a person can act on; a permanent one also
// cancels the job (no retry storm). Other failures return err for River to retry.
func (w *CommitPushWorker) failed(ctx context.Context, job *river.Job[CommitPushArgs], d *store.Deployment, err error) error {
	perm := isPermanent(err)
	if !perm && job.Attempt < job.MaxAttempts {
		return err
	}
	msg := explain(err)
	if !perm {
		msg = fmt.Sprintf("gave up after %d attempts: %s", job.Attempt, msg)
	}
	if ferr := w.Store.WithTx(context.WithoutCancel(ctx), func(tx pgx.Tx) error {
		ok, ferr := w.Store.SettlePendingDeployment(ctx, tx, d.ID, store.DeployFailed, msg)
		if ferr != nil || !ok {
			return ferr
		}
		details, _ := json.Marshal(map[string]any{"attempt": job.Attempt, "permanent": perm})
		_, ferr = w.Store.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "commit_push", Action: "deployment.failed",
			TargetType: "deployment", TargetID: fmt.Sprint(d.ID), ProjectID: &d.ProjectID, EnvironmentID: &d.EnvironmentID,
			Message: msg, Details: details,
		})
		return ferr
	}); ferr != nil {
		return errors.Join(err, ferr)
	}
	if perm {
		return river.JobCancel(err)
	}
	return err
}

// explain turns a push failure into a message that says what to do.
func explain(err error) string {
	var ce *gitops.ConflictError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("%s; fluxbridge never overwrites such a file: revert the hand edit (or move the change into the form) and deploy again", err)
	case errors.Is(err, gitops.ErrAuth):
		return fmt.Sprintf("%s; the Git host refused the repository's credentials or its SSH host key is not in known_hosts: rotate the credentials and deploy again", err)
	case errors.Is(err, gitops.ErrPushRejected):
		return fmt.Sprintf("%s; a server hook or branch protection refused the push: allow the fluxbridge bot to push to the branch", err)
	case errors.Is(err, gitops.ErrBranchNotFound):
		return fmt.Sprintf("%s; create the branch or fix the environment's gitops_config.branch", err)
	case errors.Is(err, ErrCredentialsMissing):
		return fmt.Sprintf("%s; set the repository's credentials again", err)
	}
	return err.Error()
}

// fullMessage is the commit message as Git stores it, for the deployment record.
func fullMessage(ci gitops.CommitInfo) string {
	s := ci.Subject + "\n\n" + ci.Body
	s += "\n"
	for _, t := range ci.Trailers {
		s += "\n" + t[0] + ": " + t[1]
	}
	return s
}

func imageOf(f manifest.Form) string {
	if f.Tag == "" {
		return f.Image
	}
	return f.Image + ":" + f.Tag
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
