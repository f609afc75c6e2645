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
// or one a project saved (a partial form on top of a kind). Flux is the Flux side a deploy with
// it uses (fluxspec.Template: the environment's GitRepository and Kustomization settings, a
// helm-app's HelmRelease), the built-in's with a saved template's own settings laid over it.
type templateView struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Builtin     bool            `json:"builtin"`
	Description string          `json:"description"`
	Objects     []string        `json:"objects"`
	FluxObjects []string        `json:"flux_objects"`
	Form        json.RawMessage `json:"form"`
	Flux        json.RawMessage `json:"flux"`
	ID          int64           `json:"id,omitempty"`
	CreatedBy   *int64          `json:"created_by,omitempty"`
}

// Recovery, as the built-in descriptions state it (R7b.5).
const (
	deploymentRecovery = " Recovery: a rollout stuck for 10 minutes (progressDeadlineSeconds 600) is reported failed and 5 old ReplicaSets are kept for a rollback."
	kustomizeRecovery  = " Flux: the environment's Kustomization health-checks everything it applies (wait) within a 5-minute timeout, retries a failed apply every minute and prunes what Git no longer holds."
)

// builtins describes the built-in templates.
var builtins = []templateView{
	{Name: manifest.KindWebApp, Kind: manifest.KindWebApp, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"},
		Description: "An HTTP app reachable from outside: 2+ replicas scaled on CPU (80%), an Ingress for ingress.host, TCP probes on the first port, requests 100m/128Mi, limits 500m/256Mi, zero-downtime rolling updates with a 10-minute progress deadline, non-root and read-only." + deploymentRecovery + kustomizeRecovery},
	{Name: manifest.KindMicroservice, Kind: manifest.KindMicroservice, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{"Deployment", "Service"},
		Description: "An internal service: 2 replicas behind a ClusterIP Service, TCP probes on the first port, requests 100m/128Mi, limits 500m/256Mi, zero-downtime rolling updates with a 10-minute progress deadline, non-root and read-only." + deploymentRecovery + kustomizeRecovery},
	{Name: manifest.KindCronJob, Kind: manifest.KindCronJob, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{"CronJob"},
		Description: "A scheduled job: never two runs at once, 2 retries per run, a missed run may start up to 5 minutes late, 3 successful and 1 failed Job kept, non-root and read-only." + kustomizeRecovery},
	{Name: manifest.KindHelmApp, Kind: manifest.KindHelmApp, Builtin: true, Form: json.RawMessage(`{}`),
		Objects:     []string{helmAppObjects},
		Description: "A Helm chart that a Flux HelmRelease installs into the deploy's namespace as release <app>: from a Helm repository (a semver range, so Flux upgrades within it) or a Git repository; the deploy (or a saved template) names it in flux.helmRelease.chart, and its values in flux.helmRelease.values. Recovery: a failed install is uninstalled and retried 3 times; a failed upgrade is retried 3 times and then rolled back to the last release that worked (remediateLastFailure, strategy rollback), what it created cleaned up; each Helm action has 5 minutes, and 5 releases are kept."},
}

func init() {
	for i := range builtins {
		b := &builtins[i]
		b.Flux = builtinFluxJSON(b.Kind)
		b.FluxObjects = fluxObjects(builtinFlux(b.Kind))
	}
}

// savedView shows a saved template with its effective Flux side (a stored one always checks).
func savedView(t *store.DeployTemplate) templateView {
	v := templateView{Name: t.Name, Kind: t.Kind, Description: t.Description, Form: t.Form, ID: t.ID, CreatedBy: t.CreatedBy}
	for _, b := range builtins {
		if b.Kind == t.Kind {
			v.Objects = b.Objects
		}
	}
	raw, tf, err := effectiveFlux(t.Kind, []json.RawMessage{t.Flux}, true)
	if err != nil {
		raw, tf = builtinFluxJSON(t.Kind), builtinFlux(t.Kind)
	}
	v.Flux, v.FluxObjects = raw, fluxObjects(tf)
	return v
}

// listTemplates lists the built-in templates, then the project's saved ones by name, paged by
// ?after=name.
func (h *Handler) listTemplates(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	after, limit := p.after(), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.Templates(r.Context(), scopeOf(r).projectID(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(t templateView) string { return t.Name }))
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

// createTemplateReq is the body of POST /projects/{project}/templates. Flux is the template's
// Flux side (fluxspec.Template), laid over the kind's built-in one.
type createTemplateReq struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Kind        string          `json:"kind"`
	Form        json.RawMessage `json:"form"`
	Flux        json.RawMessage `json:"flux"`
}

// createTemplate saves a partial form of a built-in kind under a name in the project.
func (h *Handler) createTemplate(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(w, r)
	var q createTemplateReq
	if err == nil {
		raw, _ := json.Marshal(obj)
		err = decodeStrict(raw, &q, "")
	}
	var t *TemplateView
	if err == nil {
		t, err = h.CreateTemplate(r, q.Name, q.Description, q.Kind, q.Form, q.Flux)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// TemplateView is a deploy template, built-in or saved.
type TemplateView = templateView

// Templates returns the built-in templates, then the project's saved ones by name: at most
// limit, those after the template named after ("": from the first built-in one).
func (h *Handler) Templates(ctx context.Context, projectID int64, after string, limit int) ([]TemplateView, error) {
	items := []templateView{}
	start, savedAfter := 0, after
	if after != "" {
		start = len(builtins) // a saved template's name: the built-in ones came before it
		for i, b := range builtins {
			if b.Name == after {
				start, savedAfter = i+1, ""
			}
		}
	}
	for i := start; i < len(builtins) && len(items) < limit; i++ {
		items = append(items, builtins[i])
	}
	if len(items) == limit {
		return items, nil
	}
	saved, err := h.store.ListDeployTemplates(ctx, h.store.Pool(), projectID, savedAfter, limit-len(items))
	if err != nil {
		return nil, err
	}
	for i := range saved {
		items = append(items, savedView(&saved[i]))
	}
	return items, nil
}

// CreateTemplate saves form (a partial deploy form of kind) and flux (its Flux side, nil for
// the kind's own) as template name of the scoped project; every field they set is validated
// as a deploy would.
func (h *Handler) CreateTemplate(r *http.Request, name, description, kind string, form, flux json.RawMessage) (*TemplateView, error) {
	q := createTemplateReq{Name: name, Description: description, Kind: kind, Form: form, Flux: flux}
	if err := q.check(); err != nil {
		return nil, err
	}
	var t *store.DeployTemplate
	if err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		sc := scopeOf(r)
		var err error
		t, err = h.store.CreateDeployTemplate(ctx, tx, store.DeployTemplate{
			ProjectID: sc.Project.ID, Name: q.Name, Description: q.Description, Kind: q.Kind, Form: q.Form, Flux: q.Flux, CreatedBy: &sc.Principal.UserID,
		})
		if c, ok := store.IsUniqueViolation(err); ok && c == "deploy_templates_project_id_name_key" {
			return nil, &httpError{Status: http.StatusConflict, Field: "name", Msg: fmt.Sprintf("project %s already has a template %q", sc.Project.Slug, q.Name)}
		}
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "deploy_template", TargetID: t.ID, After: t, Message: "saved template " + t.Name + " (" + t.Kind + ")"}, nil
	}); err != nil {
		return nil, err
	}
	v := savedView(t)
	return &v, nil
}

// KindOf returns the built-in kind of template name of the project (a built-in's own name).
func (h *Handler) KindOf(ctx context.Context, projectID int64, name string) (string, error) {
	if manifest.IsKind(name) {
		return name, nil
	}
	t, err := h.store.DeployTemplateByName(ctx, h.store.Pool(), projectID, name)
	if err != nil {
		return "", err
	}
	return t.Kind, nil
}

// check validates a template: its name, kind, and every field its form sets.
func (q *createTemplateReq) check() error {
	switch {
	case !nameRE.MatchString(q.Name):
		return errBadRequest("name", "must be a DNS label (lowercase letters, digits and '-'), got %q", q.Name)
	case manifest.IsKind(q.Name):
		return errBadRequest("name", "%q is a built-in template's name", q.Name)
	case !manifest.IsKind(q.Kind):
		return errBadRequest("kind", "must be one of %v, got %q", manifest.Kinds(), q.Kind)
	case len(q.Description) > 2000:
		return errBadRequest("description", "at most 2000 characters")
	}
	if len(q.Form) == 0 || string(q.Form) == "null" {
		q.Form = json.RawMessage(`{}`)
	}
	var f manifest.Form
	if err := decodeStrict(q.Form, &f, "form."); err != nil {
		return err
	}
	if err := f.ValidateTemplate(q.Kind); err != nil {
		return prefixField("form.", formError(err))
	}
	if len(q.Flux) == 0 || string(q.Flux) == "null" {
		q.Flux = json.RawMessage(`{}`)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(q.Flux, &obj) != nil {
		return errBadRequest("flux", "must be a JSON object: the template's Flux side (gitRepository, kustomization, helmRelease)")
	}
	_, _, err := effectiveFlux(q.Kind, []json.RawMessage{q.Flux}, true)
	return err
}

// deleteTemplate deletes a saved template; deployments made from it keep their forms.
func (h *Handler) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	if err := h.DeleteTemplate(r, chi.URLParam(r, "name")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DeleteTemplate deletes saved template name of the scoped project; built-ins stay.
func (h *Handler) DeleteTemplate(r *http.Request, name string) error {
	if manifest.IsKind(name) {
		return errBadRequest("name", "built-in templates cannot be deleted")
	}
	return h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		t, err := h.store.DeleteDeployTemplate(ctx, tx, scopeOf(r).projectID(), name)
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "deploy_template", TargetID: t.ID, Before: t, Message: "deleted template " + t.Name}, nil
	})
}

// prefixField prefixes the field of a 400 with p.
func prefixField(p string, err error) error {
	var he *httpError
	if errors.As(err, &he) && he.Field != "" {
		he.Field = p + he.Field
	}
	return err
}
