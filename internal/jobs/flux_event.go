package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// FluxEventArgs asks the worker to process one stored Flux event (flux_events.id).
type FluxEventArgs struct {
	EventID int64 `json:"event_id"`
}

// Kind implements river.JobArgs.
func (FluxEventArgs) Kind() string { return "flux_event" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (FluxEventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueEvents, MaxAttempts: 10}
}

// FluxEventWorker turns a Flux event into platform state: an audit row, the resource's status,
// the repository's sync status, gitops deployments and failure notifications. It runs in one
// transaction with the event row locked and marks the event processed, so a second delivery of
// the job changes nothing.
type FluxEventWorker struct {
	river.WorkerDefaults[FluxEventArgs]
	Store      *store.Store
	IsAncestor AncestorFunc
	// CommitAuthor is optional; without it a gitops-git deployment has no author.
	CommitAuthor CommitAuthorFunc
}

// Timeout bounds one event; it is mostly SQL, plus an optional ancestor check in Git.
func (w *FluxEventWorker) Timeout(*river.Job[FluxEventArgs]) time.Duration { return time.Minute }

// coalesceEvents bounds how many other waiting events of the same object one event job
// processes in its transaction (see Work).
const coalesceEvents = 100

// Work implements river.Worker.
//
// Every event of a managed object locks the object's row, so the events of a busy object run
// one transaction (and one commit) after the other, whatever the number of workers. The job
// therefore also processes, under that lock and in the same transaction, the other
// unprocessed events of the object (up to coalesceEvents, in the order they arrived; only
// those at the same commit while a UI deployment of it is open): one commit for many. Their own jobs, waiting for the object's lock, then find
// them processed and do nothing. A retry processes its event alone, so an event that cannot
// be processed never holds the others back.
func (w *FluxEventWorker) Work(ctx context.Context, job *river.Job[FluxEventArgs]) error {
	// Git is asked before the transaction: no network call while the rows are locked.
	var isAncestor AncestorFunc
	var sha, author string
	pre, err := w.Store.FluxEventByID(ctx, w.Store.Pool(), job.Args.EventID)
	switch {
	case err == nil && pre.ProcessedAt != nil:
		return nil // processed, and committed: by an earlier delivery or with another event
	case err == nil:
		ev := eventOf(pre)
		sha = ev.CommitSHA()
		isAncestor = PrefetchAncestry(ctx, w.Store, w.IsAncestor, eventRef(pre), sha)
		if ev.Applied() || ev.Status() == fluxevent.StatusFailed {
			author = PrefetchAuthor(ctx, w.Store, w.CommitAuthor, eventRef(pre), sha, ev.Revision())
		}
	}
	return w.Store.WithTx(ctx, func(tx pgx.Tx) error {
		// The object's row first, if no other worker holds it: that one is processing the
		// object's waiting events, ours likely among them, so we wait for our event's row
		// instead (and find it processed), not for the object's behind the other waiters.
		var res *store.Resource
		if pre != nil {
			if res, err = w.Store.TryLockResourceByRef(ctx, tx, eventRef(pre)); errors.Is(err, store.ErrNotFound) {
				res = nil // busy, or not managed
			} else if err != nil {
				return err
			}
		}
		row, err := w.Store.LockFluxEvent(ctx, tx, job.Args.EventID)
		if errors.Is(err, store.ErrNotFound) {
			return river.JobCancel(err) // nothing to process, ever
		}
		if err != nil {
			return err
		}
		if row.ProcessedAt != nil {
			return nil
		}
		if res == nil { // not locked yet: wait for the object's row (this event's is ours)
			if res, err = w.Store.LockResourceByRef(ctx, tx, eventRef(row)); errors.Is(err, store.ErrNotFound) {
				res = nil // an object fluxbridge does not manage
			} else if err != nil {
				return err
			}
		}
		batch := []*store.FluxEvent{row}
		if res != nil && pre != nil && job.Attempt == 1 {
			// With a UI deployment open, only events at this commit: the ancestry answers
			// that settle it were fetched for this commit alone. Otherwise every revision.
			open, err := w.Store.OpenUIDeployments(ctx, tx, res.ID)
			if err != nil {
				return err
			}
			more, err := w.Store.LockPendingFluxEventsOf(ctx, tx, eventRef(row), row.Revision, len(open) == 0, row.ID, coalesceEvents)
			if err != nil {
				return err
			}
			for i := range more {
				if len(open) == 0 || eventOf(&more[i]).CommitSHA() == sha {
					batch = append(batch, &more[i])
				}
			}
			slices.SortFunc(batch, func(a, b *store.FluxEvent) int { return cmp.Compare(a.ID, b.ID) }) // as they arrived
		}
		ids := make([]int64, len(batch))
		settled := map[settledKey]bool{}
		// The commit author was read for this job's event's commit only.
		authorOf := func(commit string) string {
			if commit != "" && commit == sha {
				return author
			}
			return ""
		}
		for i, ev := range batch {
			// The next event compares with the object's row as this one left it.
			if res, err = w.handle(ctx, tx, ev, res, isAncestor, authorOf, settled); err != nil {
				return err
			}
			ids[i] = ev.ID
		}
		return w.Store.MarkFluxEventsProcessed(ctx, tx, ids)
	})
}

// settledKey is an outcome SettleDeployment has recorded in the transaction; the same outcome
// of the same object again (Flux re-reporting a revision) would change nothing.
type settledKey struct{ status, revision, sha string }

// handle processes one locked, unprocessed event in tx; res is the object's row, locked by
// tx, or nil when fluxbridge does not manage the object; it returns the row as the event left
// it. settled holds the outcomes recorded in tx so far.
func (w *FluxEventWorker) handle(ctx context.Context, tx pgx.Tx, row *store.FluxEvent, res *store.Resource, isAncestor AncestorFunc, authorOf func(string) string, settled map[settledKey]bool) (*store.Resource, error) {
	// A sender whose clock runs ahead (or an event dated 2099) must not freeze the status:
	// past the skew window the event is ordered by its arrival. flux_events keeps its date.
	if at, clamped := store.ClampFuture(row.EventTime, row.ReceivedAt); clamped {
		zerolog.Ctx(ctx).Warn().Int64("event_id", row.ID).Str("cluster", row.Cluster).Time("event_time", row.EventTime).
			Time("received_at", row.ReceivedAt).Msg("flux event dated ahead of its arrival: ordered by arrival (check the cluster's clock)")
		row.EventTime = at
	}
	ev := eventOf(row)
	var err error
	if res == nil {
		err = w.processUnmanaged(ctx, tx, row, ev) // audited, nothing else
	} else {
		res, err = w.processManaged(ctx, tx, row, ev, res, isAncestor, authorOf, settled)
	}
	if err != nil {
		return nil, fmt.Errorf("process flux event %d: %w", row.ID, err)
	}
	return res, nil
}

// eventOf rebuilds the decoded event from its stored row.
func eventOf(r *store.FluxEvent) *fluxevent.Event {
	return &fluxevent.Event{Event: eventv1.Event{
		InvolvedObject: corev1.ObjectReference{
			APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, UID: types.UID(r.UID),
		},
		Severity: r.Severity, Timestamp: metav1.NewTime(r.EventTime), Message: r.Message, Reason: r.Reason,
		Metadata: r.Metadata, ReportingController: r.ReportingController,
	}}
}

func eventRef(row *store.FluxEvent) store.ObjectRef {
	return store.ObjectRef{Cluster: row.Cluster, Kind: row.Kind, Namespace: row.Namespace, Name: row.Name}
}

// processUnmanaged audits an event of an object fluxbridge does not manage, and notifies its
// failures.
func (w *FluxEventWorker) processUnmanaged(ctx context.Context, tx pgx.Tx, row *store.FluxEvent, ev *fluxevent.Event) error {
	if err := w.audit(ctx, tx, row, ev, nil); err != nil {
		return err
	}
	if ev.Status() == fluxevent.StatusFailed {
		return w.notifyFailure(ctx, tx, row, ev, nil)
	}
	return nil
}

// processManaged applies an event of a managed object, res its row locked by tx, and returns
// the row as it left it (res itself when the event was out of order).
func (w *FluxEventWorker) processManaged(ctx context.Context, tx pgx.Tx, row *store.FluxEvent, ev *fluxevent.Event, res *store.Resource, isAncestor AncestorFunc, authorOf func(string) string, settled map[settledKey]bool) (*store.Resource, error) {
	status := ev.Status()
	if err := w.audit(ctx, tx, row, ev, res); err != nil {
		return nil, err
	}

	prevStatus, prevMessage := res.Status, res.StatusMessage
	upd := store.StatusUpdate{Reason: ev.Reason, Message: ev.Message, Revision: ev.Revision(), ObservedAt: row.EventTime, UID: row.UID}
	if status != fluxevent.StatusUnknown {
		upd.Status = string(status)
	}
	after, err := w.Store.ApplyResourceStatusRow(ctx, tx, res.ID, upd)
	if err != nil {
		return nil, err
	}
	fresh := after != nil
	if !fresh {
		after = res
	}
	if fresh && upd.Status != "" {
		if _, err := w.Store.AppendHistory(ctx, tx, store.HistoryEntry{
			ResourceID: res.ID, At: row.EventTime, Source: store.HistoryWebhook,
			Status: upd.Status, Reason: upd.Reason, Message: upd.Message, Revision: upd.Revision,
		}); err != nil {
			return nil, err
		}
	}

	if fluxevent.IsSource(res.Kind) && res.RepositoryID != nil && status != fluxevent.StatusUnknown {
		if _, err := w.Store.ApplyRepositorySync(ctx, tx, *res.RepositoryID, syncStatusOf(status), ev.Message, ev.Revision(), row.EventTime); err != nil {
			return nil, err
		}
	}

	if fluxevent.IsApplier(res.Kind) {
		outcome := ""
		switch {
		case ev.Applied():
			outcome = store.DeploySucceeded
		case status == fluxevent.StatusFailed && ev.Revision() != "":
			outcome = store.DeployFailed
		}
		if k := (settledKey{outcome, ev.Revision(), ev.CommitSHA()}); outcome != "" && !settled[k] {
			if err := w.recordDeployment(ctx, tx, isAncestor, authorOf(ev.CommitSHA()), row, ev, res, outcome); err != nil {
				return nil, err
			}
			settled[k] = true
		}
	}

	// Notify on a new failure, not on every retry Flux makes of the same one; an out-of-order
	// (stale) event never notifies.
	if status == fluxevent.StatusFailed && fresh && (prevStatus != string(fluxevent.StatusFailed) || prevMessage != ev.Message) {
		return after, w.notifyFailure(ctx, tx, row, ev, res)
	}
	return after, nil
}

func syncStatusOf(s fluxevent.Status) string {
	switch s {
	case fluxevent.StatusReady:
		return store.SyncSynced
	case fluxevent.StatusFailed:
		return store.SyncFailed
	case fluxevent.StatusReconciling:
		return store.SyncSyncing
	}
	return store.SyncUnknown
}

// recordDeployment settles the deployments an applier's success or failure at a revision
// concerns; see SettleDeployment.
func (w *FluxEventWorker) recordDeployment(ctx context.Context, tx pgx.Tx, isAncestor AncestorFunc, author string, row *store.FluxEvent, ev *fluxevent.Event, res *store.Resource, status string) error {
	return SettleDeployment(ctx, tx, w.Store, isAncestor, res, Outcome{
		Status: status, Revision: ev.Revision(), CommitSHA: ev.CommitSHA(), Message: ev.Message, CommitAuthor: author,
		At: row.EventTime, Reporter: row.ReportingController, Details: map[string]any{"event_id": row.ID},
	})
}

// Outcome is what Flux reported about an applier at a revision, from a webhook event or the
// watch.
type Outcome struct {
	Status    string // store.DeploySucceeded or store.DeployFailed
	Revision  string
	CommitSHA string
	Message   string
	At        time.Time
	Reporter  string         // the controller (webhook) or "watch"
	Details   map[string]any // extra audit details, e.g. the event ID
	// CommitAuthor is who authored CommitSHA, when Git was asked (PrefetchAuthor).
	CommitAuthor string
}

// SettleDeployment settles the deployments an applier's outcome at a revision concerns. Open
// gitops-ui deployments whose commit is the reported one, or an ancestor of it (Flux skips
// intermediate commits), take the outcome. Otherwise the change came straight from Git, and
// exactly one gitops-git deployment is recorded for (resource, revision), so the webhook and
// the watch reporting the same revision count once. isAncestor may be nil.
func SettleDeployment(ctx context.Context, tx pgx.Tx, st *store.Store, isAncestor AncestorFunc, res *store.Resource, o Outcome) error {
	sha, rev := o.CommitSHA, o.Revision
	matched, undecided := false, false
	if sha != "" {
		open, err := st.OpenUIDeployments(ctx, tx, res.ID)
		if err != nil {
			return err
		}
		for _, d := range open {
			ok, err := covers(ctx, isAncestor, res, d.CommitSHA, sha)
			if err != nil {
				// Git is unreachable or the credentials are broken: the rest of the event
				// (status, audit, notifications) must not wait for it. The deployment stays
				// open; Flux's next report of this or a later revision settles it.
				zerolog.Ctx(ctx).Warn().Err(err).Int64("deployment_id", d.ID).Msg("ancestor check failed; deployment left open")
				undecided = true
				continue
			}
			if !ok {
				continue
			}
			if err := st.FinishDeployment(ctx, tx, d.ID, o.Status, rev, o.Message, o.At); err != nil {
				return err
			}
			if err := auditDeployment(ctx, tx, st, res, o, d.ID, store.MethodGitopsUI); err != nil {
				return err
			}
			if o.Status == store.DeployFailed {
				if err := maybeAutoRollback(ctx, tx, st, res, &d); err != nil {
					return err
				}
			}
			matched = true
		}
		if !matched {
			done, err := st.HasUIDeploymentOfCommit(ctx, tx, res.ID, sha)
			if err != nil {
				return err
			}
			matched = done // a re-reconcile of a revision a UI deployment already covers
		}
	}
	if matched || undecided {
		return nil // undecided: not known to be a Git push, so no gitops-git record yet
	}
	nd := store.NewDeployment{
		ProjectID: res.ProjectID, EnvironmentID: *res.EnvironmentID, GitopsResourceID: &res.ID,
		Status: o.Status, Revision: rev, CommitSHA: sha, Message: o.Message, CommitAuthor: o.CommitAuthor,
	}
	if sha != "" {
		// image-automation-controller's push (its status.lastPushCommit, seen by the watch)
		// is not a person's; the watch marks it later when it sees the push after this.
		auto, err := st.ImageAutomationOfCommit(ctx, tx, res.ProjectID, sha)
		switch {
		case err == nil:
			nd.Trigger, nd.TriggerRef = store.TriggerImageAutomation, auto.Namespace+"/"+auto.Name
			if nd.CommitAuthor == "" {
				nd.CommitAuthor = automationAuthor(auto) // what it writes into its commits
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	d, changed, err := st.RecordGitDeployment(ctx, tx, nd, o.At)
	if err != nil || !changed {
		return err
	}
	if nd.Trigger != "" {
		o.Details = withDetail(o.Details, "trigger", nd.Trigger, "trigger_ref", nd.TriggerRef)
	}
	return auditDeployment(ctx, tx, st, res, o, d.ID, store.MethodGitopsGit)
}

// withDetail returns a copy of details with the key/value pairs kv added.
func withDetail(details map[string]any, kv ...string) map[string]any {
	out := make(map[string]any, len(details)+len(kv)/2)
	for k, v := range details {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// ancestorTimeout bounds one ancestry check in Git (made before the event's transaction).
const ancestorTimeout = 15 * time.Second

// covers tells whether a deployment of commit deployed is included in the applied commit.
func covers(ctx context.Context, isAncestor AncestorFunc, res *store.Resource, deployed, applied string) (bool, error) {
	if deployed == applied {
		return true, nil
	}
	if isAncestor == nil || res.RepositoryID == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ancestorTimeout)
	defer cancel()
	ok, err := isAncestor(ctx, *res.RepositoryID, deployed, applied)
	if err != nil {
		return false, fmt.Errorf("is %s an ancestor of %s: %w", deployed, applied, err)
	}
	return ok, nil
}

func (w *FluxEventWorker) audit(ctx context.Context, tx pgx.Tx, row *store.FluxEvent, ev *fluxevent.Event, res *store.Resource) error {
	details, err := json.Marshal(map[string]any{
		"event_id": row.ID, "severity": row.Severity, "reason": row.Reason, "revision": ev.Revision(),
		"metadata": row.Metadata, "reporting_controller": row.ReportingController, "object_uid": row.UID,
		"managed": res != nil,
	})
	if err != nil {
		return err
	}
	e := store.AuditEntry{
		At: row.EventTime, ActorType: store.ActorFlux, ActorName: row.ReportingController,
		Action: "flux." + row.Reason, TargetType: row.Kind, TargetID: row.Namespace + "/" + row.Name,
		Cluster: row.Cluster, Message: row.Message, Details: details,
	}
	if res == nil {
		_, err = w.Store.InsertAudit(ctx, tx, e)
		return err
	}
	e.ProjectID, e.EnvironmentID = &res.ProjectID, res.EnvironmentID
	f, ok := ev.Fact()
	switch {
	case !ok:
		_, err = w.Store.InsertAudit(ctx, tx, e)
	case f.Action == fluxevent.ImageUpdated:
		// The event keeps its own row; the tag change gets the one row the watch shares.
		if _, err = w.Store.InsertAudit(ctx, tx, e); err == nil {
			err = auditImageUpdate(ctx, tx, w.Store, res, f, res.LastAppliedRevision, "event", row.EventTime)
		}
	default:
		// A new artifact or revision the watch may have audited already: one row, not two.
		_, err = w.Store.InsertEventAudit(ctx, tx, e, ObservedKey(objectRefOf(res), f.Revision))
	}
	return err
}

func auditDeployment(ctx context.Context, tx pgx.Tx, st *store.Store, res *store.Resource, o Outcome, id int64, method string) error {
	d := map[string]any{"revision": o.Revision, "method": method, "status": o.Status}
	for k, v := range o.Details {
		d[k] = v
	}
	details, _ := json.Marshal(d)
	_, err := st.InsertAudit(ctx, tx, store.AuditEntry{
		ActorType: store.ActorFlux, ActorName: o.Reporter, Action: "deployment." + o.Status,
		TargetType: "deployment", TargetID: fmt.Sprint(id), ProjectID: &res.ProjectID, EnvironmentID: res.EnvironmentID,
		Cluster: res.Cluster, Message: fmt.Sprintf("%s %s/%s %s revision %s", res.Kind, res.Namespace, res.Name, o.Status, o.Revision),
		Details: details,
	})
	return err
}

func (w *FluxEventWorker) notifyFailure(ctx context.Context, tx pgx.Tx, row *store.FluxEvent, ev *fluxevent.Event, res *store.Resource) error {
	n := store.Notification{
		Severity:   "error",
		Title:      fmt.Sprintf("%s %s/%s failed in cluster %s: %s", row.Kind, row.Namespace, row.Name, row.Cluster, row.Reason),
		Body:       row.Message,
		TargetType: "flux_event", TargetID: fmt.Sprint(row.ID),
	}
	if hint := fluxevent.Hint(ev.Reason); hint != "" {
		n.Body += "\n\nHow to fix: " + hint
	}
	if res != nil {
		n.ProjectID, n.EnvironmentID = &res.ProjectID, res.EnvironmentID
		n.TargetType, n.TargetID = "gitops_resource", fmt.Sprint(res.ID)
	}
	_, err := w.Store.InsertNotification(ctx, tx, n)
	return err
}
