package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// QueueKube runs the jobs that talk to Kubernetes clusters: applies, deletes and reconciles.
const QueueKube = "kube"

// Timings of the Kubernetes jobs.
const (
	kubeCallTimeout = 30 * time.Second // one job's calls to an apiserver
	kubeMaxAttempts = 100              // with kubeBackoff, about an hour and a half of outage
	kubeMaxBackoff  = time.Minute
	// DefaultReconcilePoll is how long the reconcile job snoozes between looks at the object.
	DefaultReconcilePoll = time.Second
)

// kubeBackoff retries a job that could not reach a cluster quickly at first and then once a
// minute: 1s, 2s, 4s, … 64s capped at kubeMaxBackoff. River's default (attempt⁴ seconds) would
// leave a cluster that came back after a minute untouched for a quarter of an hour.
func kubeBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 7 {
		return kubeMaxBackoff
	}
	return min(time.Second<<(attempt-1), kubeMaxBackoff)
}

// kubeInsertOpts are the insert options of the Kubernetes jobs. There is no uniqueness: each
// change enqueues its own job and every job applies the row's current state.
func kubeInsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueKube, MaxAttempts: kubeMaxAttempts}
}

// kubeDeps is what the Kubernetes workers share.
type kubeDeps struct {
	Store    *store.Store
	Clusters *cluster.Registry
	Secrets  secrets.Store // repository credentials, Flux-shaped
	Poll     time.Duration
	// Alerts wires the clusters' alerting; nil leaves it to people.
	Alerts *AlertWirer
	// Metrics counts the refusals of the guards; optional.
	Metrics *metrics.Metrics
}

// clusterOf returns the client of a resource's cluster; a cluster missing from the config is
// not worth retrying.
func (d *kubeDeps) clusterOf(res *store.Resource) (*cluster.Cluster, error) {
	if d.Clusters == nil {
		return nil, river.JobCancel(errors.New("no clusters configured"))
	}
	cl, err := d.Clusters.Get(res.Cluster)
	if errors.Is(err, cluster.ErrUnknown) || errors.Is(err, cluster.ErrNoKubeconfig) {
		return nil, river.JobCancel(err)
	}
	return cl, err
}

// target gathers what a resource's object needs beyond its config: project, environment
// settings and repository.
func (d *kubeDeps) target(ctx context.Context, db store.DBTX, res *store.Resource) (*fluxspec.Target, *store.Repository, error) {
	t := &fluxspec.Target{
		Namespace: res.Namespace, Name: res.Name, Cluster: res.Cluster, ResourceID: res.ID, Suspend: res.Suspended,
	}
	p, err := d.Store.ProjectByID(ctx, db, res.ProjectID)
	if err != nil {
		return nil, nil, err
	}
	t.Project = p.Slug
	if res.EnvironmentID != nil {
		env, err := d.Store.EnvironmentByID(ctx, db, *res.EnvironmentID)
		if err != nil {
			return nil, nil, err
		}
		t.Environment = env.Name
		if t.Env, err = fluxspec.ParseEnvSettings(env.GitopsConfig); err != nil {
			return nil, nil, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		if fluxspec.IsApplier(res.Kind) && res.ImportedAt == nil {
			// An imported applier keeps the identity it was imported with.
			t.ServiceAccount = env.ServiceAccount(p.Slug)
		}
	}
	var repo *store.Repository
	if res.RepositoryID != nil {
		if repo, err = d.Store.RepositoryByID(ctx, db, *res.RepositoryID); err != nil {
			return nil, nil, err
		}
		t.Repo = &fluxspec.RepoSettings{URL: repo.URL, HasCredentials: repo.CredentialRef != ""}
	}
	return t, repo, nil
}

func refOf(res *store.Resource) flux.Ref {
	return flux.Ref{Kind: res.Kind, Namespace: res.Namespace, Name: res.Name}
}

// auditSystem appends an audit row for something a job did on its own.
func auditSystem(ctx context.Context, st *store.Store, db store.DBTX, res *store.Resource, action, msg string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	b, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = st.InsertAudit(ctx, db, store.AuditEntry{
		ActorType: store.ActorSystem, ActorName: "fluxbridge-worker", Action: action,
		TargetType: "gitops_resource", TargetID: fmt.Sprint(res.ID), ProjectID: &res.ProjectID,
		EnvironmentID: res.EnvironmentID, Cluster: res.Cluster, Message: msg, Details: b,
	})
	return err
}

// EnqueueApplyTx enqueues an apply of each resource in tx, in the transaction that changed them.
func EnqueueApplyTx(ctx context.Context, rc *river.Client[pgx.Tx], tx pgx.Tx, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: ApplyResourceArgs{ResourceID: id}}
	}
	if _, err := rc.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue apply: %w", err)
	}
	return nil
}

// ResourceVersion names one spec version of a resource: a change whose apply a job carries.
type ResourceVersion struct {
	ResourceID  int64 `json:"resource_id"`
	SpecVersion int64 `json:"spec_version"`
}

// EnqueueCarriedApplyTx enqueues in tx an apply of each carried resource that is approved and
// whose current version is not yet in the cluster (the carried spec version is kept for the
// record: a later approved change is applied too, a proposal never). The River client comes
// from ctx (a running job's).
func EnqueueCarriedApplyTx(ctx context.Context, tx pgx.Tx, st *store.Store, carried []ResourceVersion) error {
	var ids []int64
	for _, c := range carried {
		res, err := st.LockResourceByID(ctx, tx, c.ResourceID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		// The row holds approved settings only (a change waiting for approvals is a proposal
		// beside it), so applying its current version applies nothing that was not approved,
		// whether it is the version carried or a later approved one.
		if !res.Approved || res.ApplyStatus == store.ApplyDeleting ||
			res.AppliedSpecVersion >= res.SpecVersion && res.ApplyStatus == store.ApplyApplied {
			continue
		}
		ids = append(ids, res.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("enqueue apply: %w", err)
	}
	return EnqueueApplyTx(ctx, rc, tx, ids...)
}
