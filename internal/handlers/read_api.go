package handlers

import (
	"net/http"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// page is the body of every list endpoint: the items and, when more may follow, the cursor
// of the next page. Lists newest first page by ID: pass next_before as ?before=. Lists in name
// order page by key: pass next_after as ?after=. Every list takes ?limit= (default
// defaultPageSize, at most maxPageSize).
type page[T any] struct {
	Items      []T    `json:"items"`
	NextBefore *int64 `json:"next_before,omitempty"`
	NextAfter  string `json:"next_after,omitempty"`
}

// pageOf is a page of a newest-first list: a full page has a next_before.
func pageOf[T any](items []T, limit int, id func(T) int64) page[T] {
	p := page[T]{Items: items}
	if len(items) == limit && limit > 0 {
		next := id(items[len(items)-1])
		p.NextBefore = &next
	}
	return p
}

// pageAfter is a page of a list in key order: a full page has a next_after.
func pageAfter[T any](items []T, limit int, key func(T) string) page[T] {
	p := page[T]{Items: items}
	if len(items) == limit && limit > 0 {
		p.NextAfter = key(items[len(items)-1])
	}
	return p
}

var (
	resourceKinds = []string{"GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket",
		"Kustomization", "HelmRelease", "ImageRepository", "ImagePolicy", "ImageUpdateAutomation"}
	resourceStatuses = []string{"unknown", "ready", "reconciling", "failed", "suspended"}
	methods          = []string{store.MethodManual, store.MethodGitopsUI, store.MethodGitopsGit}
	deployStatuses   = []string{store.DeployPending, store.DeployAwaitingApproval, store.DeployPushed,
		store.DeploySucceeded, store.DeployFailed, store.DeployCancelled, store.DeployRejected}
	actorTypes = []string{store.ActorUser, store.ActorToken, store.ActorFlux, store.ActorSystem}
)

// listResources lists GitOps resources with their status, grouped by cluster (the order), paged
// by ?after=cluster/kind/namespace/name.
func (h *Handler) listResources(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	f := store.ResourceFilter{
		ProjectID: scopeOf(r).projectID(), EnvironmentID: p.int64("environment_id"), Cluster: p.str("cluster"),
		Kind: p.oneOf("kind", resourceKinds...), Status: p.oneOf("status", resourceStatuses...),
		After: p.afterRef(true), Limit: p.limit(),
	}
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListResources(r.Context(), h.store.Pool(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resourcePage(items, f.Limit))
}

// resourcePage is a page of resources, whose next_after is the last one's cluster/kind/namespace/name.
func resourcePage(items []store.Resource, limit int) page[store.Resource] {
	return pageAfter(items, limit, func(r store.Resource) string { return refCursor(r.Ref(), true) })
}

// listDeployments lists deployments newest first, filtered and paged by ?before=<id>.
func (h *Handler) listDeployments(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	f := store.DeploymentFilter{
		ProjectID: scopeOf(r).projectID(), EnvironmentID: p.int64("environment_id"), ResourceID: p.int64("resource_id"),
		Method: p.oneOf("method", methods...), Status: p.oneOf("status", deployStatuses...),
		BeforeID: p.int64("before"), Limit: p.limit(),
	}
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListDeployments(r.Context(), h.store.Pool(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, f.Limit, func(d store.Deployment) int64 { return d.ID }))
}

func (h *Handler) getDeployment(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	d, err := h.projectDeployment(r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// projectDeployment reads one of the scoped project's deployments; another project's is not
// found, as if it did not exist.
func (h *Handler) projectDeployment(r *http.Request, id int64) (*store.Deployment, error) {
	d, err := h.store.DeploymentByID(r.Context(), h.store.Pool(), id)
	if err == nil && d.ProjectID != scopeOf(r).projectID() {
		err = errNotFound("deployment %d: not found", id)
	}
	return d, err
}

// listRepositories lists repositories with their Flux sync status by name, paged by ?after=name.
func (h *Handler) listRepositories(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.after(), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListRepositories(r.Context(), h.store.Pool(), scopeOf(r).projectID(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(x store.Repository) string { return x.Name }))
}

func (h *Handler) getRepository(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	repo, err := h.store.RepositoryByID(r.Context(), h.store.Pool(), id)
	if err == nil && repo.ProjectID != scopeOf(r).projectID() {
		err = errNotFound("repository %d: not found", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, repo)
}

// listAudit pages through the audit log, newest first.
func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	f := store.AuditFilter{
		ProjectID: scopeOf(r).projectID(), EnvironmentID: p.int64("environment_id"),
		ActorType: p.oneOf("actor_type", actorTypes...), ActorName: p.str("actor"), Action: p.str("action"),
		TargetType: p.str("target_type"), TargetID: p.str("target_id"), Cluster: p.str("cluster"),
		Since: p.time("since"), Until: p.time("until"), BeforeID: p.int64("before"), Limit: p.limit(),
	}
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListAudit(r.Context(), h.store.Pool(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, f.Limit, func(e store.AuditEntry) int64 { return e.ID }))
}

// listNotifications lists in-app notifications newest first, paged by ?before=id.
func (h *Handler) listNotifications(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	before, limit := p.int64("before"), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListNotifications(r.Context(), h.store.Pool(), scopeOf(r).projectID(), before, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, limit, func(n store.Notification) int64 { return n.ID }))
}

// listProjects lists the caller's projects by slug, paged by ?after=slug; admins see all of them.
func (h *Handler) listProjects(w http.ResponseWriter, r *http.Request) {
	q := params{r: r}
	after, limit := q.after(), q.limit()
	if q.err != nil {
		h.fail(w, r, q.err)
		return
	}
	var member int64 // 0: every project
	if p := scopeOf(r).Principal; !p.Admin {
		member = p.UserID
	}
	items, err := h.store.ListProjects(r.Context(), h.store.Pool(), member, after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(x store.Project) string { return x.Slug }))
}

func (h *Handler) getProject(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, scopeOf(r).Project)
}

// listEnvironments lists a project's environments by name, paged by ?after=name.
func (h *Handler) listEnvironments(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.after(), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListEnvironments(r.Context(), h.store.Pool(), scopeOf(r).projectID(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(x store.Environment) string { return x.Name }))
}
