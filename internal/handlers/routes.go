package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"
)

// apiRoute is one JSON API endpoint under /api/v1 and the policy action that guards it. Every
// API endpoint is declared here, in one table, so that authorization and audit can be checked
// route by route (a route without a policy entry fails the RBAC matrix test).
type apiRoute struct {
	Method  string
	Pattern string // chi pattern under /api/v1; {project} is a project slug, {env} an environment name
	Action  string // policy action, "<resource>.<verb>"
	Handler http.HandlerFunc
}

// apiRoutes lists every JSON API endpoint.
func (h *Handler) apiRoutes() []apiRoute {
	return []apiRoute{
		{http.MethodGet, "/projects", "project.list", h.listProjects},
		{http.MethodGet, "/projects/{project}", "project.get", h.getProject},
		{http.MethodGet, "/projects/{project}/environments", "environment.list", h.listEnvironments},
		{http.MethodGet, "/projects/{project}/repositories", "repository.list", h.listRepositories},
		{http.MethodGet, "/projects/{project}/repositories/{id}", "repository.get", h.getRepository},
		{http.MethodGet, "/projects/{project}/resources", "resource.list", h.listResources},
		{http.MethodGet, "/projects/{project}/resources/{id}", "resource.get", h.getResource},
		{http.MethodGet, "/projects/{project}/deployments", "deployment.list", h.listDeployments},
		{http.MethodGet, "/projects/{project}/deployments/{id}", "deployment.get", h.getDeployment},
		{http.MethodGet, "/projects/{project}/audit", "audit.list", h.listAudit},
		{http.MethodGet, "/projects/{project}/notifications", "notification.list", h.listNotifications},

		// Across projects, grouped by cluster: for platform admins.
		{http.MethodGet, "/resources", "resource.list_all", h.listResources},
		{http.MethodGet, "/audit", "audit.list_all", h.listAudit},
	}
}

// Routes returns the receiver's router with every route and the shared middleware.
func (h *Handler) Routes() chi.Router {
	r := chi.NewRouter()
	r.Use(
		hlog.NewHandler(h.log),
		hlog.RequestIDHandler("req_id", "Request-Id"),
		hlog.RemoteAddrHandler("ip"),
		hlog.AccessHandler(func(r *http.Request, status, size int, d time.Duration) {
			hlog.FromRequest(r).Info().Str("method", r.Method).Str("path", r.URL.Path).
				Int("status", status).Int("size", size).Dur("duration", d).Msg("request")
		}),
		h.instrument,
		middleware.Recoverer,
	)

	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	r.Method(http.MethodGet, "/metrics", h.metrics.Handler())

	// notification-controller generic / generic-hmac Provider address; authenticated by the
	// cluster's token, not by API credentials.
	r.Post("/hooks/flux/{cluster}", h.fluxEvent)

	r.Route("/api/v1", func(r chi.Router) {
		for _, rt := range h.apiRoutes() {
			r.With(h.scope(rt.Action)).Method(rt.Method, rt.Pattern, rt.Handler)
		}
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, errNotFound("no route %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &httpError{Status: http.StatusMethodNotAllowed, Msg: "method " + r.Method + " not allowed on " + r.URL.Path})
	})
	return r
}

// instrument counts requests and their latency by route pattern (not raw path, which would
// explode label cardinality).
func (h *Handler) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		h.metrics.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
		h.metrics.HTTPDuration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}
