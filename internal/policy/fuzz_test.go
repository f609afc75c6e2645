package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzEnvConfig: no document or merge patch makes ParseEnvConfig or MergeConfig panic; a
// refused document is a *ConfigError naming a field; a merge result is a JSON object, and an
// empty patch changes nothing.
func FuzzEnvConfig(f *testing.F) {
	f.Add([]byte(`{"requiredApprovals":2,"approvalTTL":"72h","deployRoles":["maintainer"]}`), []byte(`{"requiredApprovals":1}`))
	f.Add([]byte(`{"syncPolicy":"manual","path":"clusters/prod"}`), []byte(`{"path":null}`))
	f.Add([]byte(``), []byte(`{}`))
	f.Add([]byte(`[]`), []byte(`null`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		if _, err := ParseEnvConfig(doc); err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field == "" {
				t.Fatalf("refusal without a field: %v", err)
			}
		}
		merged, err := MergeConfig(doc, patch)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(merged, &m) != nil || m == nil {
			t.Fatalf("merge result is not a JSON object: %s", merged)
		}
		same, err := MergeConfig(merged, []byte(`{}`))
		if err != nil {
			t.Fatalf("re-merging the result failed: %v", err)
		}
		var a, b any
		_ = json.Unmarshal(merged, &a)
		_ = json.Unmarshal(same, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("an empty patch changed %s into %s", merged, same)
		}
	})
}
