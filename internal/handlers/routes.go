package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"
)

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

	// notification-controller generic / generic-hmac Provider address.
	r.Post("/hooks/flux/{cluster}", h.fluxEvent)

	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/resources", h.listResources)
		r.Get("/resources/{id}", h.getResource)
		r.Get("/deployments", h.listDeployments)
		r.Get("/deployments/{id}", h.getDeployment)
		r.Get("/repositories", h.listRepositories)
		r.Get("/repositories/{id}", h.getRepository)
		r.Get("/audit", h.listAudit)
		r.Get("/notifications", h.listNotifications)
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
