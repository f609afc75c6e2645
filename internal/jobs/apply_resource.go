package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// applyLockSpace is the first key of the per-resource advisory lock that serialises applies.
const applyLockSpace = 0x666c7861 // "flxa"

// ApplyResourceArgs asks the worker to put a resource's current settings into its cluster.
type ApplyResourceArgs struct {
	ResourceID int64 `json:"resource_id"`
}

// Kind implements river.JobArgs.
func (ApplyResourceArgs) Kind() string { return "apply_resource" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ApplyResourceArgs) InsertOpts() river.InsertOpts { return kubeInsertOpts() }

// ApplyResourceWorker builds a resource's Flux object from its row and server-side-applies it
// as field manager fluxbridge; for a GitRepository whose repository has credentials it first
// writes (or rotates) the Secret the secretRef names. Applies of one resource run one at a
// time and each applies the row's latest state, so a stale job can never overwrite a newer
// change. An unreachable cluster is retried (kubeBackoff); a config that no longer validates
// is recorded on the row and not retried.
type ApplyResourceWorker struct {
	river.WorkerDefaults[ApplyResourceArgs]
	kubeDeps
}

// Timeout bounds one apply.
func (w *ApplyResourceWorker) Timeout(*river.Job[ApplyResourceArgs]) time.Duration {
	return 2 * kubeCallTimeout
}

// NextRetry implements river.Worker.
func (w *ApplyResourceWorker) NextRetry(job *river.Job[ApplyResourceArgs]) time.Time {
	return time.Now().Add(kubeBackoff(job.Attempt))
}

// Work implements river.Worker.
func (w *ApplyResourceWorker) Work(ctx context.Context, job *river.Job[ApplyResourceArgs]) error {
	var applyErr error
	err := w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, ($2 % 2147483647)::int)`, applyLockSpace, job.Args.ResourceID); err != nil {
			return fmt.Errorf("lock apply of resource %d: %w", job.Args.ResourceID, err)
		}
		res, err := w.Store.ResourceByID(ctx, tx, job.Args.ResourceID)
		if errors.Is(err, store.ErrNotFound) {
			return river.JobCancel(err)
		}
		if err != nil {
			return err
		}
		if !res.Approved {
			return nil // created by a change still waiting for approvals: nothing to apply
		}
		if res.ApplyStatus == store.ApplyDeleting || res.AppliedSpecVersion >= res.SpecVersion && res.ApplyStatus == store.ApplyApplied {
			return nil // being deleted, or this version is already in the cluster
		}
		applied, err := w.apply(ctx, tx, res)
		if err != nil {
			applyErr = err
			return nil
		}
		applied.At = time.Now()
		return w.Store.RecordApplied(ctx, tx, res.ID, applied)
	})
	if err != nil {
		return err
	}
	if applyErr != nil {
		if rerr := w.Store.RecordApplyError(ctx, w.Store.Pool(), job.Args.ResourceID, applyErr.Error()); rerr != nil {
			return errors.Join(applyErr, rerr)
		}
		return applyErr
	}
	return nil
}

func (w *ApplyResourceWorker) apply(ctx context.Context, tx pgx.Tx, res *store.Resource) (store.Applied, error) {
	cl, err := w.clusterOf(res)
	if err != nil {
		return store.Applied{}, err
	}
	spec, err := fluxspec.Decode(res.Kind, res.Config)
	if err != nil {
		return store.Applied{}, river.JobCancel(err)
	}
	t, repo, err := w.target(ctx, tx, res)
	if err != nil {
		return store.Applied{}, river.JobCancel(err)
	}
	obj, err := fluxspec.Build(spec, t)
	if err != nil {
		return store.Applied{}, river.JobCancel(err)
	}
	kctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	// fluxbridge changes only what it made (or was told to import): an object of the same
	// name that someone else manages is left alone, and the refusal shown on the row.
	if err := flux.CheckOwned(kctx, cl.Client, refOf(res), fmt.Sprint(res.ID)); err != nil {
		if flux.IsForeign(err) {
			w.Metrics.Refused("foreign_object")
			return store.Applied{}, river.JobCancel(err)
		}
		return store.Applied{}, err
	}
	if err := flux.EnsureNamespace(kctx, cl.Client, res.Namespace); err != nil {
		return store.Applied{}, err
	}
	if err := w.ensureTenant(ctx, tx, kctx, cl.Client, res, t); err != nil {
		return store.Applied{}, err
	}
	if gr, ok := spec.(*fluxspec.GitRepositoryConfig); ok && repo != nil && repo.CredentialRef != "" {
		if err := w.writeGitSecret(kctx, cl.Client, res, repo, gr.SecretName(t)); err != nil {
			return store.Applied{}, err
		}
	}
	w.coverBeforeApply(kctx, res)
	a, err := flux.Apply(kctx, cl.Client, obj)
	if err != nil {
		return store.Applied{}, err
	}
	return store.Applied{SpecVersion: res.SpecVersion, UID: a.UID, Generation: a.Generation}, nil
}

// writeGitSecret copies the repository's credentials from the credential store into the
// Secret the GitRepository names, in Flux's keys (an SSH key gets its identity.pub). Each apply rewrites it, which is how a
// rotated credential reaches the cluster.
func (w *ApplyResourceWorker) writeGitSecret(ctx context.Context, c client.Client, res *store.Resource, repo *store.Repository, name string) error {
	if w.Secrets == nil {
		return river.JobCancel(fmt.Errorf("repository %s has credentials but no secret store is configured", repo.Name))
	}
	data, err := w.Secrets.Get(ctx, repo.CredentialRef)
	if err != nil {
		return fmt.Errorf("read credentials of repository %s: %w", repo.Name, err)
	}
	if err := flux.ValidateGitCredentials(data); err != nil {
		return river.JobCancel(fmt.Errorf("repository %s: %w", repo.Name, err))
	}
	// Flux's SSH Secrets carry the public key next to the private one.
	if data, err = flux.WithPublicKey(data); err != nil {
		return river.JobCancel(fmt.Errorf("repository %s: %w", repo.Name, err))
	}
	if err := flux.CheckSecretOwned(ctx, c, res.Namespace, name, fmt.Sprint(res.ID)); err != nil {
		if flux.IsForeign(err) {
			w.Metrics.Refused("credential_secret")
			return river.JobCancel(fmt.Errorf("repository %s's credentials are not written: %w", repo.Name, err))
		}
		return err
	}
	labels := map[string]string{
		fluxspec.LabelManagedBy: fluxspec.ManagedByValue, fluxspec.LabelResourceID: fmt.Sprint(res.ID),
	}
	return flux.WriteSecret(ctx, c, res.Namespace, name, data, labels)
}

// ensureTenant puts the environment's ServiceAccount and its RBAC (admin in the environment's
// namespaces, nothing else) next to an applier of the environment before the applier, which
// impersonates it: Flux then applies nothing outside the environment.
func (w *ApplyResourceWorker) ensureTenant(ctx context.Context, tx pgx.Tx, kctx context.Context, c client.Client, res *store.Resource, t *fluxspec.Target) error {
	if !fluxspec.IsApplier(res.Kind) || res.EnvironmentID == nil || t.ServiceAccount == "" {
		return nil
	}
	env, err := w.Store.EnvironmentByID(ctx, tx, *res.EnvironmentID)
	if err != nil {
		return err
	}
	err = flux.EnsureTenant(kctx, c, flux.Tenant{
		Namespace: res.Namespace, ServiceAccount: t.ServiceAccount, Namespaces: env.Namespaces(t.Project),
		Labels: map[string]string{flux.LabelManagedBy: flux.ManagedByValue, flux.LabelOwner: t.Project + "." + env.Name},
	})
	if flux.IsForeign(err) {
		w.Metrics.Refused("foreign_object")
		return river.JobCancel(err)
	}
	return err
}
