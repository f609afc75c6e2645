package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// historyShown is how many of an app's restorable deployments its history lists.
const historyShown = 30

type historyPage struct {
	Slug, App string
	Env       *store.Environment
	T         *handlers.RollbackTargets
	CanRoll   error
	CanUnlock error
	More      string // the next (older) page
}

func (c *Console) historyBase(r *http.Request) string {
	sc := handlers.ScopeOf(r)
	return "/projects/" + sc.Project.Slug + "/environments/" + sc.Env.Name + "/apps/" + chi.URLParam(r, "app")
}

// history is an app's deployments in one environment that it can be rolled back to, the
// current one first, with the rollback lock and Unlock.
func (c *Console) history(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	app := chi.URLParam(r, "app")
	before, err := handlers.BeforeParam(r)
	var t *handlers.RollbackTargets
	if err == nil {
		t, err = c.core.RollbackTargets(r, app, before, historyShown)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var next string
	if t.NextBefore != nil {
		next = strconv.FormatInt(*t.NextBefore, 10)
	}
	c.render(w, r, http.StatusOK, "history", historyPage{Slug: sc.Project.Slug, App: app, Env: sc.Env, T: t,
		CanRoll: c.core.Can(sc, "deployment.rollback", sc.Env), CanUnlock: c.core.Can(sc, "deployment.unlock", sc.Env),
		More: moreURL(c.historyBase(r)+"/history", "before", next)})
}

type rollbackPage struct {
	Slug, App       string
	Env             *store.Environment
	Current, Target *store.Deployment
	Changes         []handlers.Change
	Approvals       int
}

// rollbackConfirm shows what rolling back to ?to= changes against what runs now, and the
// choice of revert or pin.
func (c *Console) rollbackConfirm(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	app := chi.URLParam(r, "app")
	to, err := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
	if err != nil || to <= 0 {
		c.fail(w, r, handlers.BadRequest("to", "want the ID of the deployment to roll back to"))
		return
	}
	t, err := c.core.RollbackTargets(r, app, 0, historyShown)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := rollbackPage{Slug: sc.Project.Slug, App: app, Env: sc.Env}
	for _, it := range t.Items {
		if it.Current {
			p.Current = it.Deployment
		}
		if it.Deployment.ID == to {
			p.Target = it.Deployment
		}
	}
	if p.Target == nil {
		c.fail(w, r, handlers.BadRequest("to", fmt.Sprintf("deployment %d is not one %s can be rolled back to in %s", to, app, sc.Env.Name)))
		return
	}
	if p.Current != nil {
		var before, after []byte
		if s, err := c.store.DeploymentSpecByID(r.Context(), c.store.Pool(), p.Current.ID); err == nil {
			before = s.Form
		} else if !errors.Is(err, store.ErrNotFound) {
			c.fail(w, r, err)
			return
		}
		if s, err := c.store.DeploymentSpecByID(r.Context(), c.store.Pool(), p.Target.ID); err == nil {
			after = s.Form
		} else if !errors.Is(err, store.ErrNotFound) {
			c.fail(w, r, err)
			return
		}
		if before != nil && after != nil {
			p.Changes, _ = handlers.Changes(before, after)
		}
	}
	if v, err := handlers.ViewEnv(sc.Env); err == nil {
		p.Approvals = v.Access.RequiredApprovals
	}
	c.render(w, r, http.StatusOK, "rollback", p)
}

// rollback starts the rollback and goes to its deployment's live progress.
func (c *Console) rollback(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	_ = r.ParseForm()
	to, _ := strconv.ParseInt(r.PostForm.Get("deployment_id"), 10, 64)
	res, err := c.core.Rollback(r, chi.URLParam(r, "app"), to, r.PostForm.Get("strategy"))
	if err != nil {
		c.back(w, r, c.historyBase(r)+"/history", err)
		return
	}
	msg := "Rollback started: follow it below."
	if res.Approval != nil {
		msg = "Rollback saved; it waits for approvals before anything changes."
	}
	setFlash(w, "ok", msg)
	redirect(w, r, fmt.Sprintf("/projects/%s/deployments/%d", sc.Project.Slug, res.Deployment.ID))
}

// unlock releases the app from its finished rollback.
func (c *Console) unlock(w http.ResponseWriter, r *http.Request) {
	back := c.historyBase(r) + "/history"
	res, err := c.core.Unlock(r, chi.URLParam(r, "app"))
	if err != nil {
		c.back(w, r, back, err)
		return
	}
	msg := "Unlocked: image automation runs again"
	if res.Unpinned {
		msg += " and the environment follows its branch again"
	}
	setFlash(w, "ok", msg+".")
	redirect(w, r, back)
}
