package fluxevent

import (
	"testing"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestFact(t *testing.T) {
	ev := func(kind, severity, reason, msg, rev string) *Event {
		e := &Event{Event: eventv1.Event{InvolvedObject: corev1.ObjectReference{Kind: kind}, Severity: severity, Reason: reason, Message: msg}}
		if rev != "" {
			e.Metadata = map[string]string{eventv1.MetaRevisionKey: rev}
		}
		return e
	}
	const rev = "main@sha1:0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name string
		ev   *Event
		want Fact
		ok   bool
	}{
		{"new artifact", ev("GitRepository", "info", "NewArtifact", "stored artifact", rev), Fact{Action: "flux.NewArtifact", Revision: rev}, true},
		{"artifact up to date", ev("GitRepository", "info", "ArtifactUpToDate", "", rev), Fact{}, false},
		{"applied", ev("Kustomization", "info", "ReconciliationSucceeded", "Reconciliation finished", rev), Fact{Action: "flux.ReconciliationSucceeded", Revision: rev}, true},
		{"applied without revision", ev("Kustomization", "info", "ReconciliationSucceeded", "", ""), Fact{}, false},
		{"failed", ev("Kustomization", "error", "ReconciliationSucceeded", "", rev), Fact{}, false},
		{"helm upgrade", ev("HelmRelease", "info", "UpgradeSucceeded", "Helm upgrade succeeded", "1.1.0"), Fact{Action: "flux.UpgradeSucceeded", Revision: "1.1.0"}, true},
		{"image first", ev("ImagePolicy", "info", "Succeeded", "Latest image tag for foo/bar resolved to 1.0.0", ""), Fact{Action: ImageUpdated, Revision: "foo/bar:1.0.0"}, true},
		{"image update", ev("ImagePolicy", "info", "Succeeded", "Latest image tag for foo/bar resolved to 1.1.0 (previously foo/bar:1.0.0)", ""), Fact{Action: ImageUpdated, Revision: "foo/bar:1.1.0", Previous: "foo/bar:1.0.0"}, true},
		{"image digest", ev("ImagePolicy", "info", "Succeeded", "Latest image tag for foo/bar resolved to 1.0.0 with digest sha256:12 (previously baz/qux:0.9@sha256:ab)", ""), Fact{Action: ImageUpdated, Revision: "foo/bar:1.0.0", Previous: "baz/qux:0.9"}, true},
		{"image other message", ev("ImagePolicy", "info", "Succeeded", "no tags found", ""), Fact{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.ev.Fact()
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
