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

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
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
	// Authenticator identifies API callers; nil means API tokens from the store. An OIDC or
	// session authenticator joins the tokens in an auth.Chain.
	Authenticator auth.Authenticator
	// Git reads repositories for previews and validation (never pushes: jobs do); its cache
	// directory must not be shared with another Writer. Nil disables those endpoints.
	Git *gitops.Writer
	// Secrets stores repository credentials; nil refuses repositories with auth.
	Secrets secrets.Store
	// Committer is the bot identity of the commits fluxbridge (and the image automation it
	// sets up) makes; default fluxbridge <bot@fluxbridge.local>.
	Committer gitops.Signature
	// Clusters are the managed clusters, for validation and the live views; optional.
	Clusters *cluster.Registry
	// Feed fans the change feed out to event streams; nil answers them 503.
	Feed *feed.Hub
}

// Handler serves every route.
type Handler struct {
	store     *store.Store
	river     *river.Client[pgx.Tx]
	tokens    map[string][]byte
	metrics   *metrics.Metrics
	log       zerolog.Logger
	authn     auth.Authenticator
	approvals *approval.Service
	git       *gitops.Writer
	secrets   secrets.Store
	clusters  *cluster.Registry
	committer gitops.Signature
	feed      *feed.Hub
	ingester  ingester
}

// New returns a Handler; metrics default to a fresh registry and authentication to API tokens.
func New(d Deps) *Handler {
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	if d.Committer.Email == "" {
		d.Committer = gitops.Signature{Name: "fluxbridge", Email: "bot@fluxbridge.local"}
	}
	if d.Authenticator == nil {
		d.Authenticator = auth.NewTokenAuthenticator(d.Store)
	}
	return &Handler{store: d.Store, river: d.River, tokens: d.WebhookTokens, metrics: d.Metrics, log: d.Logger,
		authn: d.Authenticator, approvals: approval.New(d.Store, d.River), git: d.Git, secrets: d.Secrets,
		clusters: d.Clusters, committer: d.Committer, feed: d.Feed}
}

// httpError is an error whose message is safe to show the caller.
type httpError struct {
	Status int
	Field  string // the input field at fault, if any
	Msg    string
	// Guard names the guard that refused the change, for fluxbridge_refusals_total.
	Guard string
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

func errConflict(format string, args ...any) *httpError {
	return &httpError{Status: http.StatusConflict, Msg: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON body of every error response. A policy denial also names the action,
// the resource, the role it requires and the caller's role (R13.5).
type errorBody struct {
	Error        string `json:"error"`
	Field        string `json:"field,omitempty"`
	Action       string `json:"action,omitempty"`
	Resource     string `json:"resource,omitempty"`
	RequiredRole string `json:"required_role,omitempty"`
	YourRole     string `json:"your_role,omitempty"`
}

// fail turns err into a response in one place: see failure. A policy denial also names the
// action, the resource, the role it requires and the caller's role.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	f := h.Failure(r, err)
	body := errorBody{Error: f.Msg, Field: f.Field}
	if d := f.Denied; d != nil {
		body = errorBody{Error: f.Msg, Action: d.Action, Resource: d.Resource, RequiredRole: d.Required, YourRole: d.Have}
	}
	if f.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, f.Status, body)
}

// Failure is an error as the caller sees it: status, the input field at fault, a message safe
// to show, and for a policy denial its reasons.
type Failure struct {
	Status int
	Field  string
	Msg    string
	Denied *policy.Denied
}

// Failure maps err in one place, for the API and the console alike: an *httpError passes its
// message through, a policy denial becomes 403 with its reasons, a refused approval 403 or
// 409, an invalid gitops_config 400 naming the key, a store.ErrNotFound 404; anything else is
// logged and becomes an opaque 500. Refusals are counted.
func (h *Handler) Failure(r *http.Request, err error) Failure {
	var (
		he     *httpError
		denied *policy.Denied
		cfgErr *policy.ConfigError
	)
	switch {
	case errors.As(err, &he):
	case errors.As(err, &denied):
		hlog.FromRequest(r).Warn().Str("action", denied.Action).Str("resource", denied.Resource).
			Str("have", denied.Have).Msg("permission denied")
		guard := "permission"
		if denied.Action == bootstrapAction {
			guard = "bootstrap_requires_maintainer"
		}
		h.metrics.Refused(guard)
		return Failure{Status: http.StatusForbidden, Msg: denied.Error(), Denied: denied}
	case errors.As(err, &cfgErr):
		he = errBadRequest(cfgErr.Field, "%s", cfgErr.Msg)
	case errors.Is(err, approval.ErrSelfApproval):
		he = &httpError{Status: http.StatusForbidden, Msg: err.Error()}
	case errors.Is(err, approval.ErrNotPending), errors.Is(err, approval.ErrAlreadyVoted),
		errors.Is(err, approval.ErrPendingExists):
		he = errConflict("%s", err.Error())
	case errors.Is(err, store.ErrProposalPending):
		he = &httpError{Status: http.StatusConflict, Msg: err.Error() + "; approve or reject that change first", Guard: "proposal_pending"}
	case errors.Is(err, store.ErrNotFound):
		he = &httpError{Status: http.StatusNotFound, Msg: err.Error()}
	case store.Unavailable(err):
		// Postgres is down or restarting: nothing was stored, and a retry will do (Flux's
		// notification-controller retries a 5xx; Retry-After tells other clients when).
		hlog.FromRequest(r).Warn().Err(err).Msg("database unavailable")
		he = &httpError{Status: http.StatusServiceUnavailable, Msg: "the database is unavailable; nothing was stored, retry shortly"}
	default:
		hlog.FromRequest(r).Error().Err(err).Msg("request failed")
		he = &httpError{Status: http.StatusInternalServerError, Msg: "internal error; see logs"}
	}
	if he.Guard != "" {
		h.metrics.Refused(he.Guard)
	}
	return Failure{Status: he.Status, Field: he.Field, Msg: he.Msg}
}

// refuse marks err (an *httpError) as a refusal by guard, counted when it is answered.
func (h *Handler) refuse(guard string, err *httpError) *httpError {
	err.Guard = guard
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
