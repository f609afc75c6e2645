package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type envCard struct {
	handlers.EnvView
	Settings fluxspec.EnvSettings
	// AutoRollback is gitops_config.autoRollback: failed console deploys roll back by themselves.
	AutoRollback bool
	Counts       []healthCount
	Pending      *store.ApprovalRequest // a held change of its settings
	CanEdit      error
}

type environmentsPage struct {
	Slug  string
	Envs  []envCard
	Roles []string
	More  string // the next page
}

// environments shows each environment's access and GitOps settings, the state of everything in
// it, a held change of its settings with its request, and a form to change them (held for
// approval where the environment's settings require it).
func (c *Console) environments(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	ctx, db := r.Context(), c.store.Pool()
	after, err := handlers.AfterParam(r)
	var envs []store.Environment
	if err == nil {
		envs, err = c.store.ListEnvironments(ctx, db, sc.Project.ID, after, environmentsShown+1)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	envs, next := trim(envs, environmentsShown, func(e store.Environment) string { return e.Name })
	health, err := c.store.EnvironmentHealth(ctx, db, sc.Project.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// At most one pending request per environment (approval_requests_pending_target).
	pending, err := c.store.AllApprovalRequests(ctx, db, store.ApprovalFilter{ProjectID: sc.Project.ID, TargetType: "environment", State: store.ApprovalPending})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := environmentsPage{Slug: sc.Project.Slug, Roles: policy.RoleNames(), More: moreURL("/projects/"+sc.Project.Slug+"/environments", "after", next)}
	for i := range envs {
		e := &envs[i]
		v, err := handlers.ViewEnv(e)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		card := envCard{EnvView: v, CanEdit: c.core.Can(sc, "environment.update", e)}
		card.Settings, _ = fluxspec.ParseEnvSettings(e.GitopsConfig)
		if g, err := e.Gitops(); err == nil {
			card.AutoRollback = g.AutoRollback
		}
		for _, h := range healthOrder {
			if n := health[e.ID][h.status]; n > 0 {
				card.Counts = append(card.Counts, healthCount{N: n, Label: h.label, Class: h.class, Icon: h.icon})
			}
		}
		for j := range pending {
			if pending[j].TargetID == e.ID {
				card.Pending = &pending[j]
			}
		}
		p.Envs = append(p.Envs, card)
	}
	c.render(w, r, http.StatusOK, "environments", p)
}

// environmentSettings changes an environment's settings from its form: a merge patch of the
// fields the form holds (an emptied field goes back to its default).
func (c *Console) environmentSettings(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	back := "/projects/" + sc.Project.Slug + "/environments#env-" + sc.Env.Name
	_ = r.ParseForm()
	f := r.PostForm
	patch := map[string]any{}
	str := func(key string) {
		if v := strings.TrimSpace(f.Get(key)); v != "" {
			patch[key] = v
		} else {
			patch[key] = nil
		}
	}
	for _, k := range []string{"syncPolicy", "branch", "path", "approvalTTL"} {
		str(k)
	}
	if v := strings.TrimSpace(f.Get("requiredApprovals")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.back(w, r, back, handlers.BadRequest("gitops_config.requiredApprovals", "want a whole number"))
			return
		}
		patch["requiredApprovals"] = n
	} else {
		patch["requiredApprovals"] = nil
	}
	if f.Get("autoRollback") == "true" {
		patch["autoRollback"] = true
	} else {
		patch["autoRollback"] = nil
	}
	roles := f["deployRoles"]
	if len(roles) > 0 {
		patch["deployRoles"] = roles
	} else {
		patch["deployRoles"] = nil
	}
	var users []string
	for _, u := range strings.FieldsFunc(f.Get("deployUsers"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		if !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	if len(users) > 0 {
		patch["deployUsers"] = users
	} else {
		patch["deployUsers"] = nil
	}
	raw, _ := json.Marshal(patch)
	out, err := c.core.UpdateEnvironment(r, raw)
	if err != nil {
		c.back(w, r, back, err)
		return
	}
	if out.Approval != nil {
		setFlash(w, "ok", fmt.Sprintf("The change of %s waits for %d approvals (request %d); until then the settings stay as they are.",
			sc.Env.Name, out.Approval.RequiredApprovals, out.Approval.ID))
	} else {
		setFlash(w, "ok", "Saved the settings of "+sc.Env.Name+".")
	}
	redirect(w, r, back)
}

// back answers a refused action: the 403 (or 404, 5xx) page, else a flash on the page it came from.
func (c *Console) back(w http.ResponseWriter, r *http.Request, to string, err error) {
	f := c.core.Failure(r, err)
	if f.Status == http.StatusForbidden || f.Status == http.StatusNotFound || f.Status >= 500 {
		c.Fail(w, r, f)
		return
	}
	msg := f.Msg
	if f.Field != "" {
		msg = f.Field + ": " + msg
	}
	setFlash(w, "error", msg)
	redirect(w, r, to)
}
