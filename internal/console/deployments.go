package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// deploymentsShown is a page of the deployments list.
const deploymentsShown = 50

type deploymentRow struct {
	store.Deployment
	Env, Who string
}

type deploymentsPage struct {
	Slug     string
	Rows     []deploymentRow
	Envs     []store.Environment
	F        struct{ Env, Method, Status string }
	Query    template.URL // the filters, encoded: for the fragment and the next page
	Next     int64        // the before= of the next page; 0 when this is the last
	Before   int64
	Methods  []string
	Statuses []string
}

var deployStatuses = []string{"pending", "awaiting_approval", "pushed", "succeeded", "failed", "rejected", "cancelled"}

// deployments is the project's deployment history, newest first, filtered by environment,
// method and status, 50 a page; new and changed deployments appear live.
func (c *Console) deployments(w http.ResponseWriter, r *http.Request) {
	p, err := c.deploymentsData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "deployments", p)
}

func (c *Console) deploymentsList(w http.ResponseWriter, r *http.Request) {
	p, err := c.deploymentsData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "deployments", "deployments_table", p)
}

func (c *Console) deploymentsData(r *http.Request) (*deploymentsPage, error) {
	sc := handlers.ScopeOf(r)
	ctx, db := r.Context(), c.store.Pool()
	q := r.URL.Query()
	p := &deploymentsPage{Slug: sc.Project.Slug, Methods: []string{"manual", "gitops-ui", "gitops-git"}, Statuses: deployStatuses}
	p.F.Env, p.F.Method, p.F.Status = q.Get("environment"), q.Get("method"), q.Get("status")
	envs, err := c.store.ProjectEnvironments(ctx, db, sc.Project.ID)
	if err != nil {
		return nil, err
	}
	p.Envs = envs
	f := store.DeploymentFilter{ProjectID: sc.Project.ID, Limit: deploymentsShown + 1}
	names := map[int64]string{}
	for _, e := range envs {
		names[e.ID] = e.Name
		if e.Name == p.F.Env {
			f.EnvironmentID = e.ID
		}
	}
	if p.F.Env != "" && f.EnvironmentID == 0 {
		return nil, handlers.BadRequest("environment", "no environment "+strconv.Quote(p.F.Env)+" in this project")
	}
	if p.F.Method != "" && !slices.Contains(p.Methods, p.F.Method) {
		return nil, handlers.BadRequest("method", "want one of manual, gitops-ui, gitops-git")
	}
	if p.F.Status != "" && !slices.Contains(deployStatuses, p.F.Status) {
		return nil, handlers.BadRequest("status", "not a deployment status")
	}
	f.Method, f.Status = p.F.Method, p.F.Status
	if b := q.Get("before"); b != "" {
		if f.BeforeID, err = strconv.ParseInt(b, 10, 64); err != nil || f.BeforeID <= 0 {
			return nil, handlers.BadRequest("before", "want a deployment ID")
		}
		p.Before = f.BeforeID
	}
	items, err := c.store.ListDeployments(ctx, db, f)
	if err != nil {
		return nil, err
	}
	if len(items) > deploymentsShown {
		items = items[:deploymentsShown]
		p.Next = items[len(items)-1].ID
	}
	users := map[int64]string{}
	for _, d := range items {
		row := deploymentRow{Deployment: d, Env: names[d.EnvironmentID], Who: d.CommitAuthor}
		if d.RequestedBy != nil {
			name, ok := users[*d.RequestedBy]
			if !ok {
				if u, err := c.store.UserByID(ctx, db, *d.RequestedBy); err == nil {
					name = u.Username
				} else if !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
				users[*d.RequestedBy] = name
			}
			row.Who = name
		}
		p.Rows = append(p.Rows, row)
	}
	v := url.Values{}
	for k, val := range map[string]string{"environment": p.F.Env, "method": p.F.Method, "status": p.F.Status} {
		if val != "" {
			v.Set(k, val)
		}
	}
	p.Query = template.URL(v.Encode()) // url.Values encodes it: safe in a URL
	return p, nil
}
