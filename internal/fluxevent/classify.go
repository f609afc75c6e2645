package fluxevent

import eventv1 "github.com/fluxcd/pkg/apis/event/v1"

// Status is the reconciliation state an event implies for its object.
type Status string

// Statuses, as stored in gitops_resources.status.
const (
	StatusUnknown     Status = "unknown"
	StatusReady       Status = "ready"
	StatusReconciling Status = "reconciling"
	StatusFailed      Status = "failed"
	StatusSuspended   Status = "suspended"
)

// Reasons the Flux controllers emit, grouped by what they say about the object. Reasons not
// listed leave the stored status alone (the event is still audited).
var (
	readyReasons = map[string]bool{
		"ReconciliationSucceeded": true, "NewArtifact": true, "ArtifactUpToDate": true,
		"InstallSucceeded": true, "UpgradeSucceeded": true, "TestSucceeded": true,
		"ChartPackageSucceeded": true, "ChartPullSucceeded": true, "Succeeded": true,
	}
	progressingReasons = map[string]bool{
		"Progressing": true, "ProgressingWithRetry": true, "DependencyNotReady": true,
		"ArtifactInStorage": true,
	}
	// appliedReasons mean that an applier (Kustomization, HelmRelease) has put a revision into
	// the cluster: the moment a deployment is done.
	appliedReasons = map[string]bool{
		"ReconciliationSucceeded": true, "InstallSucceeded": true, "UpgradeSucceeded": true,
	}
)

// Status returns the state the event implies; an error event always means failed.
func (ev *Event) Status() Status {
	switch {
	case ev.Severity == eventv1.EventSeverityError:
		return StatusFailed
	case readyReasons[ev.Reason]:
		return StatusReady
	case progressingReasons[ev.Reason]:
		return StatusReconciling
	default:
		return StatusUnknown
	}
}

// IsApplier tells whether kind applies manifests to a cluster (and so makes deployments).
func IsApplier(kind string) bool { return kind == "Kustomization" || kind == "HelmRelease" }

// IsSource tells whether kind produces artifacts from a repository.
func IsSource(kind string) bool {
	switch kind {
	case "GitRepository", "OCIRepository", "Bucket", "HelmRepository", "HelmChart":
		return true
	}
	return false
}

// Applied tells whether the event reports a successful apply of a revision by an applier.
func (ev *Event) Applied() bool {
	return ev.Severity != eventv1.EventSeverityError && IsApplier(ev.InvolvedObject.Kind) &&
		appliedReasons[ev.Reason] && ev.Revision() != ""
}
