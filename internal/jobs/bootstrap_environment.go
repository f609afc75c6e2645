package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// BootstrapEnvironmentArgs asks the worker to bootstrap an environment without a deploy (POST
// …/environments/{env}/bootstrap): push its directory (the Namespace file of each of its
// namespaces, kept when present) to the branch, then apply the Flux objects the request
// created. The placement is carried as the request computed it: in an environment that
// requires approvals it is what the approvers approved. None of it is secret.
type BootstrapEnvironmentArgs struct {
	EnvironmentID int64             `json:"environment_id"`
	RepositoryID  int64             `json:"repository_id"`
	Branch        string            `json:"branch"`
	Dir           string            `json:"dir"`
	Namespaces    []string          `json:"namespaces"`
	Apply         []ResourceVersion `json:"apply,omitempty"`
}

// Kind implements river.JobArgs.
func (BootstrapEnvironmentArgs) Kind() string { return "bootstrap_environment" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (BootstrapEnvironmentArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueGit, MaxAttempts: commitPushAttempts}
}

// BootstrapEnvironmentWorker pushes the environment's directory and then enqueues the applies,
// in that order for the reason a first deploy has: Flux first sees the environment with its
// directory in Git, as `flux bootstrap` pushes before it applies.
type BootstrapEnvironmentWorker struct {
	river.WorkerDefaults[BootstrapEnvironmentArgs]
	Store     *store.Store
	Git       *gitops.Writer
	Secrets   secrets.Store
	Locks     *store.PushLocks
	Committer gitops.Signature
}

// Timeout bounds one run, waiting for the repository's lock included.
func (w *BootstrapEnvironmentWorker) Timeout(*river.Job[BootstrapEnvironmentArgs]) time.Duration {
	return 10 * time.Minute
}

// Work implements river.Worker.
func (w *BootstrapEnvironmentWorker) Work(ctx context.Context, job *river.Job[BootstrapEnvironmentArgs]) error {
	a := job.Args
	db := w.Store.Pool()
	env, err := w.Store.EnvironmentByID(ctx, db, a.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	repo, err := w.Store.RepositoryByID(ctx, db, a.RepositoryID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	gr, err := GitRepo(ctx, w.Secrets, repo, a.Branch)
	if err != nil {
		if errors.Is(err, ErrCredentialsMissing) {
			return river.JobCancel(err)
		}
		return err
	}
	var changes []gitops.Change
	for _, ns := range a.Namespaces {
		content, err := manifest.RenderNamespace(ns)
		if err != nil {
			return river.JobCancel(err)
		}
		changes = append(changes, gitops.Change{Path: manifest.NamespacePath(a.Dir, ns), Content: content, Create: true})
	}
	votes, err := approval.New(w.Store, nil).ApprovedByJob(ctx, db, job.ID)
	if err != nil {
		return err
	}
	ci := gitops.CommitInfo{Committer: w.Committer, Subject: "bootstrap environment " + env.Name,
		Body:     fmt.Sprintf("fluxbridge bootstraps environment %s: its directory /%s and the Namespace files of %v.", env.Name, a.Dir, a.Namespaces),
		Trailers: [][2]string{{"Environment", env.Name}}}
	for _, v := range approverNames(votes) {
		ci.Trailers = append(ci.Trailers, [2]string{"Approved-By", v})
	}
	unlock, err := w.Locks.Lock(ctx, repo.ID)
	if err != nil {
		return err
	}
	res, err := w.Git.Apply(ctx, gr, changes, ci)
	unlock()
	if err != nil {
		if isPermanent(err) {
			return river.JobCancel(err)
		}
		return err
	}
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		if err := EnqueueCarriedApplyTx(ctx, tx, w.Store, a.Apply); err != nil {
			return err
		}
		msg := fmt.Sprintf("environment %s bootstrapped: directory /%s at %.12s", env.Name, a.Dir, res.SHA)
		_, err := w.Store.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "bootstrap_environment", Action: "environment.bootstrapped",
			TargetType: "environment", TargetID: fmt.Sprint(env.ID), ProjectID: &env.ProjectID, EnvironmentID: &env.ID,
			Cluster: env.Cluster, Message: msg, Details: []byte(fmt.Sprintf(`{"commit_sha":%q,"changed":%t}`, res.SHA, res.Changed)),
		})
		return err
	})
}
