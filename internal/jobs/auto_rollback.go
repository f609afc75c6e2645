package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// AutoRollbackArgs rolls back the app of a console deploy that failed in Flux, in an
// environment with gitops_config.autoRollback (R7b.5).
type AutoRollbackArgs struct {
	// DeploymentID is the failed deployment.
	DeploymentID int64 `json:"deployment_id"`
}

// Kind implements river.JobArgs.
func (AutoRollbackArgs) Kind() string { return "auto_rollback" }

// InsertOpts implements river.JobArgsWithInsertOpts: one per failed deployment however often
// Flux reports the failure.
func (AutoRollbackArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Inserter inserts jobs in a transaction: a River client.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

type inserterKey struct{}

// WithInserter gives code that runs outside River jobs (the watch) the client to insert the
// jobs its writes set off, in the same transaction.
func WithInserter(ctx context.Context, rc Inserter) context.Context {
	return context.WithValue(ctx, inserterKey{}, rc)
}

// inserterFrom returns the River client of the job running in ctx, or the one WithInserter
// gave it.
func inserterFrom(ctx context.Context) (Inserter, error) {
	if rc, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
		return rc, nil
	}
	if rc, ok := ctx.Value(inserterKey{}).(Inserter); ok && rc != nil {
		return rc, nil
	}
	return nil, errors.New("no River client to insert jobs with")
}

// maybeAutoRollback enqueues, in tx, the automatic rollback of the failed console deployment d
// of res when its environment asks for one. A rollback that fails is not rolled back again,
// nor is an automatic one: a person decides then.
func maybeAutoRollback(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, d *store.Deployment) error {
	if d.App == "" || d.Trigger == store.TriggerAutoRollback || res.EnvironmentID == nil {
		return nil
	}
	env, err := st.EnvironmentByID(ctx, tx, d.EnvironmentID)
	if err != nil {
		return err
	}
	if g, err := env.Gitops(); err != nil || !g.AutoRollback {
		return nil
	}
	if _, err := st.RollbackByDeployment(ctx, tx, d.ID); err == nil {
		return nil // a rollback that failed
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rc, err := inserterFrom(ctx)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Int64("deployment_id", d.ID).Msg("automatic rollback not started")
		return nil
	}
	_, err = rc.InsertTx(ctx, tx, AutoRollbackArgs{DeploymentID: d.ID}, nil)
	return err
}

// AutoRollbackWorker rolls an app back to its previous successful deployment after a console
// deploy of it failed in Flux: a rollback like a person's (a revert commit through the
// rollback job), submitted through the environment's approval gate — held for approvals where
// the environment requires them, in the name of the failed deploy's requester, so that
// nothing reaches the cluster unapproved. It is audited and notified either way.
type AutoRollbackWorker struct {
	river.WorkerDefaults[AutoRollbackArgs]
	Store *store.Store
	// River inserts the rollback job; default the client running this job.
	River *river.Client[pgx.Tx]
}

// Work implements river.Worker.
func (w *AutoRollbackWorker) Work(ctx context.Context, job *river.Job[AutoRollbackArgs]) error {
	rc := w.River
	if rc == nil {
		var err error
		if rc, err = river.ClientFromContextSafely[pgx.Tx](ctx); err != nil {
			return err
		}
	}
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		d, err := w.Store.LockDeployment(ctx, tx, job.Args.DeploymentID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		env, err := w.Store.EnvironmentByID(ctx, tx, d.EnvironmentID)
		if err != nil {
			return err
		}
		skip := func(why string) error {
			zerolog.Ctx(ctx).Info().Int64("deployment_id", d.ID).Msg("no automatic rollback: " + why)
			return w.notify(ctx, tx, d, env, "warning", fmt.Sprintf("%s in %s failed and was not rolled back automatically", d.App, env.Name),
				fmt.Sprintf("Deployment %d failed: %s\n\nNo automatic rollback: %s.", d.ID, d.Message, why))
		}
		if g, err := env.Gitops(); err != nil || !g.AutoRollback {
			return nil // turned off since
		}
		spec, err := w.Store.LatestAppSpec(ctx, tx, env.ID, d.App)
		if err != nil {
			return err
		}
		if spec.DeploymentID != d.ID {
			return nil // deployed again since: that deploy is the one that counts
		}
		open, err := w.Store.ListRollbacks(ctx, tx, env.ID, d.App, 20)
		if err != nil {
			return err
		}
		for _, rb := range open {
			if !rb.Final() {
				return nil // a person is rolling back already
			}
		}
		target, err := w.previousSuccess(ctx, tx, d)
		if err != nil {
			return err
		}
		if target == nil {
			return skip("the app has no earlier successful deployment to return to")
		}
		cfg, err := policy.ParseEnvConfig(env.GitopsConfig)
		if err != nil {
			return skip("the environment's access settings are invalid (" + err.Error() + ")")
		}
		required := cfg.Approvals(env.Kind)
		if required > 0 && d.RequestedBy == nil {
			return skip("the environment requires approvals and the failed deploy's requester is gone")
		}
		return w.submit(ctx, tx, rc, d, env, spec, target, required, cfg)
	})
}

// previousSuccess is the app's newest successful deployment before d, with a commit. It pages
// through the restorable deployments (Git pushes of other apps come between) until it finds one.
func (w *AutoRollbackWorker) previousSuccess(ctx context.Context, tx pgx.Tx, d *store.Deployment) (*store.Deployment, error) {
	const page = 50
	for before := int64(0); ; {
		ds, err := w.Store.RestorableDeployments(ctx, tx, d.EnvironmentID, d.App, before, page)
		if err != nil {
			return nil, err
		}
		for i := range ds {
			if ds[i].ID < d.ID && ds[i].App == d.App {
				return &ds[i], nil
			}
		}
		if len(ds) < page {
			return nil, nil
		}
		before = ds[len(ds)-1].ID
	}
}

func (w *AutoRollbackWorker) submit(ctx context.Context, tx pgx.Tx, rc *river.Client[pgx.Tx], failed *store.Deployment, env *store.Environment,
	spec *store.DeploymentSpec, target *store.Deployment, required int, cfg policy.EnvConfig) error {
	status := store.DeployPending
	if required > 0 {
		status = store.DeployAwaitingApproval
	}
	summary := fmt.Sprintf("automatic rollback of %s in %s to deployment %d (commit %.12s): deployment %d failed",
		failed.App, env.Name, target.ID, target.CommitSHA, failed.ID)
	d, err := w.Store.CreateDeployment(ctx, tx, store.NewDeployment{
		ProjectID: failed.ProjectID, EnvironmentID: env.ID, GitopsResourceID: failed.GitopsResourceID,
		Method: store.MethodGitopsUI, Status: status, App: failed.App, Message: summary,
		Trigger: store.TriggerAutoRollback, TriggerRef: strconv.FormatInt(failed.ID, 10),
	})
	if err != nil {
		return err
	}
	rb, err := w.Store.CreateRollback(ctx, tx, store.NewRollback{
		DeploymentID: d.ID, ProjectID: failed.ProjectID, EnvironmentID: env.ID, App: failed.App,
		TargetDeploymentID: &target.ID, TargetCommit: target.CommitSHA, Strategy: store.RollbackRevert,
		RepositoryID: spec.RepositoryID, Branch: spec.Branch, Path: spec.Path, ResourceID: failed.GitopsResourceID,
	})
	if err != nil {
		return err
	}
	sub := approval.Submission{
		ProjectID: failed.ProjectID, EnvironmentID: &env.ID, Action: "deployment.rollback",
		TargetType: approval.TargetDeployment, TargetID: d.ID, Summary: summary,
		Required: required, TTL: cfg.TTL(), Args: RollbackArgs{RollbackID: rb.ID},
	}
	if failed.RequestedBy != nil {
		sub.RequestedBy = *failed.RequestedBy
	}
	submitted, err := approval.New(w.Store, rc).Submit(ctx, tx, sub)
	if err != nil {
		return err
	}
	details, _ := json.Marshal(map[string]any{
		"failed_deployment_id": failed.ID, "rollback_id": rb.ID, "target_deployment_id": target.ID,
		"target_commit": target.CommitSHA, "path": rb.Path, "branch": rb.Branch, "held": submitted.Request != nil,
	})
	if _, err := w.Store.InsertAudit(ctx, tx, store.AuditEntry{
		ActorType: store.ActorSystem, ActorName: "fluxbridge", Action: "deployment.auto_rollback",
		TargetType: "deployment", TargetID: strconv.FormatInt(d.ID, 10), ProjectID: &failed.ProjectID, EnvironmentID: &env.ID,
		Cluster: env.Cluster, Message: summary, Details: details,
	}); err != nil {
		return err
	}
	title := fmt.Sprintf("%s in %s failed: rolling back to deployment %d", failed.App, env.Name, target.ID)
	body := fmt.Sprintf("Deployment %d failed: %s\n\nThe environment rolls back by itself (autoRollback): deployment %d reverts %s/ to commit %.12s.",
		failed.ID, failed.Message, d.ID, rb.Path, target.CommitSHA)
	if submitted.Request != nil {
		title = fmt.Sprintf("%s in %s failed: a rollback to deployment %d awaits approval", failed.App, env.Name, target.ID)
		body += fmt.Sprintf("\n\nThe environment requires %d approval(s): approval request %d holds the rollback until then.", required, submitted.Request.ID)
	}
	return w.notify(ctx, tx, failed, env, "warning", title, body)
}

func (w *AutoRollbackWorker) notify(ctx context.Context, tx pgx.Tx, d *store.Deployment, env *store.Environment, severity, title, body string) error {
	_, err := w.Store.InsertNotification(ctx, tx, store.Notification{
		ProjectID: &d.ProjectID, EnvironmentID: &env.ID, Severity: severity, Title: title, Body: body,
		TargetType: "deployment", TargetID: strconv.FormatInt(d.ID, 10),
	})
	return err
}
