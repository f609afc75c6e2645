package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// watchReporter names the watch as the reporter of deployments it settles.
const watchReporter = "fluxbridge-watch"

// syncer writes what the watch sees about one cluster's objects to the database.
type syncer struct {
	store        *store.Store
	cluster      string
	isAncestor   jobs.AncestorFunc
	commitAuthor jobs.CommitAuthorFunc
}

// sync records the state of the object ref names (u is nil when it is gone) as observed at
// at. It goes through the same ordered, idempotent store functions as webhook events: an
// observation older than the stored one never wins, history gets a row only when status,
// reason or revision changes, a revision gets one deployment however often it is reported,
// and a failure notifies once.
func (s *syncer) sync(ctx context.Context, ref flux.Ref, u *unstructured.Unstructured, at time.Time) error {
	oref := store.ObjectRef{Cluster: s.cluster, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
	// Git is asked before the transaction: no network call while the resource row is locked.
	var isAncestor jobs.AncestorFunc
	var author string
	if u != nil && fluxspec.IsApplier(ref.Kind) {
		if out, ok := outcomeOf(flux.Observe(u), at); ok {
			isAncestor = jobs.PrefetchAncestry(ctx, s.store, s.isAncestor, oref, out.CommitSHA)
			author = jobs.PrefetchAuthor(ctx, s.store, s.commitAuthor, oref, out.CommitSHA, out.Revision)
		}
	}
	return s.store.WithTx(ctx, func(tx pgx.Tx) error {
		res, err := s.store.LockResourceByRef(ctx, tx, oref)
		if errors.Is(err, store.ErrNotFound) {
			return s.discovered(ctx, tx, oref, u, at) // not an object fluxbridge manages
		}
		if err != nil {
			return err
		}
		if u == nil {
			return s.gone(ctx, tx, res, at)
		}
		if res.ImportedAt != nil {
			// Imported: an observation that raced the import may have listed it as discovered.
			if err := s.store.DeleteDiscovered(ctx, tx, oref); err != nil {
				return err
			}
		}
		o := flux.Observe(u)
		prev := *res
		fresh, err := s.store.ApplyResourceStatus(ctx, tx, res.ID, store.StatusUpdate{
			Status: o.Status, Reason: o.Reason, Message: o.Message, Revision: o.Revision, ObservedAt: at, UID: o.UID,
		})
		if err != nil || !fresh {
			return err
		}
		conds, err := json.Marshal(o.Conditions)
		if err != nil {
			return err
		}
		if err := s.store.ApplyObjectDetails(ctx, tx, res.ID, store.ObjectDetails{
			Generation: o.Generation, ObservedGeneration: o.ObservedGeneration, Conditions: conds,
			LastHandledReconcileAt: o.LastHandledReconcileAt, LastReconcileAt: o.LastReconcileAt,
			NextReconcileAt: o.NextReconcileAt, ChartName: o.ChartName, ChartVersion: o.ChartVersion,
			HelmHistory: o.HelmHistory,
		}); err != nil {
			return err
		}
		if o.Status != flux.StatusUnknown {
			if _, err := s.store.AppendHistory(ctx, tx, store.HistoryEntry{
				ResourceID: res.ID, At: at, Source: store.HistoryWatch,
				Status: o.Status, Reason: o.Reason, Message: o.Message, Revision: o.Revision,
			}); err != nil {
				return err
			}
		}
		if f, ok := factOf(ref.Kind, o, u); ok && f.Revision != prev.LastAppliedRevision {
			if err := jobs.AuditObserved(ctx, tx, s.store, &prev, f, o.Message, at); err != nil {
				return err
			}
		}
		if ref.Kind == "ImageUpdateAutomation" && o.AppliedRevision != prev.LastAppliedRevision {
			if err := jobs.ImageAutomationPush(ctx, tx, s.store, res, o.AppliedRevision); err != nil {
				return err
			}
		}
		if err := s.settle(ctx, tx, isAncestor, author, res, o, at); err != nil {
			return err
		}
		if o.Status == flux.StatusFailed && (prev.Status != flux.StatusFailed || prev.StatusMessage != o.Message) {
			return s.notifyFailure(ctx, tx, res, o)
		}
		return nil
	})
}

// discovered records an object no project manages (u nil: it is gone), so that fluxbridge
// never creates over it and an admin can see and import it.
func (s *syncer) discovered(ctx context.Context, tx pgx.Tx, ref store.ObjectRef, u *unstructured.Unstructured, at time.Time) error {
	if u == nil {
		return s.store.DeleteDiscovered(ctx, tx, ref)
	}
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	labels, err := json.Marshal(l)
	if err != nil {
		return err
	}
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	if spec == nil {
		spec = map[string]any{}
	}
	rawSpec, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return s.store.UpsertDiscovered(ctx, tx, store.Discovered{
		Cluster: ref.Cluster, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, UID: string(u.GetUID()),
		Owner: flux.OwnerOf(u), Labels: labels, Spec: rawSpec, Status: flux.Observe(u).Status, ObservedAt: at,
	})
}

// settle records a deployment when an applier is ready at a revision, or failed at one.
func (s *syncer) settle(ctx context.Context, tx pgx.Tx, isAncestor jobs.AncestorFunc, author string, res *store.Resource, o flux.Observation, at time.Time) error {
	if !fluxspec.IsApplier(res.Kind) || res.EnvironmentID == nil {
		return nil
	}
	if out, ok := outcomeOf(o, at); ok {
		out.CommitAuthor = author
		return jobs.SettleDeployment(ctx, tx, s.store, isAncestor, res, out)
	}
	return nil
}

// factOf is what an event would have reported about an object the watch sees ready at a
// new revision: a source's new artifact, an applier's applied revision, an image policy's
// new latest tag (see fluxevent.Fact).
func factOf(kind string, o flux.Observation, u *unstructured.Unstructured) (fluxevent.Fact, bool) {
	if o.Status != flux.StatusReady || o.AppliedRevision == "" {
		return fluxevent.Fact{}, false
	}
	f := fluxevent.Fact{Revision: o.AppliedRevision}
	switch {
	case fluxevent.IsSource(kind):
		f.Action = "flux.NewArtifact"
	case kind == "Kustomization":
		f.Action = "flux.ReconciliationSucceeded"
	case kind == "HelmRelease":
		var hist []json.RawMessage
		_ = json.Unmarshal(o.HelmHistory, &hist)
		f.Action = "flux.UpgradeSucceeded"
		if len(hist) <= 1 {
			f.Action = "flux.InstallSucceeded"
		}
	case kind == "ImagePolicy":
		f.Action = fluxevent.ImageUpdated
		name, _, _ := unstructured.NestedString(u.Object, "status", "observedPreviousRef", "name")
		tag, _, _ := unstructured.NestedString(u.Object, "status", "observedPreviousRef", "tag")
		if tag != "" {
			f.Previous = name + ":" + tag
		}
	default:
		return fluxevent.Fact{}, false
	}
	return f, true
}

// outcomeOf is the deployment outcome an applier's observation reports: ready at its applied
// revision or failed at its attempted one, once it has observed its current generation.
func outcomeOf(o flux.Observation, at time.Time) (jobs.Outcome, bool) {
	if o.ObservedGeneration < o.Generation {
		return jobs.Outcome{}, false
	}
	out := jobs.Outcome{At: at, Reporter: watchReporter, Message: o.Message, Details: map[string]any{"source": "watch"}}
	switch {
	case o.Status == flux.StatusReady && o.AppliedRevision != "":
		out.Status, out.Revision = store.DeploySucceeded, o.AppliedRevision
	case o.Status == flux.StatusFailed && o.AttemptedRevision != "":
		out.Status, out.Revision = store.DeployFailed, o.AttemptedRevision
	default:
		return jobs.Outcome{}, false
	}
	out.CommitSHA = fluxevent.CommitSHA(out.Revision)
	return out, true
}

// gone records that the object disappeared from the cluster. A resource being deleted is the
// delete job's business; any other was removed behind fluxbridge's back, which is worth
// showing.
func (s *syncer) gone(ctx context.Context, tx pgx.Tx, res *store.Resource, at time.Time) error {
	if res.ApplyStatus == store.ApplyDeleting {
		return nil
	}
	fresh, err := s.store.ApplyResourceStatus(ctx, tx, res.ID, store.StatusUpdate{
		Status: flux.StatusUnknown, Reason: "NotFound", Message: "the object is not in the cluster", ObservedAt: at,
	})
	if err != nil || !fresh {
		return err
	}
	_, err = s.store.AppendHistory(ctx, tx, store.HistoryEntry{
		ResourceID: res.ID, At: at, Source: store.HistoryWatch, Status: flux.StatusUnknown,
		Reason: "NotFound", Message: "the object is not in the cluster",
	})
	return err
}

// notifyFailure raises the in-app notification of a new failure, with Flux's message and a
// first step to fix it (R14.5), as the webhook path does.
func (s *syncer) notifyFailure(ctx context.Context, tx pgx.Tx, res *store.Resource, o flux.Observation) error {
	body := o.Message
	if hint := fluxevent.Hint(o.Reason); hint != "" {
		body += "\n\nHow to fix: " + hint
	}
	_, err := s.store.InsertNotification(ctx, tx, store.Notification{
		ProjectID: &res.ProjectID, EnvironmentID: res.EnvironmentID, Severity: "error",
		Title:      fmt.Sprintf("%s %s/%s failed in cluster %s: %s", res.Kind, res.Namespace, res.Name, res.Cluster, o.Reason),
		Body:       body,
		TargetType: "gitops_resource", TargetID: fmt.Sprint(res.ID),
	})
	return err
}
