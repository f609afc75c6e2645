package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type option struct{ Value, Label string }

// formErrors is what the form shows: a message per input and a summary at the top.
type formErrors struct {
	byName  map[string]string
	Summary []summaryItem
}

type summaryItem struct{ Input, Label, Msg string }

type deployPage struct {
	Env        *store.Environment
	Form       deployForm
	Errors     *formErrors
	Templates  []option
	ProbeTypes []option
	Approvals  int
	// CanSaveTemplate shows "Save as template"; TemplateName and TemplateDescription keep
	// what was typed there.
	CanSaveTemplate                   bool
	TemplateName, TemplateDescription string
}

// fieldData is one input of the form.
type fieldData struct {
	ID, Name, Label, Value, Hint, Type, Err string
	Options                                 []option
}

func inputID(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, name)
}

func (e *formErrors) msg(name string) string {
	if e == nil {
		return ""
	}
	return e.byName[name]
}

func newField(e *formErrors, name, label, value, hint string, typ any) fieldData {
	f := fieldData{ID: inputID(name), Name: name, Label: label, Value: value, Hint: hint, Err: e.msg(name)}
	switch t := typ.(type) {
	case string:
		f.Type = t
	case []option:
		f.Options = t
	}
	return f
}

// rowCtx is one row of a list (ports, env) with its index; -1 renders the blank template row.
type rowCtx struct {
	E    *formErrors
	List string
	I    int
	Row  any
}

func newRowCtx(e *formErrors, list string, i int, row any) rowCtx {
	return rowCtx{E: e, List: list, I: i, Row: row}
}

func (rc rowCtx) name(key string) string {
	idx := strconv.Itoa(rc.I)
	if rc.I < 0 {
		idx = "__i__"
	}
	return rc.List + "[" + idx + "]." + key
}

func (rc rowCtx) value(key string) string {
	switch r := rc.Row.(type) {
	case portRow:
		return map[string]string{"name": r.Name, "container_port": r.ContainerPort, "service_port": r.ServicePort}[key]
	case envRow:
		return map[string]string{"name": r.Name, "source": r.Source, "value": r.Value, "secret_key_ref.name": r.SecretName, "secret_key_ref.key": r.SecretKey}[key]
	}
	return ""
}

func rowField(rc rowCtx, key, label, hint string) fieldData {
	return newField(rc.E, rc.name(key), label, rc.value(key), hint, nil)
}

func rowSelect(rc rowCtx, key, label string, opts []option) fieldData {
	return newField(rc.E, rc.name(key), label, rc.value(key), "", opts)
}

// formTemplates bounds the saved templates the deploy form offers.
const formTemplates = 200

func (c *Console) deployData(r *http.Request, f deployForm, errs *formErrors) (*deployPage, error) {
	sc := handlers.ScopeOf(r)
	// The form's template list: the first formTemplates saved ones by name. Templates are
	// written by hand, a few per project; the templates page pages through any number.
	saved, err := c.store.ListDeployTemplates(r.Context(), c.store.Pool(), sc.Project.ID, "", formTemplates)
	if err != nil {
		return nil, err
	}
	p := &deployPage{Env: sc.Env, Form: f, Errors: errs,
		ProbeTypes: []option{{"", "Default (TCP on the first port)"}, {"http", "HTTP GET"}, {"tcp", "TCP"}}}
	for _, k := range manifest.Kinds() {
		p.Templates = append(p.Templates, option{k, "Built-in: " + k})
	}
	for _, t := range saved {
		p.Templates = append(p.Templates, option{t.Name, "Saved: " + t.Name + " (" + t.Kind + ")"})
	}
	if cfg, err := policy.ParseEnvConfig(sc.Env.GitopsConfig); err == nil {
		p.Approvals = cfg.Approvals(sc.Env.Kind)
	}
	p.CanSaveTemplate = c.core.Can(sc, "template.create", nil) == nil
	if r.Method == http.MethodPost {
		p.TemplateName, p.TemplateDescription = r.PostForm.Get("template_name"), r.PostForm.Get("template_description")
	}
	return p, nil
}

// deployPage shows the deploy form, blank or from ?template=&app=.
func (c *Console) deployPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := deployForm{Template: q.Get("template"), App: q.Get("app"), Ports: []portRow{{Name: "http", ContainerPort: "8080"}}}
	if f.Template == "" {
		f.Template = manifest.KindMicroservice
	}
	if kind, err := c.core.KindOf(r.Context(), handlers.ScopeOf(r).Project.ID, f.Template); err == nil && kind == manifest.KindHelmApp {
		f.Ports = nil // a chart brings its own ports
	}
	c.showForm(w, r, http.StatusOK, f, nil)
}

func (c *Console) showForm(w http.ResponseWriter, r *http.Request, status int, f deployForm, errs *formErrors) {
	if errs == nil {
		errs = &formErrors{}
	}
	p, err := c.deployData(r, f, errs)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "deploy", p)
}

// formFailure turns field errors (the console's own number parsing, or the core's 400 with a
// field) into what the form shows.
func formFailure(fe *fieldErrors, f handlers.Failure) *formErrors {
	out := &formErrors{byName: map[string]string{}}
	add := func(field, msg string) {
		in := inputFor(field)
		out.byName[in] = msg
		label := field
		if label == "" {
			label = "Deploy"
		}
		out.Summary = append(out.Summary, summaryItem{Input: inputID(in), Label: label, Msg: msg})
	}
	if fe != nil {
		for _, n := range fe.order {
			add(n, fe.byName[n])
		}
	}
	if f.Msg != "" {
		add(f.Field, f.Msg)
	}
	return out
}

func (c *Console) readForm(w http.ResponseWriter, r *http.Request) (deployForm, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	if err := r.ParseForm(); err != nil {
		c.Fail(w, r, failure(http.StatusBadRequest, "", "unreadable form: "+err.Error()))
		return deployForm{}, false
	}
	return parseDeployForm(r.PostForm), true
}

// formObject is the form as the core's deploy body, or the form again with its errors.
func (c *Console) formObject(w http.ResponseWriter, r *http.Request, f deployForm) (map[string]json.RawMessage, bool) {
	obj, fe := f.object()
	if !fe.empty() {
		c.showForm(w, r, http.StatusBadRequest, f, formFailure(fe, handlers.Failure{}))
		return nil, false
	}
	return obj, true
}

// formFailed shows what the core refused at its field; a denial is the 403 page.
func (c *Console) formFailed(w http.ResponseWriter, r *http.Request, f deployForm, err error) {
	fl := c.core.Failure(r, err)
	if fl.Status == http.StatusForbidden {
		c.Fail(w, r, fl)
		return
	}
	c.showForm(w, r, fl.Status, f, formFailure(nil, fl))
}

type hidden struct{ Name, Value string }

type diffLine struct{ Class, Text string }

type previewPage struct {
	Env       *store.Environment
	P         *handlers.DeployPreview
	Summary   string
	Diff      []diffLine
	Flux      []fluxObject
	Hidden    []hidden
	Approvals int
}

type fluxObject struct {
	Kind, Namespace, Name, YAML string
	Changed                     bool // an existing object the deploy changes
}

// deployPreview shows what a deploy would write (step "edit" goes back to the form with the
// values kept); a field the core refuses is shown at its input.
func (c *Console) deployPreview(w http.ResponseWriter, r *http.Request) {
	f, ok := c.readForm(w, r)
	if !ok {
		return
	}
	if r.PostForm.Get("step") == "edit" {
		c.showForm(w, r, http.StatusOK, f, nil)
		return
	}
	obj, ok := c.formObject(w, r, f)
	if !ok {
		return
	}
	pv, err := c.core.PreviewDeploy(r, obj)
	if err != nil {
		c.formFailed(w, r, f, err)
		return
	}
	sc := handlers.ScopeOf(r)
	p := previewPage{Env: sc.Env, P: pv, Diff: diffLines(pv.Diff)}
	if cfg, err := policy.ParseEnvConfig(sc.Env.GitopsConfig); err == nil {
		p.Approvals = cfg.Approvals(sc.Env.Kind)
	}
	replicas := f.Replicas
	if replicas == "" {
		replicas = "2"
	}
	p.Summary = fmt.Sprintf("%s replica(s) of %s:%s to %s, as a %s.", replicas, f.Image, f.Tag, sc.Env.Name, pv.Target.Kind)
	if pv.Target.Kind == manifest.KindHelmApp {
		p.Summary = fmt.Sprintf("%s to %s as a %s: a HelmRelease installs its chart.", f.App, sc.Env.Name, pv.Target.Kind)
	}
	for _, o := range []*handlers.FluxObjectView{&pv.Kustomization, pv.Source, pv.ChartSource, pv.HelmRelease} {
		if o != nil && (o.Created || o.Changed) {
			p.Flux = append(p.Flux, fluxObject{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, YAML: o.YAML, Changed: o.Changed})
		}
	}
	vals := f.values()
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.Hidden = append(p.Hidden, hidden{k, vals.Get(k)})
	}
	c.render(w, r, http.StatusOK, "preview", p)
}

func diffLines(d string) []diffLine {
	var out []diffLine
	for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
		cls := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"), strings.HasPrefix(l, "@@"):
			cls = "hunk"
		case strings.HasPrefix(l, "+"):
			cls = "add"
		case strings.HasPrefix(l, "-"):
			cls = "del"
		}
		out = append(out, diffLine{cls, l})
	}
	return out
}

// deploy creates the deployment through the core (approvals, audit and the push job inside)
// and goes to its live progress page.
func (c *Console) deploy(w http.ResponseWriter, r *http.Request) {
	f, ok := c.readForm(w, r)
	if !ok {
		return
	}
	obj, ok := c.formObject(w, r, f)
	if !ok {
		return
	}
	res, err := c.core.Deploy(r, obj)
	if err != nil {
		c.formFailed(w, r, f, err)
		return
	}
	msg := "Deploy saved: follow it below, from Git to the running pods."
	if res.Approval != nil {
		msg = "Deploy saved; it waits for approvals before anything is pushed."
	}
	setFlash(w, "ok", msg)
	redirect(w, r, fmt.Sprintf("/projects/%s/deployments/%d", handlers.ScopeOf(r).Project.Slug, res.Deployment.ID))
}
