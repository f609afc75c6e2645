package console

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"sigs.k8s.io/yaml"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type templateRow struct {
	handlers.TemplateView
	Fields []handlers.Change // what a saved template sets
	// FluxYAML is the template's Flux side (the environment's GitRepository and Kustomization
	// settings, a helm-app's HelmRelease) as YAML.
	FluxYAML string
}

type templatesPage struct {
	Slug      string
	Rows      []templateRow
	Envs      []store.Environment
	CanDelete bool
	More      string // the next page
}

// templates lists the built-in and saved deploy templates, each with a deploy link per
// environment and, for saved ones, what they set and Delete.
func (c *Console) templates(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	after, err := handlers.AfterParam(r)
	var items []handlers.TemplateView
	if err == nil {
		items, err = c.core.Templates(r.Context(), sc.Project.ID, after, templatesShown+1)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	items, next := trim(items, templatesShown, func(t handlers.TemplateView) string { return t.Name })
	envs, err := c.store.ProjectEnvironments(r.Context(), c.store.Pool(), sc.Project.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := templatesPage{Slug: sc.Project.Slug, Envs: envs, CanDelete: c.core.Can(sc, "template.delete", nil) == nil,
		More: moreURL("/projects/"+sc.Project.Slug+"/templates", "after", next)}
	for _, t := range items {
		row := templateRow{TemplateView: t}
		if y, err := yaml.JSONToYAML(t.Flux); err == nil && string(t.Flux) != "{}" {
			row.FluxYAML = string(y)
		}
		if !t.Builtin {
			row.Fields, _ = handlers.Changes(nil, t.Form)
		}
		p.Rows = append(p.Rows, row)
	}
	c.render(w, r, http.StatusOK, "templates", p)
}

// deleteTemplate deletes a saved template and comes back to the list.
func (c *Console) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	back := "/projects/" + handlers.ScopeOf(r).Project.Slug + "/templates"
	if err := c.core.DeleteTemplate(r, name); err != nil {
		f := c.core.Failure(r, err)
		if f.Status == http.StatusForbidden || f.Status >= 500 {
			c.Fail(w, r, f)
			return
		}
		setFlash(w, "error", f.Msg)
		redirect(w, r, back)
		return
	}
	setFlash(w, "ok", "Deleted template "+name+"; deployments made from it keep their forms.")
	redirect(w, r, back)
}

// saveTemplate saves the deploy form as a template of the project: everything filled in but
// the app's name, under the kind of the template the form started from.
func (c *Console) saveTemplate(w http.ResponseWriter, r *http.Request) {
	f, ok := c.readForm(w, r)
	if !ok {
		return
	}
	obj, ok := c.formObject(w, r, f)
	if !ok {
		return
	}
	sc := handlers.ScopeOf(r)
	var tmpl string
	_ = json.Unmarshal(obj["template"], &tmpl)
	kind, err := c.core.KindOf(r.Context(), sc.Project.ID, tmpl)
	if err == nil {
		for _, k := range []string{"template", "app", "method"} {
			delete(obj, k)
		}
		var form []byte
		if form, err = json.Marshal(obj); err == nil {
			_, err = c.core.CreateTemplate(r, strings.TrimSpace(r.PostForm.Get("template_name")), strings.TrimSpace(r.PostForm.Get("template_description")), kind, form, nil)
		}
	}
	if err != nil {
		fl := c.core.Failure(r, err)
		if fl.Status == http.StatusForbidden {
			c.Fail(w, r, fl)
			return
		}
		switch {
		case fl.Field == "name" || fl.Field == "description":
			fl.Field = "template_" + fl.Field
		case strings.HasPrefix(fl.Field, "form."):
			fl.Field = strings.TrimPrefix(fl.Field, "form.")
		}
		c.showForm(w, r, fl.Status, f, formFailure(nil, fl))
		return
	}
	setFlash(w, "ok", "Saved template "+r.PostForm.Get("template_name")+": it is in the deploy form's template list.")
	redirect(w, r, "/projects/"+sc.Project.Slug+"/templates")
}
