// Package handlers serves fluxbridge's HTTP API: the Flux notification-controller webhook, the
// JSON API and the health and metrics endpoints. A handler checks its input, writes rows and
// enqueues jobs in one transaction, and answers; work with side effects runs in jobs.
package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Deps are what the handlers need.
type Deps struct {
	Store *store.Store
	// River inserts jobs; an insert-only client (no queues) is enough.
	River *river.Client[pgx.Tx]
	// WebhookTokens maps each cluster name to the token of its notification-controller Provider.
	WebhookTokens map[string][]byte
	Metrics       *metrics.Metrics
	Logger        zerolog.Logger
}

// Handler serves every route.
type Handler struct {
	store   *store.Store
	river   *river.Client[pgx.Tx]
	tokens  map[string][]byte
	metrics *metrics.Metrics
	log     zerolog.Logger
}

// New returns a Handler; metrics default to a fresh registry.
func New(d Deps) *Handler {
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	return &Handler{store: d.Store, river: d.River, tokens: d.WebhookTokens, metrics: d.Metrics, log: d.Logger}
}

// httpError is an error whose message is safe to show the caller.
type httpError struct {
	Status int
	Field  string // the input field at fault, if any
	Msg    string
}

func (e *httpError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

func errBadRequest(field, format string, args ...any) *httpError {
	return &httpError{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) *httpError {
	return &httpError{Status: http.StatusNotFound, Msg: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// fail turns err into a response in one place: an *httpError passes its message through, a
// store.ErrNotFound becomes 404, anything else is logged and becomes an opaque 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, store.ErrNotFound):
		he = &httpError{Status: http.StatusNotFound, Msg: err.Error()}
	default:
		hlog.FromRequest(r).Error().Err(err).Msg("request failed")
		he = &httpError{Status: http.StatusInternalServerError, Msg: "internal error; see logs"}
	}
	writeJSON(w, he.Status, errorBody{Error: he.Msg, Field: he.Field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
