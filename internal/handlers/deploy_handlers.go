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
	q, err := h.decodeGitopsDeploy(r.Context(), scopeOf(r), obj)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var resp *gitopsDeployResp
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var ch *auditChange
		resp, ch, err = h.createGitopsDeployment(ctx, tx, r, q)
		return ch, err
	}) {
		return
	}
	status := http.StatusCreated
	if resp.Approval != nil {
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
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
	var q *gitopsDeployReq
	if err == nil {
		q, err = h.decodeGitopsDeploy(r.Context(), scopeOf(r), obj)
	}
	var resp *previewResp
	if err == nil {
		resp, err = h.previewGitopsDeployment(r.Context(), r, q)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
