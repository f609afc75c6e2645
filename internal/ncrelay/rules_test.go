package ncrelay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kustomizationEvent is a Kustomization event as kustomize-controller posts it: controller
// metadata group-prefixed, the object's event annotations under event.toolkit.fluxcd.io.
func kustomizationEvent() *eventv1.Event {
	return &eventv1.Event{
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization", Namespace: "flux-system", Name: "webapp-dev",
		},
		Severity: eventv1.EventSeverityInfo, Reason: "ReconciliationSucceeded", ReportingController: "kustomize-controller",
		Message:   "Reconciliation finished in 506ms, next run in 10m0s",
		Timestamp: metav1.Now(),
		Metadata: map[string]string{
			"kustomize.toolkit.fluxcd.io/revision":      "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac",
			"kustomize.toolkit.fluxcd.io/commit_status": "update",
			"kustomize.toolkit.fluxcd.io/token":         "2026-11-27T00:58:00.1Z",
			"kustomize.toolkit.fluxcd.io/checksum":      "abc",
			"kustomize.toolkit.fluxcd.io/digest":        "sha256:def",
			"source.toolkit.fluxcd.io/revision":         "other group: dropped",
			"event.toolkit.fluxcd.io/environment":       "from-annotation",
			"event.toolkit.fluxcd.io/deployment":        "42",
			"event.toolkit.fluxcd.io/revision":          "annotation loses to the controller",
		},
	}
}

func alert(mutate func(*notificationv1beta3.Alert)) *notificationv1beta3.Alert {
	a := &notificationv1beta3.Alert{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "fluxbridge-webapp-dev"},
		Spec: notificationv1beta3.AlertSpec{
			EventSeverity: eventv1.EventSeverityInfo,
			EventSources:  []notificationv1.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "webapp-dev"}},
		},
	}
	if mutate != nil {
		mutate(a)
	}
	return a
}

func TestNotificationMetadata(t *testing.T) {
	a := alert(func(a *notificationv1beta3.Alert) {
		a.Spec.EventMetadata = map[string]string{"cluster": "dev-eu", "environment": "dev", "commit_status": "alert loses"}
		a.Spec.Summary = "webapp in dev"
	})
	n := notification(kustomizationEvent(), a)
	require.Equal(t, map[string]string{
		"revision":      "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac",
		"commit_status": "update",
		"cluster":       "dev-eu",
		"environment":   "dev", // eventMetadata beats the object's annotation
		"deployment":    "42",
		"summary":       "webapp in dev",
	}, n.Metadata)
	require.Equal(t, "Kustomization", n.InvolvedObject.Kind)

	// The summary beats eventMetadata; the source event is not modified.
	ev := kustomizationEvent()
	a.Spec.EventMetadata["summary"] = "loses"
	require.Equal(t, "webapp in dev", notification(ev, a).Metadata["summary"])
	require.Contains(t, ev.Metadata, "kustomize.toolkit.fluxcd.io/token")

	// No metadata at all stays absent.
	bare := kustomizationEvent()
	bare.Metadata = nil
	require.Nil(t, notification(bare, alert(nil)).Metadata)
}

func TestEventKey(t *testing.T) {
	base := eventKey(kustomizationEvent())
	for name, change := range map[string]func(*eventv1.Event){
		"message":   func(e *eventv1.Event) { e.Message = "other" },
		"revision":  func(e *eventv1.Event) { e.Metadata["kustomize.toolkit.fluxcd.io/revision"] = "main@sha1:0" },
		"token":     func(e *eventv1.Event) { e.Metadata["kustomize.toolkit.fluxcd.io/token"] = "t2" },
		"name":      func(e *eventv1.Event) { e.InvolvedObject.Name = "other" },
		"namespace": func(e *eventv1.Event) { e.InvolvedObject.Namespace = "other" },
		"kind":      func(e *eventv1.Event) { e.InvolvedObject.Kind = "HelmRelease" },
	} {
		ev := kustomizationEvent()
		change(ev)
		require.NotEqual(t, base, eventKey(ev), name)
	}
	for name, change := range map[string]func(*eventv1.Event){
		"timestamp":  func(e *eventv1.Event) { e.Timestamp = metav1.Time{} },
		"reason":     func(e *eventv1.Event) { e.Reason = "Progressing" },
		"annotation": func(e *eventv1.Event) { e.Metadata["event.toolkit.fluxcd.io/deployment"] = "43" },
	} {
		ev := kustomizationEvent()
		change(ev)
		require.Equal(t, base, eventKey(ev), name)
	}
}

func TestMatches(t *testing.T) {
	errEvent := kustomizationEvent()
	errEvent.Severity = eventv1.EventSeverityError
	labels := func(l map[string]string, err error) LabelsFunc {
		return func(*eventv1.Event) (map[string]string, error) { return l, err }
	}
	envLabels := labels(map[string]string{"fluxbridge.io/environment": "dev"}, nil)
	tests := []struct {
		name   string
		alert  *notificationv1beta3.Alert
		event  *eventv1.Event
		labels LabelsFunc
		want   bool
	}{
		{"by name in the alert's namespace", alert(nil), kustomizationEvent(), envLabels, true},
		{"other name", alert(func(a *notificationv1beta3.Alert) { a.Spec.EventSources[0].Name = "other" }), kustomizationEvent(), envLabels, false},
		{"other kind", alert(func(a *notificationv1beta3.Alert) { a.Spec.EventSources[0].Kind = "HelmRelease" }), kustomizationEvent(), envLabels, false},
		{"source namespace defaults to the alert's", alert(func(a *notificationv1beta3.Alert) { a.Namespace = "apps" }), kustomizationEvent(), envLabels, false},
		{"explicit namespace", alert(func(a *notificationv1beta3.Alert) {
			a.Namespace = "apps"
			a.Spec.EventSources[0].Namespace = "flux-system"
		}), kustomizationEvent(), envLabels, true},
		{"wildcard", alert(func(a *notificationv1beta3.Alert) { a.Spec.EventSources[0].Name = "*" }), kustomizationEvent(), envLabels, true},
		{"wildcard with matching labels", alert(func(a *notificationv1beta3.Alert) {
			a.Spec.EventSources[0].Name = "*"
			a.Spec.EventSources[0].MatchLabels = map[string]string{"fluxbridge.io/environment": "dev"}
		}), kustomizationEvent(), envLabels, true},
		{"wildcard with other labels", alert(func(a *notificationv1beta3.Alert) {
			a.Spec.EventSources[0].Name = "*"
			a.Spec.EventSources[0].MatchLabels = map[string]string{"fluxbridge.io/environment": "prod"}
		}), kustomizationEvent(), envLabels, false},
		{"labels unreadable", alert(func(a *notificationv1beta3.Alert) {
			a.Spec.EventSources[0].Name = "*"
			a.Spec.EventSources[0].MatchLabels = map[string]string{"fluxbridge.io/environment": "dev"}
		}), kustomizationEvent(), labels(nil, errors.New("not found")), false},
		{"suspended", alert(func(a *notificationv1beta3.Alert) { a.Spec.Suspend = true }), kustomizationEvent(), envLabels, false},
		{"error alert skips info", alert(func(a *notificationv1beta3.Alert) { a.Spec.EventSeverity = "error" }), kustomizationEvent(), envLabels, false},
		{"error alert takes errors", alert(func(a *notificationv1beta3.Alert) { a.Spec.EventSeverity = "error" }), errEvent, envLabels, true},
		{"info alert takes errors", alert(nil), errEvent, envLabels, true},
		{"severity unset means info", alert(func(a *notificationv1beta3.Alert) { a.Spec.EventSeverity = "" }), errEvent, envLabels, true},
		{"excluded message", alert(func(a *notificationv1beta3.Alert) { a.Spec.ExclusionList = []string{"^Reconciliation finished"} }), kustomizationEvent(), envLabels, false},
		{"bad exclusion ignored", alert(func(a *notificationv1beta3.Alert) { a.Spec.ExclusionList = []string{"("} }), kustomizationEvent(), envLabels, true},
		{"included message", alert(func(a *notificationv1beta3.Alert) { a.Spec.InclusionList = []string{"next run"} }), kustomizationEvent(), envLabels, true},
		{"not included", alert(func(a *notificationv1beta3.Alert) { a.Spec.InclusionList = []string{"^failed"} }), kustomizationEvent(), envLabels, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, matches(tt.alert, tt.event, tt.labels))
		})
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"message":"hi"}`)
	mac := hmac.New(sha256.New, []byte("token-1234567890abcdef"))
	mac.Write(body)
	require.Equal(t, "sha256="+hex.EncodeToString(mac.Sum(nil)), signature(body, "token-1234567890abcdef"))
}
