package handlers

import (
	"net/http"
	"strconv"
	"strings"
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

// apiRoutes lists every JSON API endpoint. Every one is authenticated, then authorized by its
// action in internal/policy; every one that is not a GET changes something through h.mutate,
// which writes its audit row.
func (h *Handler) apiRoutes() []apiRoute {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	return []apiRoute{
		// Identity: who am I, users (admins), API tokens (one's own; admins: anyone's).
		{get, "/me", "user.me", h.me},
		{get, "/users", "user.list", h.listUsers},
		{post, "/users", "user.create", h.createUser},
		{patch, "/users/{user}", "user.update", h.updateUser},
		{post, "/users/{user}/password-link", "user.password_link", h.createPasswordLink},
		{get, "/users/{user}/tokens", "user.token_list", h.listTokens},
		{post, "/users/{user}/tokens", "user.token_create", h.createToken},
		{del, "/users/{user}/tokens/{id}", "user.token_revoke", h.revokeToken},
		{get, "/tokens", "token.list", h.listTokens},
		{post, "/tokens", "token.create", h.createToken},
		{del, "/tokens/{id}", "token.revoke", h.revokeToken},

		// Projects and members.
		{get, "/projects", "project.list", h.listProjects},
		{post, "/projects", "project.create", h.createProject},
		{get, "/projects/{project}", "project.get", h.getProject},
		{patch, "/projects/{project}", "project.update", h.updateProject},
		{get, "/projects/{project}/members", "member.list", h.listMembers},
		{put, "/projects/{project}/members/{user}", "member.set", h.setMember},
		{del, "/projects/{project}/members/{user}", "member.remove", h.removeMember},

		// Environments and deploys.
		{get, "/projects/{project}/environments", "environment.list", h.listEnvironments},
		{post, "/projects/{project}/environments", "environment.create", h.createEnvironment},
		{get, "/projects/{project}/environments/{env}", "environment.get", h.getEnvironment},
		{patch, "/projects/{project}/environments/{env}", "environment.update", h.updateEnvironment},
		{post, "/projects/{project}/environments/{env}/deployments", "deployment.create", h.createDeployment},
		{post, "/projects/{project}/environments/{env}/bootstrap", "environment.bootstrap", h.bootstrapEnvironment},

		// Rollbacks (R11): what an app can be rolled back to, rolling back, the progress.
		{get, "/projects/{project}/environments/{env}/apps/{app}/rollback-targets", "deployment.list", h.listRollbackTargets},
		{post, "/projects/{project}/environments/{env}/apps/{app}/rollback", "deployment.rollback", h.createRollback},
		{post, "/projects/{project}/environments/{env}/apps/{app}/unlock", "deployment.unlock", h.unlockApp},
		{get, "/projects/{project}/environments/{env}/rollbacks/{id}", "deployment.get", h.getRollback},

		// Approvals of held changes.
		{get, "/projects/{project}/approvals", "approval.list", h.listApprovals},
		{get, "/projects/{project}/approvals/{id}", "approval.get", h.getApproval},
		{post, "/projects/{project}/approvals/{id}/approve", "approval.approve", h.approveApproval},
		{post, "/projects/{project}/approvals/{id}/reject", "approval.reject", h.rejectApproval},

		// Reads.
		{get, "/projects/{project}/repositories", "repository.list", h.listRepositories},
		{get, "/projects/{project}/repositories/{id}", "repository.get", h.getRepository},
		{get, "/projects/{project}/resources", "resource.list", h.listResources},
		{get, "/projects/{project}/resources/{id}", "resource.get", h.getResourceDetail},
		{get, "/projects/{project}/deployments", "deployment.list", h.listDeployments},
		{get, "/projects/{project}/deployments/{id}", "deployment.get", h.getDeployment},
		{get, "/projects/{project}/deployments/{id}/diff", "deployment.get", h.getDeploymentDiff},
		{get, "/projects/{project}/audit", "audit.list", h.listAudit},
		{get, "/projects/{project}/notifications", "notification.list", h.listNotifications},
		{get, "/notifications", "notification.mine", h.listMyNotifications},
		{post, "/notifications/read", "notification.read", h.markNotificationsRead},
		{get, "/events/stream", "event.stream_mine", h.userEventStream},
		// The live change feed as Server-Sent Events, resumable with Last-Event-ID.
		{get, "/projects/{project}/events/stream", "event.stream", h.eventStream},

		// UI → Git: repositories, deploy previews and templates.
		{post, "/projects/{project}/repositories", "repository.create", h.createRepository},
		{put, "/projects/{project}/repositories/{id}/gitops", "repository.update", h.setGitops},
		{put, "/projects/{project}/repositories/{id}/credentials", "repository.rotate_credentials", h.rotateCredentials},
		{post, "/projects/{project}/repositories/{id}/validate", "repository.validate", h.validateRepository},
		{post, "/projects/{project}/environments/{env}/deployments/preview", "deployment.preview", h.previewDeploy},
		{get, "/projects/{project}/templates", "template.list", h.listTemplates},
		{post, "/projects/{project}/templates", "template.create", h.createTemplate},
		{get, "/projects/{project}/templates/{name}", "template.get", h.getTemplate},
		{del, "/projects/{project}/templates/{name}", "template.delete", h.deleteTemplate},

		// GitOps resources → Flux objects: changes, flux reconcile / suspend / resume, views.
		{post, "/projects/{project}/resources", "resource.create", h.createResource},
		{post, "/projects/{project}/resources/import", "resource.import", h.importResource},
		{put, "/projects/{project}/resources/{id}", "resource.update", h.updateResource},
		{del, "/projects/{project}/resources/{id}", "resource.delete", h.deleteResource},
		{post, "/projects/{project}/resources/{id}/reconcile", "resource.reconcile", h.reconcileResource},
		{get, "/projects/{project}/resources/{id}/reconciles", "resource.get", h.listReconciles},
		{post, "/projects/{project}/resources/{id}/suspend", "resource.suspend", h.suspendResource},
		{post, "/projects/{project}/resources/{id}/resume", "resource.resume", h.resumeResource},
		{get, "/projects/{project}/resources/{id}/yaml", "resource.get", h.getResourceYAML},
		{get, "/projects/{project}/resources/{id}/history", "resource.get", h.listHistory},
		{get, "/projects/{project}/overview", "resource.list", h.projectOverview},
		{get, "/projects/{project}/export", "resource.export", h.exportResources},
		{get, "/projects/{project}/environments/{env}/resources", "resource.list", h.listEnvResources},
		{post, "/projects/{project}/environments/{env}/resources", "resource.create", h.createResource},
		{get, "/projects/{project}/environments/{env}/export", "resource.export", h.exportResources},

		// Across projects, grouped by cluster: for platform admins.
		{get, "/resources", "resource.list_all", h.listResources},
		{get, "/audit", "audit.list_all", h.listAudit},
		{get, "/clusters", "cluster.list", h.listClusters},
		{get, "/clusters/{cluster}/discovered", "cluster.discovered", h.listDiscovered},
	}
}

// Routes returns the receiver's router with every route and the shared middleware, and the
// console's pages when pages is not nil.
func (h *Handler) Routes(pages ...Pages) chi.Router { return h.router(h.apiRoutes(), pages...) }

// router mounts api under /api/v1 next to the webhook, health and metrics routes and the pages.
// Every state-changing request from a browser must come from our own origin
// (http.CrossOriginProtection: Sec-Fetch-Site, then Origin against Host); API clients that send
// neither header (curl, controllers) pass, and a session cookie never rides a cross-site form.
func (h *Handler) router(api []apiRoute, pages ...Pages) chi.Router {
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
		h.crossOrigin,
		h.refuseNUL,
	)

	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	r.Method(http.MethodGet, "/metrics", h.metrics.Handler())

	// notification-controller generic / generic-hmac Provider address; authenticated by the
	// cluster's token, not by API credentials.
	r.Post("/hooks/flux/{cluster}", h.fluxEvent)

	// Everything under /api is authenticated first, unknown paths included: an anonymous
	// caller gets 401 and learns nothing about which routes exist.
	r.Route("/api", func(r chi.Router) {
		r.Use(h.authenticate)
		r.Route("/v1", func(r chi.Router) {
			for _, rt := range api {
				r.With(h.scope(rt.Action)).Method(rt.Method, rt.Pattern, rt.Handler)
			}
			r.NotFound(h.notFound)
			r.MethodNotAllowed(h.methodNotAllowed)
		})
		r.NotFound(h.notFound)
		r.MethodNotAllowed(h.methodNotAllowed)
	})
	for _, p := range pages {
		h.mountPages(r, p)
	}
	r.NotFound(h.notFound)
	r.MethodNotAllowed(h.methodNotAllowed)
	return r
}

// crossOrigin refuses cross-origin state-changing browser requests with 403 (CSRF), except the
// Flux webhook, which senders call from anywhere with their own signature.
func (h *Handler) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST /hooks/flux/{cluster}")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.metrics.Refused("cross_origin")
		hlog.FromRequest(r).Warn().Str("origin", r.Header.Get("Origin")).Str("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")).
			Msg("cross-origin request refused")
		h.fail(w, r, &httpError{Status: http.StatusForbidden, Msg: "cross-origin request refused: state-changing requests must come from fluxbridge's own pages"})
	}))
	return cop.Handler(next)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, errNotFound("no route %s %s", r.Method, r.URL.Path))
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, &httpError{Status: http.StatusMethodNotAllowed, Msg: "method " + r.Method + " not allowed on " + r.URL.Path})
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
		// An event stream lasts as long as its page is open: its duration is no latency.
		if !strings.HasSuffix(route, "/events/stream") {
			h.metrics.HTTPDuration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		}
	})
}
