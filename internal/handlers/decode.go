package handlers

import (
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
	)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return errBadRequest("", "request body is required: a JSON object")
	case errors.As(err, &tooBig):
		return &httpError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body exceeds %d bytes", maxAPIBodyBytes)}
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
