package handlers

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// reqScope is what a request is about and who asks, resolved once before its handler runs and
// authorized against the policy table: the action, the principal and their role in the
// project named in the URL, the project, environment and user named in the URL.
type reqScope struct {
	Action    string
	Principal *auth.Principal
	Role      policy.Role // the principal's role in Project; None outside a project or for a non-member
	Project   *store.Project
	Env       *store.Environment
	EnvConfig policy.EnvConfig // Env's access settings
	User      *store.User      // the {user} URL parameter

	audits int // audit rows written by mutate
}

type scopeKey struct{}

// scope resolves the {project} and {env} URL parameters (404 when they name nothing), then
// asks the policy whether the principal may perform action there (403 naming the action, the
// resource, the required role and the caller's role when not), then resolves {user}. It is the
// one place where authorization happens. After a mutating route's handler, it checks that the call wrote its
// audit row.
func (h *Handler) scope(action string) func(http.Handler) http.Handler {
	return h.scopeWith(action, h.fail)
}

// scopeWith is scope answering its refusals through fail (a console page renders them).
func (h *Handler) scopeWith(action string, fail func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc, err := h.resolve(r, action)
			if err == nil {
				err = policy.Authorize(action, sc.subject(), sc.target())
			}
			if err == nil {
				err = h.resolveUser(r, sc)
			}
			if err != nil {
				fail(w, r, err)
				return
			}
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc)))
			if r.Method != http.MethodGet && ww.Status() < 300 && sc.audits != 1 {
				hlog.FromRequest(r).Error().Str("action", action).Int("audit_rows", sc.audits).
					Msg("mutating call answered without exactly one audit row; use h.mutate")
			}
		})
	}
}

func (h *Handler) resolve(r *http.Request, action string) (*reqScope, error) {
	ctx, db := r.Context(), h.store.Pool()
	sc := &reqScope{Action: action, Principal: auth.FromContext(ctx)}
	if sc.Principal == nil { // the /api router authenticates first; never trust a gap
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "authentication required"}
	}
	if slug := chi.URLParam(r, "project"); slug != "" {
		p, err := h.store.ProjectBySlug(ctx, db, slug)
		if err != nil {
			return nil, err
		}
		sc.Project = p
		role, err := h.store.MemberRole(ctx, db, p.ID, sc.Principal.UserID)
		if err != nil {
			return nil, err
		}
		sc.Role, _ = policy.ParseRole(role)
		if name := chi.URLParam(r, "env"); name != "" {
			e, err := h.store.EnvironmentByName(ctx, db, p.ID, name)
			if err != nil {
				return nil, err
			}
			sc.Env = e
			sc.EnvConfig, err = policy.ParseEnvConfig(e.GitopsConfig)
			// Access settings that do not parse (written around the API) fail closed; an admin
			// may still repair them with an update.
			if err != nil && !(sc.Principal.Admin && action == "environment.update") {
				return nil, errConflict("environment %q has invalid access settings (%v); an admin must repair its gitops_config", e.Name, err)
			}
		}
	}
	return sc, nil
}

// resolveUser resolves the {user} URL parameter. It runs after authorization, which does not
// depend on it, so that nobody but those allowed can probe which usernames exist.
func (h *Handler) resolveUser(r *http.Request, sc *reqScope) error {
	username := chi.URLParam(r, "user")
	if username == "" {
		return nil
	}
	u, err := h.store.UserByUsername(r.Context(), h.store.Pool(), username)
	if err != nil {
		return err
	}
	sc.User = u
	return nil
}

func (sc *reqScope) subject() policy.Subject {
	return policy.Subject{Username: sc.Principal.Username, Admin: sc.Principal.Admin, Role: sc.Role}
}

func (sc *reqScope) target() policy.Target {
	var t policy.Target
	if sc.Project != nil {
		t.Project = sc.Project.Slug
	}
	if sc.Env != nil {
		t.Env = &policy.Env{Name: sc.Env.Name, Kind: sc.Env.Kind, Config: sc.EnvConfig}
	}
	return t
}

// Scope is a request's resolved and authorized scope, as the console reads it.
type Scope = reqScope

// ScopeOf returns the scope the route's policy action resolved, or nil outside a scoped route.
func ScopeOf(r *http.Request) *Scope { return scopeOf(r) }

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

// envID is the scoped environment's ID, or nil.
func (sc *reqScope) envID() *int64 {
	if sc.Env == nil {
		return nil
	}
	return &sc.Env.ID
}
