// Package fluxspec turns a gitops_resources row's settings (its config JSONB) into a Flux object
// built with Flux's own Go API types. Each kind has a typed config struct that is decoded
// strictly and validated at the API, so that a bad duration, semver range, path or reference is
// a 400 naming the field, not a Flux error minutes later.
//
// Config keys use Flux's own spelling (camelCase, as in the object's spec) so that a person who
// knows `flux create` or the CRDs recognises them; this is the one place where JSON is not
// snake_case.
package fluxspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Flux kinds fluxbridge manages, as stored in gitops_resources.kind.
const (
	KindGitRepository         = "GitRepository"
	KindOCIRepository         = "OCIRepository"
	KindHelmRepository        = "HelmRepository"
	KindHelmChart             = "HelmChart"
	KindBucket                = "Bucket"
	KindKustomization         = "Kustomization"
	KindHelmRelease           = "HelmRelease"
	KindImageRepository       = "ImageRepository"
	KindImagePolicy           = "ImagePolicy"
	KindImageUpdateAutomation = "ImageUpdateAutomation"
)

// Kinds lists every kind, sources first.
var Kinds = []string{
	KindGitRepository, KindOCIRepository, KindHelmRepository, KindHelmChart, KindBucket,
	KindKustomization, KindHelmRelease, KindImageRepository, KindImagePolicy, KindImageUpdateAutomation,
}

// IsApplier tells whether kind applies manifests into an environment (and so needs one).
func IsApplier(kind string) bool { return kind == KindKustomization || kind == KindHelmRelease }

// FieldError is a problem with one config field; Field is its path, e.g.
// "config.chart.version".
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Spec is the validated config of one kind.
type Spec interface {
	// Kind is the Flux kind the spec builds.
	Kind() string
	// Dependencies lists the same-kind objects this one waits for (Kustomization, HelmRelease).
	Dependencies(namespace string) []Ref
	validate() error
	build(t *Target) (client.Object, error)
}

// Ref names a Flux object of a known kind in one cluster.
type Ref struct {
	Kind, Namespace, Name string
}

// String names the object as "Kind/namespace/name", the form cycles are reported in.
func (r Ref) String() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// Decode reads raw (a resource's config) as the settings of kind and validates them. Unknown
// keys are rejected, so a typo is reported instead of ignored. Every problem is a *FieldError.
func Decode(kind string, raw json.RawMessage) (Spec, error) {
	s, err := newSpec(kind)
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(raw, s); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeStrict decodes a JSON object into v, rejecting unknown keys and trailing data, and
// turns decoding errors into FieldErrors under "config".
func decodeStrict(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage(`{}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("config", "must be a single JSON object")
	}
	return nil
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := "config"
		if te.Field != "" {
			field += "." + te.Field
		}
		return fieldErr(field, "must be %s, got a JSON %s", jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return fieldErr("config", "invalid JSON at byte %d: %v", se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldErr("config."+name, "unknown setting")
	}
	return fieldErr("config", "%v", err)
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int32", "int64", "uint", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return goKind
}

// Build returns the Flux object for spec at target: name, namespace, fluxbridge labels and
// event annotations, suspension, and the spec. Its TypeMeta is set, ready for server-side apply.
func Build(spec Spec, t *Target) (client.Object, error) {
	obj, err := spec.build(t)
	if err != nil {
		return nil, err
	}
	obj.SetName(t.Name)
	obj.SetNamespace(t.Namespace)
	obj.SetLabels(t.labels())
	obj.SetAnnotations(t.annotations())
	return obj, nil
}

// oneOf is a helper for enum settings; empty is allowed (the Flux default).
func oneOf(field, v string, allowed ...string) error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return fieldErr(field, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}
