package handlers

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// The console (internal/console) is the second face of the typed core the JSON API calls:
// Overview, ResourceDetail, LiveYAML, Reconcile, SetSuspended, PreviewDeploy, Deploy and
// Failure are the same functions the API handlers adapt to JSON. Its pages are mounted here,
// each behind the same authentication and the same policy action as an API route, so that one
// table authorizes both.

// PageRoute is one console route and the policy action that guards it; a route with Public set
// needs no sign-in (the sign-in page, static files) and has no scope.
type PageRoute struct {
	Method  string
	Pattern string // chi pattern from the root; {project} and {env} resolve as in the API
	Action  string // policy action; "" only with Public
	Public  bool
	Handler http.HandlerFunc
}

// Pages serves the console: its routes, and how it answers a browser that is not signed in and
// a refused request (a page, not JSON).
type Pages interface {
	PageRoutes() []PageRoute
	// SignInRequired answers a request without a valid session (a redirect to the sign-in
	// page); reason is why the credentials it had were refused, if any.
	SignInRequired(w http.ResponseWriter, r *http.Request, reason string)
	// Fail renders a refused or failed request.
	Fail(w http.ResponseWriter, r *http.Request, f Failure)
}

// mountPages adds the console's routes to r.
func (h *Handler) mountPages(r chi.Router, pages Pages) {
	fail := func(w http.ResponseWriter, r *http.Request, err error) { pages.Fail(w, r, h.Failure(r, err)) }
	for _, rt := range pages.PageRoutes() {
		if rt.Public {
			r.With(h.optionalAuth).Method(rt.Method, rt.Pattern, rt.Handler)
			continue
		}
		r.With(h.pageAuth(pages), h.scopeWith(rt.Action, fail)).Method(rt.Method, rt.Pattern, rt.Handler)
	}
}

// pageAuth is authenticate for pages: no or invalid credentials send the browser to sign in.
func (h *Handler) pageAuth(pages Pages) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := h.authn.Authenticate(r)
			var ce *auth.CredentialError
			switch {
			case err == nil && p != nil:
				next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
			case errors.Is(err, auth.ErrNoCredentials):
				pages.SignInRequired(w, r, "")
			case errors.As(err, &ce):
				pages.SignInRequired(w, r, ce.Reason)
			default:
				pages.Fail(w, r, h.Failure(r, err))
			}
		})
	}
}

// optionalAuth puts the caller's principal in the context when they have valid credentials, and
// lets the request through either way (the sign-in page shows who is signed in).
func (h *Handler) optionalAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, err := h.authn.Authenticate(r); err == nil && p != nil {
			r = r.WithContext(auth.NewContext(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// Can tells whether the scope's principal may perform action in its project, in env when not
// nil (a resource's environment): what the console asks to show a button or disable it with
// the reason.
func (h *Handler) Can(sc *Scope, action string, env *store.Environment) error {
	t := sc.target()
	if env != nil {
		cfg, err := policy.ParseEnvConfig(env.GitopsConfig)
		if err != nil {
			return err
		}
		t.Env = &policy.Env{Name: env.Name, Kind: env.Kind, Config: cfg}
	}
	return policy.Authorize(action, sc.subject(), t)
}

// Store is the store the core reads, for the console's own read-only queries.
func (h *Handler) Store() *store.Store { return h.store }

// BadRequest is the 400 of a bad query parameter or form field, for the console's own reads:
// the same answer the API gives.
func BadRequest(field, msg string) error { return errBadRequest(field, "%s", msg) }
