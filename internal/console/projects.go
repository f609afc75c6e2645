package console

import (
	"net/http"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type projectTile struct {
	Project store.Project
	Counts  []healthCount
}

type healthCount struct {
	N                  int
	Label, Class, Icon string
}

// projects lists the caller's projects (every project for an admin) with their health counts.
func (c *Console) projects(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	var member int64
	if !p.Admin {
		member = p.UserID
	}
	ctx, db := r.Context(), c.store.Pool()
	after, err := handlers.AfterParam(r)
	var list []store.Project
	if err == nil {
		list, err = c.store.ListProjects(ctx, db, member, after, projectsShown+1)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	list, next := trim(list, projectsShown, func(p store.Project) string { return p.Slug })
	ids := make([]int64, len(list))
	for i, pr := range list {
		ids[i] = pr.ID
	}
	health, err := c.store.ProjectHealth(ctx, db, ids)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	tiles := make([]projectTile, len(list))
	for i, pr := range list {
		tiles[i] = projectTile{Project: pr}
		for _, h := range healthOrder {
			if n := health[pr.ID][h.status]; n > 0 {
				tiles[i].Counts = append(tiles[i].Counts, healthCount{N: n, Label: h.label, Class: h.class, Icon: h.icon})
			}
		}
	}
	c.render(w, r, http.StatusOK, "projects", map[string]any{"Projects": tiles, "More": moreURL("/", "after", next)})
}
