package console

import (
	"net/http"
	"slices"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// envDeploy is one environment's Deploy button: enabled, or disabled with the reason.
type envDeploy struct {
	Name         string
	CanDeploy    bool
	DeployDenied string
}

type overviewPage struct {
	Clusters []*handlers.OverviewCluster
	Envs     []envDeploy
	More     string // the next page of Flux objects
}

// statusRank orders rows failing first, then suspended, reconciling, ready (Weave's order).
func statusRank(r handlers.OverviewResource) int {
	switch {
	case r.Status == "failed" || r.ApplyStatus == "failed":
		return 0
	case r.Suspended:
		return 1
	case r.Status == "reconciling":
		return 2
	case r.Status == "unknown":
		return 3
	}
	return 4
}

// overview is the project's Flux objects by cluster, then environment, failing first; it
// updates row by row from the change feed.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	after, err := handlers.AfterRefParam(r, true)
	var ov *handlers.OverviewPage
	if err == nil {
		ov, err = c.core.Overview(r.Context(), sc.Project.ID, after, overviewShown)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, cl := range ov.Clusters {
		for _, e := range cl.Environments {
			slices.SortStableFunc(e.Resources, func(a, b handlers.OverviewResource) int { return statusRank(a) - statusRank(b) })
		}
	}
	envs, err := c.store.ProjectEnvironments(r.Context(), c.store.Pool(), sc.Project.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	page := overviewPage{Clusters: ov.Clusters, More: moreURL("/projects/"+sc.Project.Slug, "after", ov.NextAfter)}
	for i := range envs {
		page.Envs = append(page.Envs, c.envDeploy(sc, &envs[i]))
	}
	c.render(w, r, http.StatusOK, "overview", page)
}

func (c *Console) envDeploy(sc *handlers.Scope, e *store.Environment) envDeploy {
	d := envDeploy{Name: e.Name, CanDeploy: true}
	if err := c.core.Can(sc, "deployment.create", e); err != nil {
		d.CanDeploy, d.DeployDenied = false, deniedReason(err)
	}
	return d
}

// deniedReason says in a few words why a button is disabled: "needs maintainer (you are viewer)".
func deniedReason(err error) string {
	if d, ok := err.(*policy.Denied); ok {
		have := d.Have
		if have == "" {
			have = "not a member"
		}
		if d.Required != "" {
			return "Needs " + d.Required + " (you are " + have + ")"
		}
		return d.Error()
	}
	return err.Error()
}

// resourceRow is one overview row alone, for a live update.
func (c *Console) resourceRow(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	d, err := c.core.ResourceDetail(r, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	row := handlers.OverviewRow(&d.Resource, d.Reconcile)
	c.fragment(w, r, "overview", "resource_row", rowData{Slug: handlers.ScopeOf(r).Project.Slug, R: row})
}
