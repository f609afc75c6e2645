package flux

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Statuses of an object, as stored in gitops_resources.status.
const (
	StatusUnknown     = "unknown"
	StatusReady       = "ready"
	StatusReconciling = "reconciling"
	StatusFailed      = "failed"
	StatusSuspended   = "suspended"
)

// progressingReasons are Ready=False reasons that mean "not done yet" rather than "failed".
var progressingReasons = map[string]bool{
	meta.ProgressingReason: true, meta.DependencyNotReadyReason: true, "ArtifactInStorage": true,
}

// Observation is the state of a Flux object as `flux get` and kstatus read it.
type Observation struct {
	UID                    string
	Status                 string
	Reason                 string
	Message                string
	Suspended              bool
	Generation             int64
	ObservedGeneration     int64
	Conditions             []metav1.Condition
	LastHandledReconcileAt string
	// Revision is the applied revision when Ready, else the attempted one.
	Revision          string
	AppliedRevision   string
	AttemptedRevision string
	Interval          time.Duration
	LastReconcileAt   *time.Time
	NextReconcileAt   *time.Time
	// HelmRelease only: the chart and version of the latest release, and status.history.
	ChartName    string
	ChartVersion string
	HelmHistory  json.RawMessage
}

// Decided tells whether the controller finished a reconcile of the current generation with a
// verdict: Ready True or False for a reason other than progress.
func (o *Observation) Decided() bool {
	return o.ObservedGeneration >= o.Generation && (o.Status == StatusReady || o.Status == StatusFailed)
}

// Observe reads an object's state. Its status follows kstatus for Flux objects: suspended
// first; a generation the controller has not observed yet, Stalled=True, or Reconciling=True is
// not final; then the Ready condition decides.
func Observe(u *unstructured.Unstructured) Observation {
	o := Observation{UID: string(u.GetUID()), Generation: u.GetGeneration()}
	o.Suspended, _, _ = unstructured.NestedBool(u.Object, "spec", "suspend")
	o.ObservedGeneration, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	o.LastHandledReconcileAt, _, _ = unstructured.NestedString(u.Object, "status", "lastHandledReconcileAt")
	if raw, ok, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); ok {
		b, _ := json.Marshal(raw)
		_ = json.Unmarshal(b, &o.Conditions)
	}
	ready := condition(o.Conditions, meta.ReadyCondition)
	stalled := condition(o.Conditions, meta.StalledCondition)
	reconciling := condition(o.Conditions, meta.ReconcilingCondition)
	if ready != nil {
		o.Reason, o.Message = ready.Reason, ready.Message
	}
	switch {
	case o.Suspended:
		o.Status = StatusSuspended
	case stalled != nil && stalled.Status == metav1.ConditionTrue:
		o.Status, o.Reason, o.Message = StatusFailed, stalled.Reason, stalled.Message
	case ready == nil:
		o.Status = StatusUnknown
		if len(o.Conditions) > 0 || o.ObservedGeneration > 0 {
			o.Status = StatusReconciling
		}
	case o.ObservedGeneration < o.Generation:
		o.Status = StatusReconciling
	case ready.Status == metav1.ConditionTrue:
		o.Status = StatusReady
	case ready.Status == metav1.ConditionFalse && !progressingReasons[ready.Reason] && !waitsForArtifact(ready):
		o.Status = StatusFailed
	default:
		o.Status = StatusReconciling
	}
	if o.Status == StatusReady && reconciling != nil && reconciling.Status == metav1.ConditionTrue {
		o.Status = StatusReconciling
	}
	o.readRevisions(u)
	o.readTimes(u)
	return o
}

// waitsForArtifact tells whether Ready=False says the object waits for its source's artifact:
// kustomize-controller's "Source artifact not found, retrying in 30s" for a source that has
// not produced one yet (a GitRepository created with its Kustomization), and the controllers'
// "artifact not found" while source-controller replaces it. The controllers requeue these
// after --requeue-dependency, as for a dependency that is not ready, and so does fluxbridge:
// waiting, not failed. A source that cannot fetch reports its own failure.
func waitsForArtifact(ready *metav1.Condition) bool {
	return ready.Reason == meta.ArtifactFailedReason && strings.Contains(strings.ToLower(ready.Message), "artifact not found")
}

func condition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// readRevisions reads what each kind reports as its revision.
func (o *Observation) readRevisions(u *unstructured.Unstructured) {
	str := func(path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, path...)
		return s
	}
	switch u.GetKind() {
	case "Kustomization":
		o.AppliedRevision, o.AttemptedRevision = str("status", "lastAppliedRevision"), str("status", "lastAttemptedRevision")
	case "HelmRelease":
		o.AttemptedRevision = str("status", "lastAttemptedRevision")
		if hist, ok, _ := unstructured.NestedSlice(u.Object, "status", "history"); ok && len(hist) > 0 {
			o.HelmHistory, _ = json.Marshal(hist)
			if latest, ok := hist[0].(map[string]any); ok {
				o.ChartName, _, _ = unstructured.NestedString(latest, "chartName")
				o.ChartVersion, _, _ = unstructured.NestedString(latest, "chartVersion")
				if st, _, _ := unstructured.NestedString(latest, "status"); st == "deployed" {
					o.AppliedRevision = o.ChartVersion
				}
			}
		}
	case "ImageRepository":
		o.AppliedRevision = str("status", "lastScanResult", "revision")
	case "ImagePolicy":
		if name, tag := str("status", "latestRef", "name"), str("status", "latestRef", "tag"); tag != "" {
			o.AppliedRevision = name + ":" + tag
		}
	case "ImageUpdateAutomation":
		o.AppliedRevision = str("status", "lastPushCommit")
	default: // sources
		o.AppliedRevision = str("status", "artifact", "revision")
	}
	if o.AttemptedRevision == "" {
		o.AttemptedRevision = o.AppliedRevision
	}
	o.Revision = o.AttemptedRevision
	if o.Status == StatusReady && o.AppliedRevision != "" {
		o.Revision = o.AppliedRevision
	}
}

// readTimes works out when the object last reconciled (the latest of its condition
// transitions and the kind's own timestamps) and when the next reconcile is due (that plus
// spec.interval; none while suspended).
func (o *Observation) readTimes(u *unstructured.Unstructured) {
	var last time.Time
	later := func(t time.Time) {
		if t.After(last) {
			last = t
		}
	}
	for _, c := range o.Conditions {
		later(c.LastTransitionTime.Time)
	}
	for _, path := range [][]string{
		{"status", "artifact", "lastUpdateTime"},
		{"status", "lastScanResult", "scanTime"},
		{"status", "lastAutomationRunTime"},
	} {
		if s, ok, _ := unstructured.NestedString(u.Object, path...); ok {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				later(t)
			}
		}
	}
	if hist, ok, _ := unstructured.NestedSlice(u.Object, "status", "history"); ok && len(hist) > 0 {
		if latest, ok := hist[0].(map[string]any); ok {
			if s, _, _ := unstructured.NestedString(latest, "lastDeployed"); s != "" {
				if t, err := time.Parse(time.RFC3339, s); err == nil {
					later(t)
				}
			}
		}
	}
	if iv, ok, _ := unstructured.NestedString(u.Object, "spec", "interval"); ok {
		o.Interval, _ = time.ParseDuration(iv)
	}
	if last.IsZero() {
		return
	}
	last = last.UTC()
	o.LastReconcileAt = &last
	if !o.Suspended && o.Interval > 0 {
		next := last.Add(o.Interval)
		o.NextReconcileAt = &next
	}
}
