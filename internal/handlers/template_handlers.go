package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// templateView is a deploy template: a built-in one (a kind and its best-practice defaults)
// or one a project saved (a partial form on top of a kind).
type templateView struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Builtin     bool            `json:"builtin"`
	Description string          `json:"description"`
	Objects     []string        `json:"objects"`
	Form        json.RawMessage `json:"form"`
	ID          int64           `json:"id,omitempty"`
	CreatedBy   *int64          `json:"created_by,omitempty"`
}

// builtins describes the built-in templates.
var builtins = []templateView{
	{Name: manifest.KindWebApp, Kind: manifest.KindWebApp, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"},
		Description: "An HTTP app reachable from outside: 2+ replicas scaled on CPU (80%), an Ingress for ingress.host, TCP probes on the first port, requests 100m/128Mi, limits 500m/256Mi, zero-downtime rolling updates with a 10-minute progress deadline, non-root and read-only."},
	{Name: manifest.KindMicroservice, Kind: manifest.KindMicroservice, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{"Deployment", "Service"},
		Description: "An internal service: 2 replicas behind a ClusterIP Service, TCP probes on the first port, requests 100m/128Mi, limits 500m/256Mi, zero-downtime rolling updates with a 10-minute progress deadline, non-root and read-only."},
	{Name: manifest.KindCronJob, Kind: manifest.KindCronJob, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{"CronJob"},
		Description: "A scheduled job: never two runs at once, 2 retries per run, a missed run may start up to 5 minutes late, 3 successful and 1 failed Job kept, non-root and read-only."},
}

func savedView(t *store.DeployTemplate) templateView {
	v := templateView{Name: t.Name, Kind: t.Kind, Description: t.Description, Form: t.Form, ID: t.ID, CreatedBy: t.CreatedBy}
	for _, b := range builtins {
		if b.Kind == t.Kind {
			v.Objects = b.Objects
		}
	}
	return v
}

// listTemplates lists the built-in templates, then the project's saved ones by name.
func (h *Handler) listTemplates(w http.ResponseWriter, r *http.Request) {
	saved, err := h.store.ListDeployTemplates(r.Context(), h.store.Pool(), scopeOf(r).projectID())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := append([]templateView{}, builtins...)
	for i := range saved {
		items = append(items, savedView(&saved[i]))
	}
	writeJSON(w, http.StatusOK, page[templateView]{Items: items})
}

func (h *Handler) getTemplate(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	for _, b := range builtins {
		if b.Name == name {
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	t, err := h.store.DeployTemplateByName(r.Context(), h.store.Pool(), scopeOf(r).projectID(), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, savedView(t))
}

// createTemplateReq is the body of POST /projects/{project}/templates.
type createTemplateReq struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Kind        string          `json:"kind"`
	Form        json.RawMessage `json:"form"`
}

// createTemplate saves a partial form of a built-in kind under a name in the project.
func (h *Handler) createTemplate(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(w, r)
	var q createTemplateReq
	if err == nil {
		raw, _ := json.Marshal(obj)
		err = decodeStrict(raw, &q, "")
	}
	var t *store.DeployTemplate
	if err == nil {
		t, err = h.saveTemplate(r.Context(), r, &q)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, savedView(t))
}

func (h *Handler) saveTemplate(ctx context.Context, r *http.Request, q *createTemplateReq) (*store.DeployTemplate, error) {
	sc := scopeOf(r)
	switch {
	case !nameRE.MatchString(q.Name):
		return nil, errBadRequest("name", "must be a DNS label (lowercase letters, digits and '-'), got %q", q.Name)
	case manifest.IsKind(q.Name):
		return nil, errBadRequest("name", "%q is a built-in template's name", q.Name)
	case !manifest.IsKind(q.Kind):
		return nil, errBadRequest("kind", "must be one of %v, got %q", manifest.Kinds(), q.Kind)
	case len(q.Description) > 2000:
		return nil, errBadRequest("description", "at most 2000 characters")
	}
	if len(q.Form) == 0 || string(q.Form) == "null" {
		q.Form = json.RawMessage(`{}`)
	}
	var f manifest.Form
	if err := decodeStrict(q.Form, &f, "form."); err != nil {
		return nil, err
	}
	if err := f.ValidateTemplate(q.Kind); err != nil {
		return nil, prefixField("form.", formError(err))
	}
	u, err := h.requester(ctx, r)
	if err != nil {
		return nil, err
	}
	var t *store.DeployTemplate
	err = h.store.WithTx(ctx, func(tx pgx.Tx) error {
		t, err = h.store.CreateDeployTemplate(ctx, tx, store.DeployTemplate{
			ProjectID: sc.Project.ID, Name: q.Name, Description: q.Description, Kind: q.Kind, Form: q.Form, CreatedBy: &u.ID,
		})
		if c, ok := store.IsUniqueViolation(err); ok && c == "deploy_templates_project_id_name_key" {
			return &httpError{Status: http.StatusConflict, Field: "name", Msg: fmt.Sprintf("project %s already has a template %q", sc.Project.Slug, q.Name)}
		}
		if err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"name": t.Name, "kind": t.Kind, "form": t.Form})
		return h.audit(ctx, tx, r, "template.create", "deploy_template", fmt.Sprint(t.ID), "saved template "+t.Name+" ("+t.Kind+")", details)
	})
	return t, err
}

// deleteTemplate deletes a saved template; deployments made from it keep their forms.
func (h *Handler) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := chi.URLParam(r, "name")
	if manifest.IsKind(name) {
		h.fail(w, r, errBadRequest("name", "built-in templates cannot be deleted"))
		return
	}
	err := h.store.WithTx(ctx, func(tx pgx.Tx) error {
		t, err := h.store.DeleteDeployTemplate(ctx, tx, scopeOf(r).projectID(), name)
		if err != nil {
			return err
		}
		return h.audit(ctx, tx, r, "template.delete", "deploy_template", fmt.Sprint(t.ID), "deleted template "+t.Name, nil)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// prefixField prefixes the field of a 400 with p.
func prefixField(p string, err error) error {
	var he *httpError
	if errors.As(err, &he) && he.Field != "" {
		he.Field = p + he.Field
	}
	return err
}
