package handlers

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// reqScope is what a request is about, resolved once before its handler runs: the policy
// action, and for project routes the project (and environment) named in the URL.
type reqScope struct {
	Action  string
	Project *store.Project // nil on routes outside a project
	Env     *store.Environment
}

type scopeKey struct{}

// scope resolves the {project} and {env} URL parameters (404 when they name nothing) and puts
// the reqScope in the request context. Authorization decides on this scope.
func (h *Handler) scope(action string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc := &reqScope{Action: action}
			if slug := chi.URLParam(r, "project"); slug != "" {
				p, err := h.store.ProjectBySlug(r.Context(), h.store.Pool(), slug)
				if err != nil {
					h.fail(w, r, err)
					return
				}
				sc.Project = p
				if name := chi.URLParam(r, "env"); name != "" {
					e, err := h.store.EnvironmentByName(r.Context(), h.store.Pool(), p.ID, name)
					if err != nil {
						h.fail(w, r, err)
						return
					}
					sc.Env = e
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc)))
		})
	}
}

// scopeOf returns the request's scope; every /api/v1 route has one.
func scopeOf(r *http.Request) *reqScope {
	sc, _ := r.Context().Value(scopeKey{}).(*reqScope)
	if sc == nil {
		return &reqScope{}
	}
	return sc
}

// projectID is the scoped project's ID, or 0 on a cross-project route.
func (sc *reqScope) projectID() int64 {
	if sc.Project == nil {
		return 0
	}
	return sc.Project.ID
}
