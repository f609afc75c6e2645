package handlers

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// createGitopsDeploy creates a gitops-ui deployment from a typed deploy form (obj, the decoded
// body of POST …/deployments with method gitops-ui):
//
//	{"method": "gitops-ui", "template": "web-app", "app": "api", "image": "ghcr.io/acme/api",
//	 "tag": "1.4.3", "replicas": 3, "ports": [{"container_port": 8080}], ...}
//
// It answers 201 with the pending deployment, whose commit_push job pushes it, or, in an
// environment that requires approvals, 202 with the approval request holding that job.
func (h *Handler) createGitopsDeploy(w http.ResponseWriter, r *http.Request, obj map[string]json.RawMessage) {
	delete(obj, "method")
	resp, err := h.Deploy(r, obj)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if resp.Approval != nil {
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
}

// DeployResult is a created gitops-ui deployment (see gitopsDeployResp).
type DeployResult = gitopsDeployResp

// FluxObjectView is a Flux object a deploy relies on (see fluxObjectView).
type FluxObjectView = fluxObjectView

// DeployPreview is what a deploy would write (see previewResp).
type DeployPreview = previewResp

// Deploy is the typed core of a gitops-ui deploy, for the API and the console: obj is the deploy
// form as the API takes it (template, app, image, tag, replicas, ports, env, …; JSON field
// names are the error fields). r carries the authorized scope of action deployment.create.
func (h *Handler) Deploy(r *http.Request, obj map[string]json.RawMessage) (*DeployResult, error) {
	q, err := h.decodeGitopsDeploy(r.Context(), scopeOf(r), obj)
	if err != nil {
		return nil, err
	}
	var resp *gitopsDeployResp
	err = h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var ch *auditChange
		resp, ch, err = h.createGitopsDeployment(ctx, tx, r, q)
		return ch, err
	})
	return resp, err
}

// PreviewDeploy is the typed core of a deploy preview: what Deploy with the same form would
// write, the files and a unified diff against the branch head. Nothing is recorded.
func (h *Handler) PreviewDeploy(r *http.Request, obj map[string]json.RawMessage) (*DeployPreview, error) {
	q, err := h.decodeGitopsDeploy(r.Context(), scopeOf(r), obj)
	if err != nil {
		return nil, err
	}
	return h.previewGitopsDeployment(r.Context(), r, q)
}

// previewDeploy answers what the same body would write: the files, and a unified diff
// against the branch head. Nothing is recorded or pushed, so no audit row is written.
func (h *Handler) previewDeploy(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	method, err := takeString(obj, "method")
	if err == nil && method != "" && method != store.MethodGitopsUI {
		err = errBadRequest("method", "must be %q here, got %q", store.MethodGitopsUI, method)
	}
	var resp *previewResp
	if err == nil {
		resp, err = h.PreviewDeploy(r, obj)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
