// Package ncrelay is the end-to-end rig's stand-in for Flux's notification-controller, which
// cannot be built from the module proxy this project builds from. It is test infrastructure,
// never part of a fluxbridge deployment: clusters run the real notification-controller.
//
// The Flux controllers POST their events to the relay (their --events-addr). The relay applies
// notification-controller's forwarding rules for generic and generic-hmac Providers, reading
// the Alert, Provider and Secret objects from the apiserver, so that it exercises the Alert
// wiring fluxbridge creates in a cluster:
//
//   - a repeat of the same object, message, revision and token within five minutes is answered
//     429 (the controllers then drop it), anything else 202;
//   - an Alert forwards an event when it is not suspended, one of its eventSources matches the
//     involved object (kind; name or "*" with optional matchLabels; namespace, defaulting to
//     the Alert's), its eventSeverity admits the event ("info" admits all, "error" only
//     errors) and its inclusionList/exclusionList admit the message;
//   - the metadata is rewritten: "<object group>/X" becomes "X" except the internal checksum,
//     digest and token keys; "event.toolkit.fluxcd.io/X" (the object's annotations) becomes
//     "X"; the Alert's eventMetadata and summary are added; other keys are dropped. On a
//     conflict the controller's metadata wins over the summary, the summary over eventMetadata,
//     and eventMetadata over annotations (RFC-0008);
//   - the Provider (not suspended) gives the address (its Secret's "address" wins), the token
//     (Secret key "token") and extra headers (Secret key "headers", YAML); the body is the
//     event as JSON with Content-Type application/json and Gotk-Component set to the reporting
//     controller, and for generic-hmac X-Signature: sha256=<hex HMAC-SHA256(body, token)>;
//   - a delivery is retried four times on connection errors, 429 and 5xx (but 501), waiting
//     2 s, 4 s, 8 s … (at most 30 s), all within the Provider's timeout (default 15 s).
//
// Only generic and generic-hmac Providers are implemented; other types are recorded as
// undeliverable. An Alert matching through several eventSources delivers once.
package ncrelay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"strings"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// cleaned is an event's metadata split the way notification-controller reads it.
type cleaned struct {
	// controller holds the "<object group>/X" keys as "X", internal keys included.
	controller map[string]string
	// annotations holds the "event.toolkit.fluxcd.io/X" keys as "X".
	annotations map[string]string
}

// internalKeys are controller metadata keys that are never forwarded.
var internalKeys = map[string]bool{
	eventv1.MetaChecksumKey: true,
	eventv1.MetaDigestKey:   true,
	eventv1.MetaTokenKey:    true,
}

// objectGroup returns the API group of the event's involved object.
func objectGroup(ev *eventv1.Event) string {
	gv, err := schema.ParseGroupVersion(ev.InvolvedObject.APIVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

// clean splits ev's metadata into the controller's keys and the object's event annotations,
// dropping keys of other groups.
func clean(ev *eventv1.Event) cleaned {
	c := cleaned{controller: map[string]string{}, annotations: map[string]string{}}
	group := objectGroup(ev)
	for k, v := range ev.Metadata {
		switch {
		case group != "" && strings.HasPrefix(k, group+"/"):
			c.controller[strings.TrimPrefix(k, group+"/")] = v
		case strings.HasPrefix(k, eventv1.Group+"/"):
			c.annotations[strings.TrimPrefix(k, eventv1.Group+"/")] = v
		}
	}
	return c
}

// eventKey identifies an event for the five-minute duplicate window: object, message,
// revision and reconcile token, as notification-controller's rate limiter keys it.
func eventKey(ev *eventv1.Event) string {
	c := clean(ev)
	comps := []string{
		"event",
		"name=" + ev.InvolvedObject.Name,
		"namespace=" + ev.InvolvedObject.Namespace,
		"kind=" + ev.InvolvedObject.Kind,
		"message=" + ev.Message,
	}
	if rev, ok := c.controller[eventv1.MetaRevisionKey]; ok {
		comps = append(comps, "revision="+rev)
	}
	if tok, ok := c.controller[eventv1.MetaTokenKey]; ok {
		comps = append(comps, "token="+tok)
	}
	sum := sha256.Sum256([]byte(strings.Join(comps, "/")))
	return hex.EncodeToString(sum[:])
}

// LabelsFunc returns the labels of the event's involved object, for eventSources that select
// by matchLabels; an error means the object could not be read (no match).
type LabelsFunc func(ev *eventv1.Event) (map[string]string, error)

// matches tells whether alert forwards ev.
func matches(alert *notificationv1beta3.Alert, ev *eventv1.Event, objLabels LabelsFunc) bool {
	if alert.Spec.Suspend {
		return false
	}
	if alert.Spec.EventSeverity == eventv1.EventSeverityError && ev.Severity != eventv1.EventSeverityError {
		return false
	}
	if !admitted(alert, ev.Message) {
		return false
	}
	obj := ev.InvolvedObject
	for _, src := range alert.Spec.EventSources {
		ns := src.Namespace
		if ns == "" {
			ns = alert.Namespace
		}
		if src.Kind != obj.Kind || ns != obj.Namespace {
			continue
		}
		if src.Name == obj.Name {
			return true
		}
		if src.Name != "*" {
			continue
		}
		if len(src.MatchLabels) == 0 {
			return true
		}
		l, err := objLabels(ev)
		if err == nil && labels.SelectorFromSet(src.MatchLabels).Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

// admitted applies an Alert's inclusion and exclusion lists to a message. Patterns that do not
// compile are ignored, as notification-controller logs and skips them.
func admitted(alert *notificationv1beta3.Alert, msg string) bool {
	if len(alert.Spec.InclusionList) > 0 {
		in := false
		for _, p := range alert.Spec.InclusionList {
			if re, err := regexp.Compile(p); err == nil && re.MatchString(msg) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, p := range alert.Spec.ExclusionList {
		if re, err := regexp.Compile(p); err == nil && re.MatchString(msg) {
			return false
		}
	}
	return true
}

// notification is the event alert forwards: ev with its metadata rewritten.
func notification(ev *eventv1.Event, alert *notificationv1beta3.Alert) eventv1.Event {
	c := clean(ev)
	md := maps.Clone(c.annotations)
	maps.Copy(md, alert.Spec.EventMetadata)
	if alert.Spec.Summary != "" {
		md["summary"] = alert.Spec.Summary
	}
	for k, v := range c.controller {
		if !internalKeys[k] {
			md[k] = v
		}
	}
	n := *ev.DeepCopy()
	n.Metadata = md
	if len(md) == 0 {
		n.Metadata = nil
	}
	return n
}

// signature is the X-Signature header of a generic-hmac delivery of body.
func signature(body []byte, token string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(body)
	return fmt.Sprintf("sha256=%s", hex.EncodeToString(mac.Sum(nil)))
}
