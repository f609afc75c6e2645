package fluxspec

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeBuild: no config makes Decode or Build panic; a refused config is a *FieldError;
// an accepted one builds an object of its kind with the target's name.
func FuzzDecodeBuild(f *testing.F) {
	for i, seed := range []string{
		`{"url":"https://git.example.com/x.git","ref":{"branch":"main"},"interval":"1m"}`,
		`{"sourceRef":{"kind":"GitRepository","name":"x"},"path":"./apps","prune":true,"interval":"5m"}`,
		`{"chart":{"spec":{"chart":"podinfo","version":"6.x","sourceRef":{"kind":"HelmRepository","name":"x"}}},"interval":"10m"}`,
		`{"url":"https://charts.example.com","interval":"1h"}`,
		`{}`, `{"interval":"forever"}`, `null`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, k uint8, raw []byte) {
		kind := Kinds[int(k)%len(Kinds)]
		spec, err := Decode(kind, json.RawMessage(raw))
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%s: refusal is not a *FieldError: %v", kind, err)
			}
			return
		}
		obj, err := Build(spec, &Target{Namespace: "flux-system", Name: "x", Cluster: "c", ResourceID: 1, Project: "p", Environment: "dev"})
		if err != nil {
			return // a spec needing what this target lacks (a repository) is refused, not a panic
		}
		if obj.GetName() != "x" || obj.GetObjectKind().GroupVersionKind().Kind != spec.Kind() {
			t.Fatalf("%s built %s %s", kind, obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
		}
	})
}
