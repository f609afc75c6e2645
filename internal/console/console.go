// Package console serves fluxbridge's web console: server-rendered pages over the same typed
// core the JSON API calls (handlers.Handler's Overview, ResourceDetail, Reconcile, Deploy, …),
// never the API over HTTP. Every page route names a policy action, mounted by the handlers'
// router behind the same authentication and authorization as the API. Templates and static
// files come from package web, parsed once at startup: a missing template fails boot.
package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/web"
)

// contentSecurityPolicy allows nothing inline and nothing from elsewhere: scripts, styles,
// images and the event stream come from fluxbridge itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Deps are what the console needs.
type Deps struct {
	Core     *handlers.Handler
	Sessions *auth.Sessions
	Logger   zerolog.Logger
	// Now is the clock relative times are shown against; default time.Now.
	Now func() time.Time
}

// Console serves the pages.
type Console struct {
	core     *handlers.Handler
	store    *store.Store
	sessions *auth.Sessions
	log      zerolog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	static   map[string]staticFile // by name
	byHash   map[string]staticFile // by hashed path
}

type staticFile struct {
	name, hashed, ctype string
	body                []byte
}

// pageFiles are the templates, each parsed with layout.html (and deploy.html's fields for the
// form's siblings).
var pageFiles = []string{"error", "signin", "password", "projects", "overview", "resource", "deploy", "preview", "deployment", "events", "approvals", "approval", "deployments", "audit", "templates", "environments", "repositories", "tokens", "users", "history", "rollback", "clusters", "members", "notifications"}

// New parses the templates and hashes the static files.
func New(d Deps) (*Console, error) {
	c := &Console{core: d.Core, store: d.Core.Store(), sessions: d.Sessions, log: d.Logger, now: d.Now,
		pages: map[string]*template.Template{}, static: map[string]staticFile{}, byHash: map[string]staticFile{}}
	if c.now == nil {
		c.now = time.Now
	}
	if err := fs.WalkDir(web.Static, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.Static, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := path.Base(p)
		f := staticFile{name: name, hashed: "/static/" + hex.EncodeToString(sum[:6]) + "/" + name, ctype: contentType(name), body: b}
		c.static[name], c.byHash[f.hashed] = f, f
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read static files: %w", err)
	}
	funcs := c.funcs()
	for _, name := range pageFiles {
		t, err := template.New(name).Funcs(funcs).ParseFS(web.Templates, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// PageRoutes implements handlers.Pages: every console route with its policy action. Pages
// (not fragments) read the change feed's mark before their data, so that their event stream
// starts exactly where the page's data ends.
func (c *Console) PageRoutes() []handlers.PageRoute {
	routes := c.routes()
	for i, rt := range routes {
		if rt.Method == http.MethodGet && !rt.Public && !strings.HasSuffix(rt.Pattern, "/row") &&
			!strings.HasSuffix(rt.Pattern, "/header") && !strings.HasSuffix(rt.Pattern, "/progress") && !strings.HasSuffix(rt.Pattern, "/list") && !strings.HasSuffix(rt.Pattern, "/body") && !strings.HasSuffix(rt.Pattern, "/counts") {
			routes[i].Handler = c.markFeed(rt.Handler)
		}
	}
	return routes
}

type feedKey struct{}

// markFeed notes the change feed's position before the page reads its data.
func (c *Console) markFeed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if seq, err := feed.Latest(r.Context(), c.store.Pool()); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), feedKey{}, seq))
		}
		next(w, r)
	}
}

func (c *Console) routes() []handlers.PageRoute {
	const get, post = http.MethodGet, http.MethodPost
	return []handlers.PageRoute{
		{Method: get, Pattern: "/static/{hash}/{name}", Public: true, Handler: c.serveStatic},
		{Method: get, Pattern: "/signin", Public: true, Handler: c.signInPage},
		{Method: post, Pattern: "/signin", Public: true, Handler: c.signIn},
		{Method: get, Pattern: "/password/{token}", Public: true, Handler: c.passwordPage},
		{Method: post, Pattern: "/password/{token}", Public: true, Handler: c.setPassword},
		{Method: post, Pattern: "/signout", Action: "user.me", Handler: c.signOut},

		{Method: get, Pattern: "/", Action: "project.list", Handler: c.projects},
		{Method: get, Pattern: "/projects/{project}", Action: "resource.list", Handler: c.overview},
		{Method: get, Pattern: "/projects/{project}/events", Action: "event.stream", Handler: c.events},
		{Method: get, Pattern: "/projects/{project}/resources/{id}", Action: "resource.get", Handler: c.resource},
		{Method: get, Pattern: "/projects/{project}/resources/{id}/row", Action: "resource.get", Handler: c.resourceRow},
		{Method: get, Pattern: "/projects/{project}/resources/{id}/header", Action: "resource.get", Handler: c.resourceHeader},
		{Method: post, Pattern: "/projects/{project}/resources/{id}/reconcile", Action: "resource.reconcile", Handler: c.reconcile},
		{Method: post, Pattern: "/projects/{project}/resources/{id}/suspend", Action: "resource.suspend", Handler: c.suspend},
		{Method: post, Pattern: "/projects/{project}/resources/{id}/resume", Action: "resource.resume", Handler: c.resume},
		{Method: get, Pattern: "/projects/{project}/environments/{env}/deploy", Action: "deployment.create", Handler: c.deployPage},
		{Method: post, Pattern: "/projects/{project}/environments/{env}/deploy/preview", Action: "deployment.preview", Handler: c.deployPreview},
		{Method: post, Pattern: "/projects/{project}/environments/{env}/deploy", Action: "deployment.create", Handler: c.deploy},
		{Method: post, Pattern: "/projects/{project}/environments/{env}/deploy/template", Action: "template.create", Handler: c.saveTemplate},
		{Method: get, Pattern: "/projects/{project}/templates", Action: "template.list", Handler: c.templates},
		{Method: get, Pattern: "/projects/{project}/environments", Action: "environment.list", Handler: c.environments},
		{Method: get, Pattern: "/projects/{project}/repositories", Action: "repository.list", Handler: c.repositories},
		{Method: get, Pattern: "/projects/{project}/repositories/list", Action: "repository.list", Handler: c.repositoriesList},
		{Method: post, Pattern: "/projects/{project}/repositories", Action: "repository.create", Handler: c.connectRepository},
		{Method: post, Pattern: "/projects/{project}/repositories/{id}/validate", Action: "repository.validate", Handler: c.validateRepository},
		{Method: post, Pattern: "/projects/{project}/repositories/{id}/credentials", Action: "repository.rotate_credentials", Handler: c.rotateCredentials},
		{Method: post, Pattern: "/projects/{project}/environments/{env}/settings", Action: "environment.update", Handler: c.environmentSettings},
		{Method: post, Pattern: "/projects/{project}/templates/{name}/delete", Action: "template.delete", Handler: c.deleteTemplate},
		{Method: get, Pattern: "/projects/{project}/environments/{env}/apps/{app}/history", Action: "deployment.list", Handler: c.history},
		{Method: get, Pattern: "/projects/{project}/environments/{env}/apps/{app}/rollback", Action: "deployment.rollback", Handler: c.rollbackConfirm},
		{Method: post, Pattern: "/projects/{project}/environments/{env}/apps/{app}/rollback", Action: "deployment.rollback", Handler: c.rollback},
		{Method: post, Pattern: "/projects/{project}/environments/{env}/apps/{app}/unlock", Action: "deployment.unlock", Handler: c.unlock},
		{Method: get, Pattern: "/projects/{project}/deployments", Action: "deployment.list", Handler: c.deployments},
		{Method: get, Pattern: "/projects/{project}/deployments/list", Action: "deployment.list", Handler: c.deploymentsList},
		{Method: get, Pattern: "/projects/{project}/deployments/{id}", Action: "deployment.get", Handler: c.deployment},
		{Method: get, Pattern: "/projects/{project}/deployments/{id}/progress", Action: "deployment.get", Handler: c.deploymentProgress},
		{Method: get, Pattern: "/projects/{project}/deployments/{id}/diff", Action: "deployment.get", Handler: c.deploymentDiff},
		{Method: get, Pattern: "/projects/{project}/members", Action: "member.list", Handler: c.members},
		{Method: post, Pattern: "/projects/{project}/members", Action: "member.set", Handler: c.setMember},
		{Method: post, Pattern: "/projects/{project}/members/{user}/role", Action: "member.set", Handler: c.setMember},
		{Method: post, Pattern: "/projects/{project}/members/{user}/remove", Action: "member.remove", Handler: c.removeMember},
		{Method: get, Pattern: "/projects/{project}/audit", Action: "audit.list", Handler: c.audit},
		{Method: get, Pattern: "/projects/{project}/audit.csv", Action: "audit.list", Handler: c.auditCSV},
		{Method: get, Pattern: "/approvals", Action: "user.me", Handler: c.inbox},
		{Method: get, Pattern: "/approvals/list", Action: "user.me", Handler: c.inboxList},
		{Method: get, Pattern: "/counts", Action: "user.me", Handler: c.headerCounts},
		{Method: get, Pattern: "/notifications", Action: "notification.mine", Handler: c.notifications},
		{Method: get, Pattern: "/notifications/list", Action: "notification.mine", Handler: c.notificationsList},
		{Method: post, Pattern: "/notifications/read", Action: "notification.read", Handler: c.markRead},
		{Method: get, Pattern: "/tokens", Action: "token.list", Handler: c.tokens},
		{Method: get, Pattern: "/admin/users", Action: "user.list", Handler: c.users},
		{Method: get, Pattern: "/clusters", Action: "cluster.list", Handler: c.clusters},
		{Method: post, Pattern: "/admin/users", Action: "user.create", Handler: c.createUser},
		{Method: post, Pattern: "/admin/users/{user}/disable", Action: "user.update", Handler: c.disableUser},
		{Method: post, Pattern: "/admin/users/{user}/enable", Action: "user.update", Handler: c.enableUser},
		{Method: post, Pattern: "/admin/users/{user}/password-link", Action: "user.password_link", Handler: c.passwordLink},
		{Method: post, Pattern: "/tokens", Action: "token.create", Handler: c.createToken},
		{Method: post, Pattern: "/tokens/{id}/revoke", Action: "token.revoke", Handler: c.revokeToken},
		{Method: get, Pattern: "/admin/users/{user}/tokens", Action: "user.token_list", Handler: c.tokens},
		{Method: post, Pattern: "/admin/users/{user}/tokens", Action: "user.token_create", Handler: c.createToken},
		{Method: post, Pattern: "/admin/users/{user}/tokens/{id}/revoke", Action: "user.token_revoke", Handler: c.revokeToken},
		{Method: get, Pattern: "/projects/{project}/approvals/{id}", Action: "approval.get", Handler: c.approval},
		{Method: get, Pattern: "/projects/{project}/approvals/{id}/body", Action: "approval.get", Handler: c.approvalBody},
		{Method: post, Pattern: "/projects/{project}/approvals/{id}/approve", Action: "approval.approve", Handler: c.approve},
		{Method: post, Pattern: "/projects/{project}/approvals/{id}/reject", Action: "approval.reject", Handler: c.reject},
	}
}

// SignInRequired implements handlers.Pages: to the sign-in page, coming back here after.
func (c *Console) SignInRequired(w http.ResponseWriter, r *http.Request, reason string) {
	if r.Method != http.MethodGet || r.Header.Get("Accept") == "text/html" && r.Header.Get("Sec-Fetch-Mode") == "cors" {
		c.Fail(w, r, handlers.Failure{Status: http.StatusUnauthorized, Msg: "sign in first" + reasonSuffix(reason)})
		return
	}
	q := url.Values{"next": {r.URL.RequestURI()}}
	if reason != "" {
		q.Set("reason", reason)
	}
	http.Redirect(w, r, "/signin?"+q.Encode(), http.StatusSeeOther)
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// errorPage is what error.html shows.
type errorPage struct {
	Title  string
	Msg    string
	Denied any
}

// Fail implements handlers.Pages: the failure as a page with its status; a denial names the
// action, the role it needs and the caller's role.
func (c *Console) Fail(w http.ResponseWriter, r *http.Request, f handlers.Failure) {
	title := http.StatusText(f.Status)
	if f.Status == http.StatusForbidden {
		title = "Not allowed"
	}
	msg := f.Msg
	if f.Field != "" {
		msg = f.Field + ": " + msg
	}
	p := errorPage{Title: title, Msg: msg}
	if f.Denied != nil {
		p.Denied = f.Denied
	}
	c.render(w, r, f.Status, "error", p)
}

// view is what every page template gets: the signed-in user, the project in scope, a flash
// message and the page's own data.
type view struct {
	User    *auth.Principal
	Project *store.Project
	Flash   *flash
	Data    any
	// FeedFrom is the change feed's position when the page read its data (-1: unknown).
	FeedFrom int64
	// Inbox is how many approval requests wait on the user.
	Inbox int
	// Unread is how many notifications the user has not read.
	Unread int
	// Self is the page's own URL: what a live section of it re-reads (data-fragment).
	Self string
}

type flash struct{ Kind, Text string }

const flashCookie = "fluxbridge_flash"

// setFlash leaves a one-line message for the next page (POST-redirect-GET).
func setFlash(w http.ResponseWriter, kind, text string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + "|" + text), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 60})
}

func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	if r.Header.Get("X-Fluxbridge-Fragment") != "" {
		return nil // a live update re-reading the page: the flash is for the next page the person opens
	}
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	v, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return nil
	}
	kind, text, ok := strings.Cut(v, "|")
	if !ok || (kind != "ok" && kind != "error") || len(text) > 500 {
		return nil
	}
	return &flash{Kind: kind, Text: text}
}

// securityHeaders are set on every page and fragment.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// render executes page's layout into a buffer first, so that a template error becomes a 500
// and never half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	v := view{User: auth.FromContext(r.Context()), Data: data, Flash: takeFlash(w, r), FeedFrom: -1, Self: r.URL.RequestURI()}
	if seq, ok := r.Context().Value(feedKey{}).(int64); ok {
		v.FeedFrom = seq
	}
	if sc := handlers.ScopeOf(r); sc != nil {
		v.Project = sc.Project
	}
	if v.User != nil {
		v.Inbox, v.Unread = c.counts(r)
	}
	c.execute(w, r, status, page, "layout", v)
}

// counts are the header's: approval requests waiting on the user, unread notifications.
func (c *Console) counts(r *http.Request) (inbox, unread int) {
	p := auth.FromContext(r.Context())
	if items, err := c.core.ApprovalInbox(r.Context(), p); err == nil {
		inbox = len(items)
	} else {
		hlog.FromRequest(r).Warn().Err(err).Msg("count approvals waiting")
	}
	unread, err := c.core.UnreadNotifications(r.Context(), p)
	if err != nil {
		hlog.FromRequest(r).Warn().Err(err).Msg("count unread notifications")
	}
	return inbox, unread
}

// headerCounts is the header's counts alone: what a new approval or notification refreshes.
func (c *Console) headerCounts(w http.ResponseWriter, r *http.Request) {
	v := view{User: auth.FromContext(r.Context())}
	v.Inbox, v.Unread = c.counts(r)
	c.fragment(w, r, "notifications", "counts", v)
}

// fragment renders one named template of page alone: what a live update swaps in.
func (c *Console) fragment(w http.ResponseWriter, r *http.Request, page, name string, data any) {
	c.execute(w, r, http.StatusOK, page, name, data)
}

func (c *Console) execute(w http.ResponseWriter, r *http.Request, status int, page, name string, data any) {
	t := c.pages[page]
	var buf bytes.Buffer
	if t == nil {
		hlog.FromRequest(r).Error().Str("page", page).Msg("no such page template")
		http.Error(w, "internal error; see logs", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		hlog.FromRequest(r).Error().Err(err).Str("page", page).Str("template", name).Msg("render page")
		http.Error(w, "internal error; see logs", http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// serveStatic serves a static file under its content-hashed URL, cacheable forever.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := c.byHash[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(f.body)
}

// fail answers err through the core's one error mapping.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.Fail(w, r, c.core.Failure(r, err))
}

// redirect answers a POST with 303 to target (POST-redirect-GET).
func redirect(w http.ResponseWriter, r *http.Request, target string) {
	http.Redirect(w, r, target, http.StatusSeeOther)
}
