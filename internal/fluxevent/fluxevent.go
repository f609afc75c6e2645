// Package fluxevent decodes, checks and classifies the events that Flux's notification-controller
// posts to a generic or generic-hmac Provider. It is pure: no I/O, no clock.
package fluxevent

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	corev1 "k8s.io/api/core/v1"
)

// Event is a decoded Flux event with its metadata normalised: group-prefixed keys such as
// "kustomize.toolkit.fluxcd.io/revision" become "revision", as notification-controller does
// before forwarding, so both shapes read the same.
type Event struct {
	eventv1.Event
}

// FieldError is a problem with one field of an event; the webhook answers it with 400.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ErrMalformed wraps JSON syntax and type errors.
var ErrMalformed = errors.New("malformed event JSON")

// Decode parses an event body. It accepts both the v1beta1 and the v1 event shape (v1 only adds
// fields), ignores unknown fields, normalises metadata keys and checks that every field Flux marks
// as required is present. Errors are *FieldError or wrap ErrMalformed.
func Decode(body []byte) (*Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev.Event); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, describeJSONError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the event object", ErrMalformed)
	}
	if err := ev.checkText(); err != nil {
		return nil, err
	}
	ev.Metadata = NormalizeMetadata(ev.Metadata)
	if err := ev.validate(); err != nil {
		return nil, err
	}
	return &ev, nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: got %s, want %s", te.Field, te.Value, te.Type)
	default:
		return err.Error()
	}
}

func (ev *Event) validate() error {
	obj := ev.InvolvedObject
	switch {
	case obj.Kind == "":
		return &FieldError{"involvedObject.kind", "required"}
	case obj.Name == "":
		return &FieldError{"involvedObject.name", "required"}
	case obj.Namespace == "":
		return &FieldError{"involvedObject.namespace", "required"}
	case ev.Severity == "":
		return &FieldError{"severity", "required"}
	case ev.Severity != eventv1.EventSeverityInfo && ev.Severity != eventv1.EventSeverityError && ev.Severity != eventv1.EventSeverityTrace:
		return &FieldError{"severity", fmt.Sprintf("%q is not one of trace, info, error", ev.Severity)}
	case ev.Timestamp.IsZero():
		return &FieldError{"timestamp", "required"}
	case ev.Reason == "":
		return &FieldError{"reason", "required"}
	case ev.Message == "":
		return &FieldError{"message", "required"}
	case len(ev.Message) > 39000:
		return &FieldError{"message", "longer than 39000 characters"}
	case ev.ReportingController == "":
		return &FieldError{"reportingController", "required"}
	}
	return nil
}

// checkText refuses a NUL character in any string of the event: Postgres text cannot hold one,
// so storing it would fail (a 500 Flux retries, then drops); it is a 400 naming the field.
// encoding/json has already replaced invalid UTF-8 with U+FFFD.
func (ev *Event) checkText() error {
	nul := func(field, v string) error {
		if strings.IndexByte(v, 0) >= 0 {
			return &FieldError{field, "contains a NUL character (\\u0000), which cannot be stored"}
		}
		return nil
	}
	ref := func(prefix string, o corev1.ObjectReference) error {
		for _, f := range [][2]string{{"kind", o.Kind}, {"name", o.Name}, {"namespace", o.Namespace},
			{"apiVersion", o.APIVersion}, {"uid", string(o.UID)}, {"resourceVersion", o.ResourceVersion}, {"fieldPath", o.FieldPath}} {
			if err := nul(prefix+"."+f[0], f[1]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ref("involvedObject", ev.InvolvedObject); err != nil {
		return err
	}
	if ev.RelatedObject != nil {
		if err := ref("relatedObject", *ev.RelatedObject); err != nil {
			return err
		}
	}
	for _, f := range [][2]string{{"severity", ev.Severity}, {"message", ev.Message}, {"reason", ev.Reason},
		{"action", ev.Action}, {"reportingController", ev.ReportingController}, {"reportingInstance", ev.ReportingInstance}} {
		if err := nul(f[0], f[1]); err != nil {
			return err
		}
	}
	for k, v := range ev.Metadata {
		if strings.IndexByte(k, 0) >= 0 {
			return &FieldError{"metadata", fmt.Sprintf("key %q contains a NUL character, which cannot be stored", k)}
		}
		if err := nul("metadata."+k, v); err != nil {
			return err
		}
	}
	return nil
}

// internalKeys are metadata keys notification-controller drops before forwarding.
var internalKeys = map[string]bool{eventv1.MetaTokenKey: true}

// NormalizeMetadata strips the "<group>.toolkit.fluxcd.io/" prefix from metadata keys and drops
// internal ones (token). An unprefixed key wins over a prefixed duplicate.
func NormalizeMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return map[string]string{}
	}
	out := make(map[string]string, len(md))
	from := make(map[string]string, len(md)) // the original key each short key came from
	for k, v := range md {
		orig := k
		if i := strings.LastIndexByte(k, '/'); i > 0 && strings.HasSuffix(k[:i], ".toolkit.fluxcd.io") {
			short := k[i+1:]
			if _, plain := md[short]; plain {
				continue
			}
			k = short
		}
		if internalKeys[k] {
			continue
		}
		// Two groups' prefixes for one key: the smaller original key wins, whatever the map's
		// order, so the same event always normalises the same way.
		if prev, seen := from[k]; seen && prev < orig {
			continue
		}
		out[k], from[k] = v, orig
	}
	return out
}

// Revision is the artifact revision the event is about ("main@sha1:<sha>", a chart version…),
// or "" when the event carries none.
func (ev *Event) Revision() string { return ev.Metadata[eventv1.MetaRevisionKey] }

// OriginRevision is the source revision an artifact was built from, when Flux knows it.
func (ev *Event) OriginRevision() string { return ev.Metadata[eventv1.MetaOriginRevisionKey] }

// CommitSHA returns the Git commit the event refers to, looking at the commit, originRevision and
// revision metadata in that order (as Flux's GetRevision does), or "" when none holds a Git SHA.
func (ev *Event) CommitSHA() string {
	for _, k := range []string{eventv1.MetaCommitKey, eventv1.MetaOriginRevisionKey, eventv1.MetaRevisionKey} {
		if sha := CommitSHA(ev.Metadata[k]); sha != "" {
			return sha
		}
	}
	return ""
}

var (
	shaRevision    = regexp.MustCompile(`(?:^|@)sha1:([0-9a-f]{40})$`)
	legacyRevision = regexp.MustCompile(`^(?:[^@]+/)?([0-9a-f]{40})$`)
)

// CommitSHA extracts a Git commit SHA from a Flux revision string: "main@sha1:<sha>", "sha1:<sha>",
// the legacy "main/<sha>" or a bare SHA. OCI digests (sha256:…) are not commits and give "".
func CommitSHA(rev string) string {
	if m := shaRevision.FindStringSubmatch(rev); m != nil {
		return m[1]
	}
	if m := legacyRevision.FindStringSubmatch(rev); m != nil {
		return m[1]
	}
	return ""
}

// Fingerprint identifies an event for de-duplication: the same event redelivered by Flux (which
// retries) has the same fingerprint; any difference in object, reason, revision, message or
// timestamp makes a new one. The cluster is part of it, so two clusters never collide.
func (ev *Event) Fingerprint(cluster string) [32]byte {
	h := sha256.New()
	o := ev.InvolvedObject
	for _, s := range []string{cluster, string(o.UID), o.Kind, o.Namespace, o.Name, ev.Reason,
		ev.Revision(), ev.Message, ev.Timestamp.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
