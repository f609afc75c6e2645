// Package audit builds the details of audit rows: a before/after diff of what a change did,
// with every secret value redacted, so that an audit row can be shown to any reader of the log.
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Redacted replaces every secret value.
const Redacted = "[redacted]"

// secretWords mark a key as holding a secret when its normalized form (lowercase, without
// "_", "-" and ".") contains one of them.
var secretWords = []string{"password", "passwd", "token", "secret", "identity", "privatekey",
	"apikey", "hash", "authorization", "cookie", "credentials"}

// IsSecretKey tells whether values under key must never be shown: keys naming a password,
// token, secret, identity, private key, API key, hash, credentials, cookie or authorization
// header. Keys ending in "id" or "ids" (token_id) name references, not secrets, and are kept.
func IsSecretKey(key string) bool {
	k := strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(key))
	if strings.HasSuffix(k, "id") || strings.HasSuffix(k, "ids") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// looksLikeToken catches API tokens under innocent keys ("value": "fxb_…").
func looksLikeToken(s string) bool { return strings.HasPrefix(s, "fxb_") && len(s) >= 40 }

// Redact returns a copy of v, a decoded JSON value, with the values under secret keys, and
// strings that look like API tokens, replaced by Redacted. A secret key's value is replaced
// whole, whatever its type, even when it is an object.
func Redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if IsSecretKey(k) && val != nil {
				out[k] = Redacted
				continue
			}
			out[k] = Redact(val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = Redact(val)
		}
		return out
	case string:
		if looksLikeToken(t) {
			return Redacted
		}
	}
	return v
}

// Details returns the details object of an audit row: {"before": …, "after": …} holding only
// the fields that differ, recursively, plus the extra keys. A nil before (a creation) or after
// (a deletion) is null and the other side appears whole. Values are first turned into JSON, so
// structs appear under their json names; everything is redacted after diffing, so a changed
// secret shows as changed without showing either value.
func Details(before, after any, extra map[string]any) (json.RawMessage, error) {
	b, err := normalize(before)
	if err != nil {
		return nil, fmt.Errorf("audit before: %w", err)
	}
	a, err := normalize(after)
	if err != nil {
		return nil, fmt.Errorf("audit after: %w", err)
	}
	out := map[string]any{}
	for k, v := range extra {
		n, err := normalize(v)
		if err != nil {
			return nil, fmt.Errorf("audit detail %s: %w", k, err)
		}
		out[k] = n
	}
	if b != nil || a != nil {
		db, da, _ := diff(b, a)
		out["before"], out["after"] = db, da
	}
	raw, err := json.Marshal(Redact(out))
	if err != nil {
		return nil, fmt.Errorf("encode audit details: %w", err)
	}
	return raw, nil
}

// normalize turns v into its decoded JSON form (maps, slices, json.Number, strings, bools).
func normalize(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// diff returns the parts of b and a that differ. Two objects are compared key by key, and a
// key present on one side only appears on that side; anything else differs as a whole.
func diff(b, a any) (any, any, bool) {
	bm, bok := b.(map[string]any)
	am, aok := a.(map[string]any)
	if !bok || !aok {
		if reflect.DeepEqual(b, a) {
			return nil, nil, false
		}
		return b, a, true
	}
	db, da := map[string]any{}, map[string]any{}
	for k, bv := range bm {
		av, ok := am[k]
		if !ok {
			db[k] = bv
			continue
		}
		if x, y, changed := diff(bv, av); changed {
			db[k], da[k] = x, y
		}
	}
	for k, av := range am {
		if _, ok := bm[k]; !ok {
			da[k] = av
		}
	}
	return db, da, len(db) > 0 || len(da) > 0
}
