package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// DeploymentDiff is the file diff of the commit a gitops-ui deployment pushed, read from the
// repository it pushed to.
type DeploymentDiff struct {
	gitops.CommitDiff
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
}

// DeploymentDiff reads what the commit of one of the scoped project's deployments changed. A
// deployment that pushed nothing (manual, or not pushed yet) is a 409 saying so; Git's
// failures say what to fix, free of credentials.
func (h *Handler) DeploymentDiff(r *http.Request, id int64) (*DeploymentDiff, error) {
	ctx, db := r.Context(), h.store.Pool()
	d, err := h.projectDeployment(r, id)
	if err != nil {
		return nil, err
	}
	spec, err := h.store.DeploymentSpecByID(ctx, db, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errConflictf("deployment_method", "deployment %d is %s: fluxbridge made no commit for it", id, d.DeploymentMethod)
	}
	if err != nil {
		return nil, err
	}
	if d.CommitSHA == "" {
		return nil, errConflictf("commit_sha", "deployment %d has not been pushed yet (%s)", id, d.Status)
	}
	if h.git == nil {
		return nil, &httpError{Status: http.StatusServiceUnavailable, Msg: "this receiver has no Git cache configured"}
	}
	repo, err := h.store.RepositoryByID(ctx, db, spec.RepositoryID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, gitReadTimeout)
	defer cancel()
	t := &deployTarget{branch: spec.Branch}
	gr, err := jobs.GitRepo(ctx, h.secrets, repo, spec.Branch)
	if err != nil {
		return nil, gitError(err, t)
	}
	cd, err := h.git.CommitDiff(ctx, gr, d.CommitSHA)
	if errors.Is(err, gitops.ErrRevisionNotFound) {
		return nil, errConflictf("commit_sha", "commit %s is no longer on branch %s of %s (was the branch rewritten?)", d.CommitSHA[:12], spec.Branch, repo.Name)
	}
	if err != nil {
		return nil, gitError(err, t)
	}
	if cd.Files == nil {
		cd.Files = []gitops.FileChange{}
	}
	return &DeploymentDiff{CommitDiff: cd, Repository: repo.Name, Branch: spec.Branch}, nil
}

// getDeploymentDiff answers GET /api/v1/projects/{project}/deployments/{id}/diff.
func (h *Handler) getDeploymentDiff(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	d, err := h.DeploymentDiff(r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
