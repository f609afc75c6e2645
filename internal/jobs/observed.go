package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ObservedKey is the audit dedup key of a fact about the object ref names at revision: the
// webhook and the watch reporting the same new artifact, revision or tag make one row.
func ObservedKey(ref store.ObjectRef, revision string) string {
	return "observed:" + ref.Cluster + "/" + ref.Kind + "/" + ref.Namespace + "/" + ref.Name + "@" + revision
}

// ControllerOf names the Flux controller that reconciles kind, the actor of what it reports.
func ControllerOf(kind string) string {
	switch {
	case fluxevent.IsSource(kind):
		return "source-controller"
	case kind == "Kustomization":
		return "kustomize-controller"
	case kind == "HelmRelease":
		return "helm-controller"
	case kind == "ImageRepository" || kind == "ImagePolicy":
		return "image-reflector-controller"
	case kind == "ImageUpdateAutomation":
		return "image-automation-controller"
	}
	return "flux"
}

func objectRefOf(res *store.Resource) store.ObjectRef {
	return store.ObjectRef{Cluster: res.Cluster, Kind: res.Kind, Namespace: res.Namespace, Name: res.Name}
}

// AuditObserved records a fact the watch saw on a managed object's status (no event may ever
// arrive for it: an Alert missing, notification-controller down) as the event would have:
// the same action and target, marked observed_by watch. The event that arrives later adds no
// second row (store.InsertEventAudit); one that came first already holds the key.
func AuditObserved(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, f fluxevent.Fact, message string, at time.Time) error {
	if f.Action == fluxevent.ImageUpdated {
		return auditImageUpdate(ctx, tx, st, res, f, res.LastAppliedRevision, store.ObservedByWatch, at)
	}
	return insertFact(ctx, tx, st, res, f, message, map[string]any{
		"revision": f.Revision, "observed_by": store.ObservedByWatch, "managed": true,
	}, at)
}

// insertFact writes the audit row of fact f about res, keyed so that it is written once.
func insertFact(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, f fluxevent.Fact, message string, details map[string]any, at time.Time) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return err
	}
	key := ObservedKey(objectRefOf(res), f.Revision)
	_, err = st.InsertAudit(ctx, tx, store.AuditEntry{
		At: at, ActorType: store.ActorFlux, ActorName: ControllerOf(res.Kind), Action: f.Action,
		TargetType: res.Kind, TargetID: res.Namespace + "/" + res.Name, Cluster: res.Cluster,
		ProjectID: &res.ProjectID, EnvironmentID: res.EnvironmentID, Message: message, Details: raw,
		DedupKey: &key,
	})
	return err
}

// auditImageUpdate writes the one audit row of an image policy's new latest tag (R6b.5):
// the policy, the old and new tag, the cluster and the project. previous is the old
// "<image>:<tag>" when f does not say; by is "watch" or "event".
func auditImageUpdate(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, f fluxevent.Fact, previous, by string, at time.Time) error {
	if f.Previous != "" {
		previous = f.Previous
	}
	if previous == f.Revision {
		return nil
	}
	image, tag := splitImageRef(f.Revision)
	_, from := splitImageRef(previous)
	msg := fmt.Sprintf("Image policy %s/%s: %s resolved to %s", res.Namespace, res.Name, image, tag)
	if from != "" {
		msg = fmt.Sprintf("Image policy %s/%s: %s %s → %s", res.Namespace, res.Name, image, from, tag)
	}
	f.Action = fluxevent.ImageUpdated
	return insertFact(ctx, tx, st, res, f, msg, map[string]any{
		"policy": res.Namespace + "/" + res.Name, "image": image, "from": from, "to": tag, "observed_by": by,
	}, at)
}

// splitImageRef splits "<image>:<tag>" at the tag's colon (an image may have a port).
func splitImageRef(ref string) (image, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// ImageAutomationPush records that the ImageUpdateAutomation res pushed commit sha (its
// status.lastPushCommit, seen by the watch): the gitops-git deployments of that commit
// already recorded become image automation's, with the automation's commit author.
func ImageAutomationPush(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, sha string) error {
	if sha == "" {
		return nil
	}
	_, err := st.MarkImageAutomationCommit(ctx, tx, res.ProjectID, sha, res.Namespace+"/"+res.Name, automationAuthor(res))
	return err
}

// automationAuthor is the commit author an ImageUpdateAutomation writes: its config's
// authorName (default "fluxbridge", as the object is built) and authorEmail.
func automationAuthor(res *store.Resource) string {
	var c struct {
		AuthorName  string `json:"authorName"`
		AuthorEmail string `json:"authorEmail"`
	}
	_ = json.Unmarshal(res.Config, &c)
	if c.AuthorName == "" {
		c.AuthorName = "fluxbridge"
	}
	if c.AuthorEmail == "" {
		return c.AuthorName
	}
	return c.AuthorName + " <" + c.AuthorEmail + ">"
}
