package handlers

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// OverviewResource is one resource in the overview: what a status page shows.
type OverviewResource struct {
	ID                  int64                   `json:"id"`
	Kind                string                  `json:"kind"`
	Namespace           string                  `json:"namespace"`
	Name                string                  `json:"name"`
	Status              string                  `json:"status"`
	StatusReason        string                  `json:"status_reason"`
	StatusMessage       string                  `json:"status_message"`
	Suspended           bool                    `json:"suspended"`
	ApplyStatus         string                  `json:"apply_status"`
	ApplyError          string                  `json:"apply_error,omitempty"`
	LastAppliedRevision string                  `json:"last_applied_revision"`
	ChartVersion        string                  `json:"chart_version,omitempty"`
	LastReconcileAt     *time.Time              `json:"last_reconcile_at"`
	NextReconcileAt     *time.Time              `json:"next_reconcile_at"`
	Reconcile           *store.ReconcileRequest `json:"reconcile,omitempty"`
}

// OverviewEnv is one environment of a cluster (or, with a nil ID, the project-wide objects).
type OverviewEnv struct {
	ID         *int64             `json:"id"`
	Name       string             `json:"name"`
	SyncPolicy string             `json:"sync_policy,omitempty"`
	Resources  []OverviewResource `json:"resources"`
}

// OverviewCluster groups a project's resources in one cluster by environment.
type OverviewCluster struct {
	Name         string         `json:"name"`
	Environments []*OverviewEnv `json:"environments"`
	Health       map[string]int `json:"health"` // count per status
}

// projectOverview shows a project's Flux resources grouped by cluster, then environment, with
// health, last and next sync, and the progress of manual reconciles (R9, R18.4). It pages by
// resource, in the resource list's order (?limit=, ?after=cluster/kind/namespace/name): a
// cluster or environment whose resources span two pages appears on both, health counting
// the page's resources.
func (h *Handler) projectOverview(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.afterRef(true), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	ov, err := h.Overview(r.Context(), scopeOf(r).projectID(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

// OverviewPage is one page of the overview and, when more may follow, the ?after= of the next.
type OverviewPage struct {
	Clusters  []*OverviewCluster `json:"clusters"`
	NextAfter string             `json:"next_after,omitempty"`
}

// Overview is the typed core of the project overview, for the API and the console: at most
// limit of the project's resources after after (nil: from the first), by cluster, then
// environment, in the store's order.
func (h *Handler) Overview(ctx context.Context, projectID int64, after *store.ObjectRef, limit int) (*OverviewPage, error) {
	list, err := h.store.ListResources(ctx, h.store.Pool(), store.ResourceFilter{ProjectID: projectID, After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	envs, err := h.store.ProjectEnvironments(ctx, h.store.Pool(), projectID)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	latest, err := h.store.LatestReconcileRequests(ctx, h.store.Pool(), ids)
	if err != nil {
		return nil, err
	}
	envByID := map[int64]store.Environment{}
	for _, e := range envs {
		envByID[e.ID] = e
	}
	clusters := []*OverviewCluster{}
	byName := map[string]*OverviewCluster{}
	for _, res := range list { // ordered by cluster
		c := byName[res.Cluster]
		if c == nil {
			c = &OverviewCluster{Name: res.Cluster, Health: map[string]int{}}
			byName[res.Cluster] = c
			clusters = append(clusters, c)
		}
		c.Health[res.Status]++
		env := c.env(res.EnvironmentID, envByID)
		var rr *store.ReconcileRequest
		if l, ok := latest[res.ID]; ok {
			rr = &l
		}
		env.Resources = append(env.Resources, OverviewRow(&res, rr))
	}
	return &OverviewPage{Clusters: clusters, NextAfter: resourcePage(list, limit).NextAfter}, nil
}

// OverviewRow is one resource as the overview shows it, with its latest reconcile request.
func OverviewRow(res *store.Resource, rr *store.ReconcileRequest) OverviewResource {
	return OverviewResource{
		ID: res.ID, Kind: res.Kind, Namespace: res.Namespace, Name: res.Name, Status: res.Status,
		StatusReason: res.StatusReason, StatusMessage: res.StatusMessage, Suspended: res.Suspended,
		ApplyStatus: res.ApplyStatus, ApplyError: res.ApplyError, LastAppliedRevision: res.LastAppliedRevision,
		ChartVersion: res.ChartVersion, LastReconcileAt: res.LastReconcileAt, NextReconcileAt: res.NextReconcileAt,
		Reconcile: rr,
	}
}

// env returns the group of environment id (nil: project-wide) in the cluster, adding it.
func (c *OverviewCluster) env(id *int64, envs map[int64]store.Environment) *OverviewEnv {
	for _, e := range c.Environments {
		if (e.ID == nil) == (id == nil) && (id == nil || *e.ID == *id) {
			return e
		}
	}
	oe := &OverviewEnv{ID: id, Name: "(project-wide)"}
	if id != nil {
		e := envs[*id]
		oe.Name = e.Name
		if s, err := fluxspec.ParseEnvSettings(e.GitopsConfig); err == nil {
			oe.SyncPolicy = "auto"
			if s.Manual() {
				oe.SyncPolicy = "manual"
			}
		}
	}
	c.Environments = append(c.Environments, oe)
	return oe
}

// listEnvResources lists one environment's resources (R8.5), paged as listResources.
func (h *Handler) listEnvResources(w http.ResponseWriter, r *http.Request) {
	sc := scopeOf(r)
	p := params{r: r}
	after, limit := p.afterRef(true), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListResources(r.Context(), h.store.Pool(), store.ResourceFilter{ProjectID: sc.projectID(), EnvironmentID: sc.Env.ID, After: after, Limit: limit})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resourcePage(items, limit))
}

// listClusters lists the configured clusters by name with their reachability (a GET /version
// with a short timeout, cached briefly) and Flux namespace, paged by ?after=name. The list is
// the configuration's, not a query; it pages as every other list does.
func (h *Handler) listClusters(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.after(), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	all := h.Clusters(r.Context())
	slices.SortFunc(all, func(a, b cluster.Status) int { return strings.Compare(a.Name, b.Name) })
	items := []cluster.Status{}
	for _, c := range all {
		if c.Name > after && len(items) < limit {
			items = append(items, c)
		}
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(c cluster.Status) string { return c.Name }))
}

// Clusters returns each configured cluster with whether fluxbridge reaches it and its
// Kubernetes version.
func (h *Handler) Clusters(ctx context.Context) []cluster.Status {
	var items []cluster.Status
	if h.clusters != nil {
		items = h.clusters.Statuses(ctx)
	}
	if items == nil {
		items = []cluster.Status{}
	}
	return items
}
