package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// resourcePage is the resource detail: header (status, revisions, actions), conditions,
// history and the live YAML with the field a failure names highlighted.
type resourcePage struct {
	Slug       string
	R          store.Resource
	D          *handlers.ResourceDetailView
	EnvName    string
	Hint       string
	Conditions []condition
	YAML       []yamlLine
	YAMLErr    string
	can        map[string]error
}

type condition struct {
	Type, Status, Reason, Message string
	Since                         *time.Time
}

// actionData is one action button: a form, or a disabled button saying why.
type actionData struct {
	Slug, Verb, Label, Flag, Err string
	ID                           int64
}

func actionFor(p *resourcePage, verb, label, flag string) actionData {
	a := actionData{Slug: p.Slug, ID: p.R.ID, Verb: verb, Label: label, Flag: flag}
	if err := p.can[verb]; err != nil {
		a.Err = deniedReason(err)
	}
	return a
}

func (c *Console) idParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		c.Fail(w, r, failure(http.StatusNotFound, "", "no such page"))
		return 0, false
	}
	return id, true
}

func failure(status int, field, msg string) handlers.Failure {
	return handlers.Failure{Status: status, Field: field, Msg: msg}
}

// resourcePageData reads what the header (and, withYAML, the whole page) shows.
func (c *Console) resourcePageData(r *http.Request, id int64, withYAML bool) (*resourcePage, error) {
	sc := handlers.ScopeOf(r)
	d, err := c.core.ResourceDetail(r, id)
	if err != nil {
		return nil, err
	}
	p := &resourcePage{Slug: sc.Project.Slug, R: d.Resource, D: d, can: map[string]error{}}
	var env *store.Environment
	if d.EnvironmentID != nil {
		if env, err = c.store.EnvironmentByID(r.Context(), c.store.Pool(), *d.EnvironmentID); err != nil {
			return nil, err
		}
		p.EnvName = env.Name
	}
	for verb, action := range map[string]string{"reconcile": "resource.reconcile", "suspend": "resource.suspend", "resume": "resource.resume"} {
		p.can[verb] = c.core.Can(sc, action, env)
	}
	if d.Status == "failed" || d.Status == "reconciling" && d.StatusReason != "" {
		p.Hint = fluxevent.Hint(d.StatusReason)
	}
	var conds []struct {
		Type, Status, Reason, Message string
		LastTransitionTime            *time.Time `json:"lastTransitionTime"`
	}
	_ = json.Unmarshal(d.Conditions, &conds)
	for _, cd := range conds {
		p.Conditions = append(p.Conditions, condition{Type: cd.Type, Status: cd.Status, Reason: cd.Reason, Message: cd.Message, Since: cd.LastTransitionTime})
	}
	if withYAML {
		b, err := c.core.LiveYAML(r, id)
		if err != nil {
			p.YAMLErr = c.core.Failure(r, err).Msg
		} else {
			p.YAML = highlightYAML(string(b), failingField(d.StatusReason, d.StatusMessage))
		}
	}
	return p, nil
}

func (c *Console) resource(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	p, err := c.resourcePageData(r, id, true)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "resource", p)
}

func (c *Console) resourceHeader(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	p, err := c.resourcePageData(r, id, false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "resource", "resource_header", p)
}

// reconcile, suspend and resume call the core and come back to the resource page, where the
// header follows the progress live.
func (c *Console) reconcile(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(id int64) (string, error) {
		_ = r.ParseForm()
		in := handlers.ReconcileInput{WithSource: r.PostForm.Get("with_source") == "true"}
		rr, err := c.core.Reconcile(r, id, in)
		if err != nil {
			return "", err
		}
		if in.WithSource {
			return "Reconcile with source requested (request " + strconv.FormatInt(rr.ID, 10) + ").", nil
		}
		return "Reconcile requested (request " + strconv.FormatInt(rr.ID, 10) + ").", nil
	})
}

func (c *Console) suspend(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(id int64) (string, error) {
		_, err := c.core.SetSuspended(r, id, true)
		return "Suspended: Flux stops reconciling it until it is resumed.", err
	})
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(id int64) (string, error) {
		_, err := c.core.SetSuspended(r, id, false)
		return "Resumed: Flux reconciles it again.", err
	})
}

func (c *Console) act(w http.ResponseWriter, r *http.Request, fn func(id int64) (string, error)) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	back := "/projects/" + handlers.ScopeOf(r).Project.Slug + "/resources/" + strconv.FormatInt(id, 10)
	msg, err := fn(id)
	if err != nil {
		f := c.core.Failure(r, err)
		if f.Status == http.StatusForbidden || f.Status == http.StatusNotFound || f.Status >= 500 {
			c.Fail(w, r, f)
			return
		}
		setFlash(w, "error", f.Msg)
		redirect(w, r, back)
		return
	}
	setFlash(w, "ok", msg)
	redirect(w, r, back)
}
