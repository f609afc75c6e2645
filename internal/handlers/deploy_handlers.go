package handlers

import (
	"net/http"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// deploy creates a deployment to the environment. The body is a typed deploy form:
//
//	{"method": "gitops-ui", "template": "web-app", "app": "api", "image": "ghcr.io/acme/api",
//	 "tag": "1.4.3", "replicas": 3, "ports": [{"container_port": 8080}], ...}
//
// It answers 201 with the pending deployment; the commit_push job pushes it.
func (h *Handler) deploy(w http.ResponseWriter, r *http.Request) {
	q, err := h.readGitopsDeploy(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := h.createGitopsDeployment(r.Context(), r, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// previewDeploy answers what the same body would write: the files, and a unified diff
// against the branch head. Nothing is recorded or pushed.
func (h *Handler) previewDeploy(w http.ResponseWriter, r *http.Request) {
	q, err := h.readGitopsDeploy(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := h.previewGitopsDeployment(r.Context(), r, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// readGitopsDeploy reads a deploy body with method gitops-ui (the default).
func (h *Handler) readGitopsDeploy(w http.ResponseWriter, r *http.Request) (*gitopsDeployReq, error) {
	obj, err := readObject(w, r)
	if err != nil {
		return nil, err
	}
	method, err := takeString(obj, "method")
	if err != nil {
		return nil, err
	}
	if method != "" && method != store.MethodGitopsUI {
		return nil, errBadRequest("method", "must be %q here, got %q", store.MethodGitopsUI, method)
	}
	return h.decodeGitopsDeploy(r.Context(), scopeOf(r), obj)
}
