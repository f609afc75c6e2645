package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxFormBodyBytes caps the body of the repository, template and deploy endpoints.
const maxFormBodyBytes = 1 << 20 // 1 MiB

// readObject reads r's body, capped, as one JSON object keyed by field; a body that is not
// JSON by its Content-Type is a 415, as in decodeJSON.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &httpError{Status: http.StatusUnsupportedMediaType, Msg: "Content-Type must be application/json, got " + ct}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &httpError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body exceeds %d bytes", maxFormBodyBytes)}
	case err != nil:
		return nil, errBadRequest("", "read request body: %v", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, errBadRequest("", "request body must be one JSON object")
	}
	return obj, nil
}

// decodeStrict decodes a JSON value into dst, refusing unknown fields; problems are 400s that
// name the field, prefixed by prefix ("form." → "form.ports").
func decodeStrict(raw []byte, dst any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typ):
		return errBadRequest(prefix+typ.Field, "must be a JSON %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errBadRequest(prefix+strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
	}
	return errBadRequest(strings.TrimSuffix(prefix, "."), "%v", err)
}

func jsonKind(kind string) string {
	switch kind {
	case "string", "bool":
		return kind
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return "number"
}

// mergePatch applies a JSON merge patch (RFC 7396) to a JSON object: patch keys replace doc
// keys, objects merge recursively, null removes a key.
func mergePatch(doc, patch json.RawMessage) (json.RawMessage, error) {
	var d, p map[string]any
	if len(doc) > 0 {
		if err := json.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("merge: document is not a JSON object: %w", err)
		}
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("merge: patch is not a JSON object: %w", err)
	}
	return json.Marshal(mergeMaps(d, p))
}

func mergeMaps(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, pv := range patch {
		switch v := pv.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dv, _ := doc[k].(map[string]any)
			doc[k] = mergeMaps(dv, v)
		default:
			doc[k] = v
		}
	}
	return doc
}

// takeString removes key from obj and returns its string value ("" when absent).
func takeString(obj map[string]json.RawMessage, key string) (string, error) {
	raw, ok := obj[key]
	if !ok {
		return "", nil
	}
	delete(obj, key)
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errBadRequest(key, "must be a JSON string")
	}
	return s, nil
}
