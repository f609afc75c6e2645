package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// validation is the answer of POST …/repositories/{id}/validate: one check of the
// repository's own branch and path, and one per environment that deploys to it.
type validation struct {
	Valid  bool          `json:"valid"`
	Checks []checkResult `json:"checks"`
}

// checkResult is one checked branch and path. Field names what to fix when OK is false.
type checkResult struct {
	Target string `json:"target"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	OK     bool   `json:"ok"`
	Field  string `json:"field,omitempty"`
	Error  string `json:"error,omitempty"`
}

// validateRepository checks that fluxbridge could push where deploys would go: the server
// answers, the credentials may push (SSH: the host key is in known_hosts), the branch exists
// and the path is a directory or can become one. It reads, never writes.
func (h *Handler) validateRepository(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	resp, err := h.validate(r.Context(), r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// Validation is the outcome of checking a repository: its own branch and path, and one check
// per environment that deploys to it.
type Validation = validation

// ValidateRepository checks that fluxbridge could push where deploys to repository id would
// go; it reads, never writes.
func (h *Handler) ValidateRepository(r *http.Request, id int64) (*Validation, error) {
	return h.validate(r.Context(), r, id)
}

func (h *Handler) validate(ctx context.Context, r *http.Request, id int64) (*validation, error) {
	sc := scopeOf(r)
	if h.git == nil {
		return nil, &httpError{Status: http.StatusServiceUnavailable, Msg: "validation is not available: the receiver has no Git cache configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, gitReadTimeout)
	defer cancel()
	repo, err := h.projectRepo(ctx, h.store.Pool(), r, id, false)
	if err != nil {
		return nil, err
	}
	rc, err := repo.Gitops()
	if err != nil {
		return nil, errConflictf("gitops_config", "%v", err)
	}
	v := &validation{Valid: true, Checks: []checkResult{h.check(ctx, repo, "repository", rc.Branch, rc.Path)}}
	envs, err := h.store.ProjectEnvironments(ctx, h.store.Pool(), sc.Project.ID)
	if err != nil {
		return nil, err
	}
	if repo.GitopsEnabled {
		for i := range envs {
			esc := &reqScope{Action: sc.Action, Project: sc.Project, Env: &envs[i]}
			target := "environment " + envs[i].Name
			t, err := h.resolveTarget(ctx, h.store.Pool(), esc, "")
			var he *httpError
			switch {
			case errors.As(err, &he):
				if ec, _ := envs[i].Gitops(); ec.Repository != repo.Name && he.Field == "gitops_config.repository" {
					continue // the environment names another repository, or several exist
				}
				v.Checks = append(v.Checks, checkResult{Target: target, Field: he.Field, Error: he.Msg})
				continue
			case err != nil:
				return nil, err
			case t.repo.ID != repo.ID:
				continue
			}
			v.Checks = append(v.Checks, h.check(ctx, repo, target, t.branch, t.dir))
		}
	}
	for _, c := range v.Checks {
		v.Valid = v.Valid && c.OK
	}
	return v, nil
}

// check runs gitops.Writer.Check for one branch and directory.
func (h *Handler) check(ctx context.Context, repo *store.Repository, target, branch, dir string) checkResult {
	c := checkResult{Target: target, Branch: branch, Path: dir}
	gr, err := jobs.GitRepo(ctx, h.secrets, repo, branch)
	if err == nil {
		err = h.git.Check(ctx, gr, dir)
	}
	if err == nil {
		c.OK = true
		return c
	}
	var he *httpError
	if errors.As(gitError(err, &deployTarget{branch: branch}), &he) {
		c.Field, c.Error = he.Field, he.Msg
	} else {
		c.Error = err.Error()
	}
	return c
}
