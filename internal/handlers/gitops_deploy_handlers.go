package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// defaultKind is the template of a deploy that names none.
const defaultKind = manifest.KindMicroservice

// gitReadTimeout bounds the Git reads of a preview or a validation, inside the receiver's
// write timeout.
const gitReadTimeout = 30 * time.Second

// gitopsDeployReq is a gitops-ui deploy: a template (built-in kind or saved template) and the
// form, the saved template's form overlaid with the request's fields (a JSON merge patch), and
// the Flux side, the kind's built-in one overlaid with the saved template's and the request's
// "flux" (merge patches too).
type gitopsDeployReq struct {
	Kind     string
	Template *store.DeployTemplate // nil for a built-in template
	Form     manifest.Form
	Flux     *fluxspec.Template
}

// decodeGitopsDeploy reads a deploy body whose method was already taken out of obj.
func (h *Handler) decodeGitopsDeploy(ctx context.Context, sc *reqScope, obj map[string]json.RawMessage) (*gitopsDeployReq, error) {
	name, err := takeString(obj, "template")
	if err != nil {
		return nil, err
	}
	reqFlux := obj["flux"]
	delete(obj, "flux")
	q := &gitopsDeployReq{Kind: name}
	base := json.RawMessage(`{}`)
	switch {
	case name == "":
		q.Kind = defaultKind
	case manifest.IsKind(name):
	default:
		t, err := h.store.DeployTemplateByName(ctx, h.store.Pool(), sc.Project.ID, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadRequest("template", "%q is neither a built-in template (%v) nor a saved template of project %s", name, manifest.Kinds(), sc.Project.Slug)
		}
		if err != nil {
			return nil, err
		}
		q.Template, q.Kind, base = t, t.Kind, t.Form
	}
	rest, _ := json.Marshal(obj)
	merged, err := mergePatch(base, rest)
	if err != nil {
		return nil, errBadRequest("", "%v", err)
	}
	if err := decodeStrict(merged, &q.Form, ""); err != nil {
		return nil, err
	}
	if err := q.Form.Validate(q.Kind); err != nil {
		return nil, formError(err)
	}
	if string(reqFlux) == "null" {
		reqFlux = nil
	}
	if reqFlux != nil && !isJSONObject(reqFlux) {
		return nil, errBadRequest("flux", "must be a JSON object (gitRepository, kustomization, helmRelease), laid over the template's")
	}
	patches := []json.RawMessage{reqFlux}
	if q.Template != nil {
		patches = []json.RawMessage{q.Template.Flux, reqFlux}
	}
	if _, q.Flux, err = effectiveFlux(q.Kind, patches, false); err != nil {
		return nil, err
	}
	return q, nil
}

// isJSONObject tells whether raw is a JSON object.
func isJSONObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// formError turns a *manifest.FieldError into a 400 naming the field.
func formError(err error) error {
	var fe *manifest.FieldError
	if errors.As(err, &fe) {
		return errBadRequest(fe.Field, "%s", fe.Msg)
	}
	return err
}

// gitopsDeployResp is a created gitops-ui deployment, where it goes, and the approval request
// holding it in an environment that requires approvals.
type gitopsDeployResp struct {
	Deployment *store.Deployment `json:"deployment"`
	Approval   *approvalView     `json:"approval,omitempty"`
	Target     targetView        `json:"target"`
	// Kustomization is the environment's Kustomization, and Source the GitRepository it reads
	// when fluxbridge manages it; a first deploy creates them.
	Kustomization fluxObjectView  `json:"kustomization"`
	Source        *fluxObjectView `json:"source,omitempty"`
	// HelmRelease and ChartSource are a helm-app's HelmRelease and the source of its chart
	// (none when the chart is in the environment's own branch, read by Source).
	HelmRelease *fluxObjectView `json:"helm_release,omitempty"`
	ChartSource *fluxObjectView `json:"chart_source,omitempty"`
	// Note says what people must do themselves, if anything.
	Note string `json:"note,omitempty"`
	// ImageAutomation names the app's image automation objects when the form asks for them.
	ImageAutomation *imageAutomationView `json:"image_automation,omitempty"`
}

// targetView shows where a deploy goes in Git.
type targetView struct {
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	Path       string `json:"path"`
	Namespace  string `json:"namespace"`
	Template   string `json:"template"`
	Kind       string `json:"kind"`
}

// fluxObjectView shows a Flux object a deploy relies on: the environment's Kustomization, or
// the GitRepository it reads.
type fluxObjectView struct {
	ID        int64  `json:"id,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Created is true when the deploy creates the object: the environment had none. Changed is
	// true when the deploy changes an existing object's config (a helm-app's HelmRelease).
	Created bool            `json:"created"`
	Changed bool            `json:"changed,omitempty"`
	Config  json.RawMessage `json:"config"`
	// YAML is the object as fluxbridge applies it (previews only).
	YAML string `json:"yaml,omitempty"`
}

// views shows the environment's Flux objects; withYAML renders them as they are applied.
func (f *envFlux) views(sc *reqScope, t *deployTarget, withYAML bool) (k fluxObjectView, src *fluxObjectView) {
	k = objectView(sc, t, f.kust, f.newKust, withYAML)
	if f.source != nil || f.newSource != nil {
		s := objectView(sc, t, f.source, f.newSource, withYAML)
		src = &s
	}
	return k, src
}

// objectView shows the row res, or the planned row nr before it is created; Created says
// whether the deploy creates it (nr is set).
func objectView(sc *reqScope, t *deployTarget, res *store.Resource, nr *store.NewResource, withYAML bool) fluxObjectView {
	var id int64
	o := nr
	if res != nil {
		id = res.ID
		o = &store.NewResource{ProjectID: res.ProjectID, EnvironmentID: res.EnvironmentID, Cluster: res.Cluster,
			Kind: res.Kind, Namespace: res.Namespace, Name: res.Name, Config: res.Config}
	}
	v := fluxObjectView{ID: id, Kind: o.Kind, Name: o.Name, Namespace: o.Namespace, Created: nr != nil, Config: o.Config}
	if withYAML {
		v.YAML = objectYAML(sc, t, o, id)
	}
	return v
}

// objectYAML renders a resource's object as the apply job builds it, `flux export` style; ""
// when it cannot be built.
func objectYAML(sc *reqScope, t *deployTarget, nr *store.NewResource, id int64) string {
	spec, err := fluxspec.Decode(nr.Kind, nr.Config)
	if err != nil {
		return ""
	}
	ft := &fluxspec.Target{Namespace: nr.Namespace, Name: nr.Name, Cluster: nr.Cluster, ResourceID: id, Project: sc.Project.Slug,
		Repo: &fluxspec.RepoSettings{URL: t.repo.URL, HasCredentials: t.repo.CredentialRef != ""}}
	if nr.EnvironmentID != nil {
		ft.Environment = sc.Env.Name
		ft.Env, _ = fluxspec.ParseEnvSettings(sc.Env.GitopsConfig)
		if fluxspec.IsApplier(nr.Kind) {
			ft.ServiceAccount = envServiceAccount(sc.Project.Slug, sc.Env.Name) // as the apply job confines it
		}
	}
	obj, err := fluxspec.Build(spec, ft)
	if err != nil {
		return ""
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return ""
	}
	y, err := flux.ExportYAML([]*unstructured.Unstructured{{Object: u}})
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(string(y), "---\n")
}

func (q *gitopsDeployReq) view(t *deployTarget, app string) targetView {
	v := targetView{Repository: t.repo.Name, Branch: t.branch, Path: t.appDir(app), Namespace: t.namespace, Template: q.Kind, Kind: q.Kind}
	if q.Template != nil {
		v.Template = q.Template.Name
	}
	return v
}

// createGitopsDeployment records a gitops-ui deployment in tx and submits its commit_push job
// through the environment's approval gate: enqueued at once, or held until enough people
// approve (the deployment then waits in awaiting_approval). The rendered files are checked
// here (a 400 names the field); the job pushes them.
//
// A first deploy to an environment without a Kustomization bootstraps it in the same
// transaction (envFlux): the GitRepository of the branch unless the cluster has one, and the
// Kustomization applying the environment's directory. The Flux objects the deploy creates or
// changes are applied by its commit_push job, in the transaction that records the push
// (before the reconcile request), so:
//
//   - Flux first sees the environment with its directory in Git, as `flux bootstrap` pushes
//     before it applies: a GitRepository fetched before the push would hand the new
//     Kustomization a commit without the directory, a failure reported for nothing;
//   - they go through the deploy's approval gate: in an environment that requires approvals
//     the held job carries them, so nothing the deploy asks for reaches the cluster before
//     the approvals do, not even a Kustomization that would apply whatever the directory
//     already holds. The approvers read them in the request's summary.
func (h *Handler) createGitopsDeployment(ctx context.Context, tx pgx.Tx, r *http.Request, q *gitopsDeployReq) (*gitopsDeployResp, *auditChange, error) {
	sc := scopeOf(r)
	t, err := h.resolveTarget(ctx, tx, sc, q.Form.Namespace)
	if err != nil {
		return nil, nil, err
	}
	opts := t.renderOptions(sc, q.Form)
	if _, err := manifest.Render(q.Kind, q.Form, opts); err != nil {
		return nil, nil, formError(err)
	}
	g, err := h.gate(ctx, tx, r)
	if err != nil {
		return nil, nil, err
	}
	ef, err := h.planEnvFlux(ctx, tx, sc, t, q.Flux)
	if err != nil {
		return nil, nil, err
	}
	if err := h.checkBootstrap(ctx, tx, sc, ef); err != nil {
		return nil, nil, err
	}
	helm, err := h.planHelmApp(ctx, tx, sc, t, ef, q)
	if err != nil {
		return nil, nil, err
	}
	apply, err := h.ensureEnvFlux(ctx, tx, ef, g.Held())
	if err != nil {
		return nil, nil, err
	}
	k := ef.kust
	// A pinned Kustomization reads a fixed commit: a deploy would be pushed but never applied.
	if pin, err := h.store.PinningRollback(ctx, tx, k.ID); err == nil {
		return nil, nil, errConflictf("environment", "%s is pinned to commit %.12s by rollback %d of %s: unlock %s first (POST …/apps/%s/unlock)",
			sc.Env.Name, pin.TargetCommit, pin.ID, pin.App, pin.App, pin.App)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	ia, iaApply, err := h.syncImageAutomation(ctx, tx, sc, t, k, q.Form, g.Held())
	if err != nil {
		return nil, nil, err
	}
	helmApply, err := h.syncHelmApp(ctx, tx, sc, helm, q.Form.App, g.Held())
	if err != nil {
		return nil, nil, err
	}
	if ef.managed {
		apply = append(apply, iaApply...)
		apply = append(apply, helmApply...)
	}
	status := store.DeployPending
	if g.Held() {
		status = store.DeployAwaitingApproval
	}
	d, err := h.store.CreateDeployment(ctx, tx, store.NewDeployment{
		ProjectID: sc.Project.ID, EnvironmentID: sc.Env.ID, GitopsResourceID: &k.ID, Method: store.MethodGitopsUI,
		Status: status, App: q.Form.App, RequestedBy: &sc.Principal.UserID,
	})
	if err != nil {
		return nil, nil, err
	}
	form, _ := json.Marshal(q.Form)
	spec := store.DeploymentSpec{
		DeploymentID: d.ID, RepositoryID: t.repo.ID, Branch: t.branch, Path: t.appDir(q.Form.App),
		Namespace: t.namespace, Kind: q.Kind, Form: form, ImagePolicy: opts.ImagePolicy,
	}
	if q.Template != nil {
		spec.TemplateID, spec.TemplateName = &q.Template.ID, q.Template.Name
	}
	if _, err := h.store.CreateDeploymentSpec(ctx, tx, spec); err != nil {
		return nil, nil, err
	}
	what := imageOf(q.Form)
	if q.Kind == manifest.KindHelmApp {
		what = "(chart " + chartLabel(q.Flux.HelmRelease) + ")"
	}
	summary := fmt.Sprintf("deploy %s %s to %s (gitops-ui: %s on %s of %s)", q.Form.App, what, sc.Env.Name, spec.Path, t.branch, t.repo.Name)
	if names := resourceNames(apply); names != "" {
		summary += "; applies " + names + " in cluster " + sc.Env.Cluster
	}
	args := jobs.CommitPushArgs{DeploymentID: d.ID, Apply: carriedVersions(apply)}
	sub, err := g.Submit(ctx, tx, approval.TargetDeployment, d.ID, summary, args, nil)
	if err != nil {
		return nil, nil, err
	}
	if sub.Request != nil { // the Flux objects the deploy creates or changes are its proposals
		if err := h.store.AttachUnclaimedProposals(ctx, tx, sc.Project.ID, sub.Request.ID); err != nil {
			return nil, nil, err
		}
	}
	resp := &gitopsDeployResp{Deployment: d, Target: q.view(t, q.Form.App), ImageAutomation: ia}
	resp.Kustomization, resp.Source = ef.views(sc, t, false)
	resp.HelmRelease, resp.ChartSource = helm.views(sc, t, false)
	if !ef.managed && (ef.newKust != nil || ef.newSource != nil || resp.HelmRelease != nil) {
		resp.Note = fmt.Sprintf(webhookOnlyNote, sc.Env.Cluster)
	}
	if sub.Request != nil {
		resp.Approval = &approvalView{ApprovalRequest: sub.Request, Votes: []store.Vote{}}
	}
	details := submittedDetails(sub)
	details["repository"], details["branch"], details["path"], details["kind"] = t.repo.Name, t.branch, spec.Path, q.Kind
	if q.Template != nil {
		details["template"] = q.Template.Name
	}
	if ia != nil {
		details["image_automation"] = ia
	}
	if resp.HelmRelease != nil {
		details["helm_release_id"] = resp.HelmRelease.ID
	}
	if len(apply) > 0 {
		details["apply_resource_ids"] = resourceIDs(apply)
	}
	return resp, &auditChange{TargetType: "deployment", TargetID: d.ID, After: d, Message: summary, Details: details}, nil
}

// resourceIDs lists the IDs of rs.
func resourceIDs(rs []*store.Resource) []int64 {
	out := make([]int64, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// resourceNames names rs for an approver: "GitRepository flux-system/a, Kustomization …".
func resourceNames(rs []*store.Resource) string {
	names := make([]string, 0, len(rs))
	for _, r := range rs {
		names = append(names, r.Kind+" "+r.Namespace+"/"+r.Name)
	}
	return strings.Join(names, ", ")
}

// previewResp is what a deploy would write, without writing it.
type previewResp struct {
	Target targetView `json:"target"`
	// Head is the branch head compared against; "" for an empty repository.
	Head  string        `json:"head"`
	Files []previewFile `json:"files"`
	// Changed lists the paths the deploy would add, modify or delete; empty means a deploy
	// would make no commit.
	Changed []string `json:"changed"`
	Diff    string   `json:"diff"`
	// Kustomization and Source are the environment's Flux objects as the deploy would find or
	// create them, with their YAML; HelmRelease and ChartSource a helm-app's.
	Kustomization fluxObjectView  `json:"kustomization"`
	Source        *fluxObjectView `json:"source,omitempty"`
	HelmRelease   *fluxObjectView `json:"helm_release,omitempty"`
	ChartSource   *fluxObjectView `json:"chart_source,omitempty"`
	Note          string          `json:"note,omitempty"`
}

// previewFile is one rendered file, as it would be committed (with the fluxbridge marker).
type previewFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// previewGitopsDeployment renders the form and diffs it against the branch head: no row, no
// job, no commit. It reads the repository (cached clone) with the request's deadline.
func (h *Handler) previewGitopsDeployment(ctx context.Context, r *http.Request, q *gitopsDeployReq) (*previewResp, error) {
	sc := scopeOf(r)
	if h.git == nil {
		return nil, &httpError{Status: http.StatusServiceUnavailable, Msg: "previews are not available: the receiver has no Git cache configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, gitReadTimeout)
	defer cancel()
	t, err := h.resolveTarget(ctx, h.store.Pool(), sc, q.Form.Namespace)
	if err != nil {
		return nil, err
	}
	files, err := manifest.Render(q.Kind, q.Form, t.renderOptions(sc, q.Form))
	if err != nil {
		return nil, formError(err)
	}
	repo, err := jobs.GitRepo(ctx, h.secrets, t.repo, t.branch)
	if err != nil {
		return nil, gitError(err, t)
	}
	changes, err := jobs.DeployChanges(t.appDir(q.Form.App), t.namespace, files)
	if err != nil {
		return nil, formError(err)
	}
	p, err := h.git.Preview(ctx, repo, changes)
	if err != nil {
		return nil, gitError(err, t)
	}
	resp := &previewResp{Target: q.view(t, q.Form.App), Head: p.Head, Changed: p.Files, Diff: p.Diff}
	if resp.Changed == nil {
		resp.Changed = []string{}
	}
	for _, c := range changes {
		if !c.Delete && (!c.Create || slices.Contains(resp.Changed, c.Path)) {
			resp.Files = append(resp.Files, previewFile{Path: c.Path, Content: string(gitops.Mark(c.Content))})
		}
	}
	ef, err := h.planEnvFlux(ctx, h.store.Pool(), sc, t, q.Flux)
	if err != nil {
		return nil, err
	}
	helm, err := h.planHelmApp(ctx, h.store.Pool(), sc, t, ef, q)
	if err != nil {
		return nil, err
	}
	resp.Kustomization, resp.Source = ef.views(sc, t, true)
	resp.HelmRelease, resp.ChartSource = helm.views(sc, t, true)
	if !ef.managed && (ef.newKust != nil || ef.newSource != nil || resp.HelmRelease != nil) {
		resp.Note = fmt.Sprintf(webhookOnlyNote, sc.Env.Cluster)
	}
	return resp, nil
}

// gitError turns a Git failure during a preview or validation into a response that says
// what to fix; the error text is already free of credentials.
func gitError(err error, t *deployTarget) error {
	var ce *gitops.ConflictError
	var pe *gitops.PathError
	switch {
	case errors.As(err, &ce):
		return &httpError{Status: http.StatusConflict, Field: "app", Msg: err.Error() + "; fluxbridge never overwrites such a file: revert the hand edit first"}
	case errors.As(err, &pe):
		return errBadRequest("environment.gitops_config.path", "%v", err)
	case errors.Is(err, jobs.ErrCredentialsMissing), errors.Is(err, secrets.ErrInvalidRef):
		return errConflictf("auth", "%v; rotate the repository's credentials", err)
	case errors.Is(err, gitops.ErrAuth):
		return &httpError{Status: http.StatusBadGateway, Field: "auth", Msg: err.Error() + "; check the repository's credentials (and known_hosts for SSH)"}
	case errors.Is(err, gitops.ErrRepoNotFound):
		return &httpError{Status: http.StatusBadGateway, Field: "url", Msg: err.Error()}
	case errors.Is(err, gitops.ErrBranchNotFound):
		return errConflictf("branch", "%v; create branch %s or change gitops_config.branch", err, t.branch)
	case errors.Is(err, gitops.ErrInvalidArgument):
		return errBadRequest("url", "%v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &httpError{Status: http.StatusGatewayTimeout, Msg: "the Git server did not answer in time"}
	}
	return &httpError{Status: http.StatusBadGateway, Msg: "reading the repository failed: " + err.Error()}
}

func imageOf(f manifest.Form) string {
	if f.Tag == "" {
		return f.Image
	}
	return f.Image + ":" + f.Tag
}
