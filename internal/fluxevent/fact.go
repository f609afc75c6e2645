package fluxevent

import (
	"regexp"
	"strings"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
)

// Fact is something an event reports that the watch can see on the object too, so that
// whichever arrives first records it once (R5b.2): a source's new artifact, an applier's
// newly applied revision, an image policy's new latest tag. Action is the audit action
// ("flux.NewArtifact", …, or ImageUpdated), Revision what the object's status says
// (status.artifact.revision, status.lastAppliedRevision, the chart version, or
// "<image>:<tag>").
type Fact struct {
	Action   string
	Revision string
	// Previous is an image policy's previous "<image>:<tag>", when known.
	Previous string
}

// ImageUpdated is the audit action of an image policy's new latest tag (R6b.5).
const ImageUpdated = "image.updated"

// factReasons are, per kind class, the reasons of the event a controller emits once per
// new revision.
var factReasons = map[string]map[string]bool{
	"source":        {"NewArtifact": true},
	"Kustomization": {"ReconciliationSucceeded": true},
	"HelmRelease":   {"InstallSucceeded": true, "UpgradeSucceeded": true},
}

// Fact returns the fact the event reports, if it reports one. An ImagePolicy's is read from
// image-reflector-controller's Ready message ("Latest image tag for <image> resolved to <tag>
// … (previously <image>:<tag>)"), as its events carry no revision.
func (ev *Event) Fact() (Fact, bool) {
	if ev.Severity == eventv1.EventSeverityError {
		return Fact{}, false
	}
	kind := ev.InvolvedObject.Kind
	if kind == "ImagePolicy" {
		image, tag, prev, ok := ImageTagChange(ev.Message)
		if !ok {
			return Fact{}, false
		}
		return Fact{Action: ImageUpdated, Revision: image + ":" + tag, Previous: prev}, true
	}
	class := kind
	if IsSource(kind) {
		class = "source"
	}
	if !factReasons[class][ev.Reason] || ev.Revision() == "" {
		return Fact{}, false
	}
	return Fact{Action: "flux." + ev.Reason, Revision: ev.Revision()}, true
}

// imageTagRE matches image-reflector-controller's ImagePolicy Ready message.
var imageTagRE = regexp.MustCompile(`^Latest image tag for (\S+) resolved to (\S+)(?: with digest \S+)?(?: \(previously ([^)@\s]+)(?:@\S+)?\))?$`)

// ImageTagChange parses an ImagePolicy's Ready message: the image, its latest tag and the
// previous "<image>:<tag>" ("" when the message names none).
func ImageTagChange(msg string) (image, tag, previous string, ok bool) {
	m := imageTagRE.FindStringSubmatch(strings.TrimSpace(msg))
	if m == nil {
		return "", "", "", false
	}
	return m[1], m[2], m[3], true
}
