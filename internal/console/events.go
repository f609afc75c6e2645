package console

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type eventFilter struct{ Cluster, Env, Kind, Severity string }

type eventsPage struct {
	Events   []store.ProjectFluxEvent
	F        eventFilter
	Clusters []string
	Kinds    []string
	Envs     []store.Environment
}

// eventsShown is how many events the page starts with.
const eventsShown = 200

// events is the project's Flux event stream: the newest events, then live ones from the
// change feed, filtered by cluster, environment, kind and severity.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	q := r.URL.Query()
	f := eventFilter{Cluster: q.Get("cluster"), Env: q.Get("environment"), Kind: q.Get("kind"), Severity: q.Get("severity")}
	ctx, db := r.Context(), c.store.Pool()
	all, err := c.store.RecentFluxEvents(ctx, db, sc.Project.ID, eventsShown*5)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	envs, err := c.store.ProjectEnvironments(ctx, db, sc.Project.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := eventsPage{F: f, Envs: envs}
	for _, e := range envs {
		if !slices.Contains(p.Clusters, e.Cluster) {
			p.Clusters = append(p.Clusters, e.Cluster)
		}
	}
	for _, e := range all {
		if !slices.Contains(p.Kinds, e.Kind) {
			p.Kinds = append(p.Kinds, e.Kind)
		}
		if f.Cluster != "" && e.Cluster != f.Cluster || f.Kind != "" && e.Kind != f.Kind || f.Severity != "" && e.Severity != f.Severity {
			continue
		}
		if f.Env != "" && (e.EnvironmentID == nil || strconv.FormatInt(*e.EnvironmentID, 10) != f.Env) {
			continue
		}
		if len(p.Events) < eventsShown {
			p.Events = append(p.Events, e)
		}
	}
	slices.Sort(p.Kinds)
	c.render(w, r, http.StatusOK, "events", p)
}
