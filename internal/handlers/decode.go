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

// maxAPIBodyBytes caps a JSON API request body: 1 MiB, far above any form fluxbridge takes.
const maxAPIBodyBytes = 1 << 20

// decodeJSON reads r's body, capped, as exactly one JSON object into dst, refusing unknown
// fields. Problems are 400s that name the field (or 413, 415), with a message fit for the
// caller.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &httpError{Status: http.StatusUnsupportedMediaType, Msg: "Content-Type must be application/json, got " + ct}
		}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &httpError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body exceeds %d bytes", maxAPIBodyBytes)}
	}
	if err != nil {
		return errBadRequest("", "read request body: %v", err)
	}
	// Postgres text cannot hold NUL: one in any string is a 400 naming where, never a 500.
	// (JSON escapes it only as \u0000: the escape is lowercase and 0 has no case.)
	if bytes.Contains(raw, []byte(`\u0000`)) {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			if path, ok := findNUL(v, ""); ok {
				return errBadRequest(path, "contains a NUL character (\\u0000), which cannot be stored")
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return errBadRequest("", "request body is required: a JSON object")
	case errors.As(err, &syntax):
		return errBadRequest("", "request body is not valid JSON (at byte %d): %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errBadRequest("", "request body must be a JSON object")
		}
		return errBadRequest(typ.Field, "must be a JSON %s, got %s", jsonType(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errBadRequest(field, "unknown field")
	default:
		return errBadRequest("", "request body: %v", err)
	}
	if dec.More() {
		return errBadRequest("", "request body must hold exactly one JSON object")
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return "number"
}

// findNUL returns the path (a.b[2].c) of the first key or string in v holding a NUL character.
func findNUL(v any, path string) (string, bool) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case string:
		return path, strings.IndexByte(x, 0) >= 0
	case []any:
		for i, e := range x {
			if p, ok := findNUL(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return path, true
			}
			if p, ok := findNUL(e, join(k)); ok {
				return p, true
			}
		}
	}
	return "", false
}

// refuseNUL answers 400 to a request whose path, query or form holds a NUL character (%00),
// naming the parameter: Postgres text cannot store one, and a query would fail with a 500.
func (h *Handler) refuseNUL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad := func(field string) {
			h.fail(w, r, errBadRequest(field, "contains a NUL character (%%00), which cannot be stored"))
		}
		if strings.IndexByte(r.URL.Path, 0) >= 0 {
			bad("path")
			return
		}
		if strings.Contains(r.URL.RawQuery, "%00") || strings.IndexByte(r.URL.RawQuery, 0) >= 0 {
			for k, vs := range r.URL.Query() {
				for _, v := range vs {
					if strings.IndexByte(k+v, 0) >= 0 {
						bad(k)
						return
					}
				}
			}
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" && r.Method != http.MethodGet {
			if err := r.ParseForm(); err == nil {
				for k, vs := range r.PostForm {
					for _, v := range vs {
						if strings.IndexByte(k+v, 0) >= 0 {
							bad(k)
							return
						}
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
