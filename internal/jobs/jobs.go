// Package jobs holds fluxbridge's durable River jobs: one file per kind (XxxArgs + XxxWorker),
// the queues they run on, and Register, which adds every worker to a River Workers bundle.
//
// Args carry IDs, never payloads or secrets; kinds are snake_case and never renamed, because
// they are stored in river_job.
package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Queues. Flux events are many and small; Git pushes are few and slow.
const (
	QueueEvents = "events"
	QueueGit    = "git"
)

// GitWorkers is how many pushes a worker process runs at once. Pushes to one repository are
// serialised across all processes by a Postgres advisory lock (store.PushLocks, which needs
// one connection per git worker), so several workers only help pushes to different
// repositories run side by side.
const GitWorkers = 4

// MaxJobTimeout is the longest Timeout of any worker (a push or a rollback). River rescues a
// job still marked running after RescueStuckJobsAfter — a worker that died mid-job — so that
// must exceed every timeout, or a live job would run twice (TestJobTimeoutsBelowRescue).
const MaxJobTimeout = 10 * time.Minute

// RescueStuckJobsAfter is when River retries a job whose worker vanished: soon after the
// longest timeout, instead of River's default hour, so a crash delays a deploy by minutes.
const RescueStuckJobsAfter = MaxJobTimeout + 2*time.Minute

// riverConns are the connections River takes besides its workers' (the leader, the notifier's
// LISTEN, the producers' fetches and the maintenance services), and the watch's syncers.
const riverConns = 8

// PoolSize is the database pool a worker process needs so that no running job waits for a
// connection: one per River worker across the queues, plus River's own.
func PoolSize() int {
	n := riverConns
	for _, q := range Queues() {
		n += q.MaxWorkers
	}
	return n
}

// EventsFetchCooldown is the shortest time between two fetches of the events queue. River
// fetches at most a queue's free workers per fetch, so MaxWorkers / FetchCooldown bounds the
// jobs a process can start per second: with River's default of 100 ms the 20 event workers
// could never start more than 200 events a second however short each is
// (BenchmarkEventWorker). 10 ms lifts that to 2,000/s; an idle queue does not fetch more
// often for it (fetches follow inserts' notifications and completions).
const EventsFetchCooldown = 10 * time.Millisecond

// Queues returns the queue configuration of a worker process.
func Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{
		river.QueueDefault: {MaxWorkers: 10},
		QueueEvents:        {MaxWorkers: 20, FetchCooldown: EventsFetchCooldown},
		QueueGit:           {MaxWorkers: GitWorkers},
		QueueKube:          {MaxWorkers: 10},
	}
}

// AncestorFunc tells whether commit ancestor is an ancestor of (or equal to) descendant in the
// repository with the given ID. It lets the event job match a UI deployment to a later commit
// that Flux applied (Flux skips intermediate commits).
type AncestorFunc func(ctx context.Context, repositoryID int64, ancestor, descendant string) (bool, error)

// Deps are what the workers need.
type Deps struct {
	Store   *store.Store
	Metrics *metrics.Metrics // optional
	// IsAncestor is optional; without it a UI deployment matches only its exact commit.
	IsAncestor AncestorFunc
	// CommitAuthor is optional; without it a gitops-git deployment has no author.
	CommitAuthor CommitAuthorFunc

	// Git, Secrets and PushLocks enable the commit_push and rollback workers; without Git they
	// are not registered (a process that only processes events). Secrets also feed the
	// credential Secrets of GitRepositories.
	// Retention is how long the growing tables keep rows (zero values keep them for ever).
	Retention store.Retention

	Git       *gitops.Writer
	Secrets   secrets.Store
	PushLocks *store.PushLocks
	// Committer is the bot identity of every commit fluxbridge makes.
	Committer gitops.Signature
	// AfterPush runs when a deploy is pushed (see CommitPushWorker); with Clusters it defaults
	// to ReconcileOnPush, which asks Flux to apply the commit at once.
	AfterPush AfterPushFunc

	// Clusters are the managed clusters; without them the Kubernetes jobs cancel.
	Clusters *cluster.Registry
	// ReconcilePoll is the snooze between looks at a reconciling object (default
	// DefaultReconcilePoll).
	ReconcilePoll time.Duration
	// AlertTargets are how each cluster reaches fluxbridge, by cluster name; a managed cluster
	// with a target gets its alerting wired (AlertWirer). Optional.
	AlertTargets map[string]AlertTarget
}

// Register adds every worker to workers.
func Register(workers *river.Workers, d Deps) error {
	if d.ReconcilePoll <= 0 {
		d.ReconcilePoll = DefaultReconcilePoll
	}
	if d.AfterPush == nil && d.Clusters != nil {
		d.AfterPush = ReconcileOnPush(d.Store, d.Clusters)
	}
	kd := kubeDeps{Store: d.Store, Clusters: d.Clusters, Secrets: d.Secrets, Poll: d.ReconcilePoll, Metrics: d.Metrics,
		Alerts: &AlertWirer{Store: d.Store, Clusters: d.Clusters, Targets: d.AlertTargets}}
	errs := []error{
		river.AddWorkerSafely(workers, &FluxEventWorker{Store: d.Store, IsAncestor: d.IsAncestor, CommitAuthor: d.CommitAuthor}),
		river.AddWorkerSafely(workers, &ManualDeployWorker{Store: d.Store}),
		river.AddWorkerSafely(workers, &EnvironmentConfigWorker{Store: d.Store}),
		river.AddWorkerSafely(workers, &ApprovalExpiryWorker{Store: d.Store}),
		river.AddWorkerSafely(workers, &AutoRollbackWorker{Store: d.Store}),
		river.AddWorkerSafely(workers, &FeedPruneWorker{Store: d.Store}),
		river.AddWorkerSafely(workers, &RetentionWorker{Store: d.Store, Retention: d.Retention}),
		river.AddWorkerSafely(workers, &ApplyResourceWorker{kubeDeps: kd}),
		river.AddWorkerSafely(workers, &DeleteResourceWorker{kubeDeps: kd}),
		river.AddWorkerSafely(workers, &MarkResourceWorker{kubeDeps: kd}),
		river.AddWorkerSafely(workers, &ReconcileResourceWorker{kubeDeps: kd}),
		river.AddWorkerSafely(workers, &ApplyEnvironmentWorker{kubeDeps: kd}),
		river.AddWorkerSafely(workers, &WireAlertsWorker{Wirer: kd.Alerts}),
	}
	if d.Git != nil {
		if d.PushLocks == nil {
			errs = append(errs, errors.New("commit_push needs PushLocks"))
		}
		errs = append(errs, river.AddWorkerSafely(workers, &CommitPushWorker{
			Store: d.Store, Git: d.Git, Secrets: d.Secrets, Locks: d.PushLocks, Committer: d.Committer,
			AfterPush: d.AfterPush,
		}), river.AddWorkerSafely(workers, &BootstrapEnvironmentWorker{
			Store: d.Store, Git: d.Git, Secrets: d.Secrets, Locks: d.PushLocks, Committer: d.Committer,
		}), river.AddWorkerSafely(workers, &RollbackWorker{
			Store: d.Store, Git: d.Git, Secrets: d.Secrets, Locks: d.PushLocks, Committer: d.Committer,
			Clusters: d.Clusters, IsAncestor: d.IsAncestor, Poll: d.ReconcilePoll,
		}))
	}
	return errors.Join(errs...)
}

// Middleware returns the worker middleware of a worker process: a context logger carrying the
// job's id, kind and attempt, and job metrics.
func Middleware(log zerolog.Logger, m *metrics.Metrics) []rivertype.Middleware {
	return []rivertype.Middleware{&jobMiddleware{log: log, metrics: m}}
}

type jobMiddleware struct {
	river.MiddlewareDefaults
	log     zerolog.Logger
	metrics *metrics.Metrics
}

func (mw *jobMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	l := mw.log.With().Int64("job_id", job.ID).Str("kind", job.Kind).Int("attempt", job.Attempt).Logger()
	ctx = l.WithContext(ctx)
	start := time.Now()
	err := doInner(ctx)
	outcome := "ok"
	var cancel *river.JobCancelError
	var snooze *river.JobSnoozeError
	switch {
	case errors.As(err, &snooze):
		outcome = "snooze"
	case errors.As(err, &cancel):
		outcome = "cancel"
		l.Warn().Err(err).Msg("job cancelled")
	case err != nil:
		outcome = "error"
		l.Warn().Err(err).Msg("job failed; river will retry")
	}
	mw.metrics.ObserveJob(job.Kind, outcome, time.Since(start))
	return err
}
