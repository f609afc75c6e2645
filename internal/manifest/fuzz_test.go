package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzRender: no form makes Render panic; a form it refuses is a *FieldError naming a field;
// one it accepts renders the same files again, each a YAML document that parses.
func FuzzRender(f *testing.F) {
	for _, form := range []Form{webForm(), {App: "api", Image: "ghcr.io/acme/api", Tag: "1.0.0"}, {}} {
		raw, _ := json.Marshal(form)
		for i := range Kinds() {
			f.Add(uint8(i), raw)
		}
	}
	f.Add(uint8(1), []byte(`{"app":"x","image":"a/b","tag":"1","replicas":-1,"env":[{"name":"","value":"v"}]}`))
	f.Fuzz(func(t *testing.T, k uint8, raw []byte) {
		var form Form
		if json.Unmarshal(raw, &form) != nil {
			return
		}
		kind := Kinds()[int(k)%len(Kinds())]
		files, err := Render(kind, form, Options{Namespace: "apps", ImagePolicy: "apps:x"})
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal without a field: %v", err)
			}
			return
		}
		again, err := Render(kind, form, Options{Namespace: "apps", ImagePolicy: "apps:x"})
		if err != nil || len(again) != len(files) {
			t.Fatalf("not deterministic: %v", err)
		}
		for i, file := range files {
			if file.Name != again[i].Name || !bytes.Equal(file.Content, again[i].Content) {
				t.Fatalf("%s renders differently twice", file.Name)
			}
			var v any
			if err := yaml.Unmarshal(file.Content, &v); err != nil {
				t.Fatalf("%s is not YAML: %v\n%s", file.Name, err, file.Content)
			}
		}
	})
}
