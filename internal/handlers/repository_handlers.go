package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// createRepositoryReq is the body of POST /projects/{project}/repositories.
type createRepositoryReq struct {
	Name   string      `json:"name"`
	URL    string      `json:"url"`
	Auth   authInput   `json:"auth"`
	Gitops gitopsInput `json:"gitops"`
}

// repositoryResp is a repository as the API shows it: the row (credential_ref is a name, not
// a secret) and nothing of the credentials.
type repositoryResp struct {
	*store.Repository
}

// createRepository connects a repository: the row, and its credentials in the secret store.
func (h *Handler) createRepository(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(w, r)
	var q createRepositoryReq
	if err == nil {
		raw, _ := json.Marshal(obj)
		err = decodeStrict(raw, &q, "")
	}
	var repo *store.Repository
	if err == nil {
		repo, err = h.ConnectRepository(r, q)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, repositoryResp{repo})
}

// ConnectRepo is what connecting a repository takes: its name, URL, credentials and GitOps
// settings.
type ConnectRepo = createRepositoryReq

// RepoAuth is a repository's credentials as given (HTTPS or SSH).
type RepoAuth = authInput

// RepoGitops is a repository's GitOps settings as given.
type RepoGitops = gitopsInput

// ConnectRepository connects repository q to the scoped project: the row, and its credentials
// in the secret store (removed again if the transaction rolls back).
func (h *Handler) ConnectRepository(r *http.Request, q ConnectRepo) (*store.Repository, error) {
	var repo *store.Repository
	var ref string
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var ch *auditChange
		var err error
		repo, ref, ch, err = h.connectRepository(ctx, tx, r, &q)
		return ch, err
	})
	if err != nil {
		if ref != "" { // written before the transaction rolled back
			_ = h.secrets.Delete(context.WithoutCancel(r.Context()), ref)
		}
		return nil, err
	}
	return repo, nil
}

// connectRepository validates q, inserts the row and stores the credentials inside tx; the
// caller deletes the secret under the returned reference if tx rolls back.
func (h *Handler) connectRepository(ctx context.Context, tx pgx.Tx, r *http.Request, q *createRepositoryReq) (*store.Repository, string, *auditChange, error) {
	sc := scopeOf(r)
	if !nameRE.MatchString(q.Name) {
		return nil, "", nil, errBadRequest("name", "must be a DNS label (lowercase letters, digits and '-'), got %q", q.Name)
	}
	if err := checkRepoURL(q.URL); err != nil {
		return nil, "", nil, err
	}
	creds, err := q.Auth.check(q.URL)
	if err != nil {
		return nil, "", nil, err
	}
	cfg, err := q.Gitops.check()
	if err != nil {
		return nil, "", nil, err
	}
	rawCfg, _ := json.Marshal(cfg)
	ref := ""
	if creds != nil {
		if h.secrets == nil {
			return nil, "", nil, &httpError{Status: http.StatusServiceUnavailable, Msg: "no secret store is configured for credentials"}
		}
		ref = secrets.NewRef("repo-" + sc.Project.Slug + "-" + q.Name)
	}
	repo, err := h.store.CreateRepository(ctx, tx, store.NewRepository{
		ProjectID: sc.Project.ID, Name: q.Name, URL: q.URL, AuthType: q.Auth.Type, CredentialRef: ref,
		GitopsEnabled: q.Gitops.Enabled, GitopsConfig: rawCfg,
	})
	if c, ok := store.IsUniqueViolation(err); ok && c == "repositories_project_id_name_key" {
		return nil, "", nil, &httpError{Status: http.StatusConflict, Field: "name", Msg: fmt.Sprintf("project %s already has a repository %q", sc.Project.Slug, q.Name)}
	}
	if err != nil {
		return nil, "", nil, err
	}
	if err := h.checkRepoIsolation(ctx, tx, sc.Project, *repo); err != nil {
		return nil, "", nil, err
	}
	if creds != nil {
		if err := h.secrets.Put(ctx, ref, creds); err != nil {
			return nil, ref, nil, err
		}
	}
	return repo, ref, &auditChange{TargetType: "repository", TargetID: repo.ID, After: repo,
		Message: "connected repository " + repo.Name + " (" + repo.AuthType + ")"}, nil
}

// setGitops enables or disables GitOps on a repository and sets its branch, path and layout.
func (h *Handler) setGitops(w http.ResponseWriter, r *http.Request) {
	id, obj, err := h.idAndBody(w, r)
	var q gitopsInput
	if err == nil {
		raw, _ := json.Marshal(obj)
		err = decodeStrict(raw, &q, "gitops.")
	}
	var cfg store.RepoGitops
	if err == nil {
		cfg, err = q.check()
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rawCfg, _ := json.Marshal(cfg)
	var repo *store.Repository
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		before, err := h.projectRepo(ctx, tx, r, id, true)
		if err != nil {
			return nil, err
		}
		if repo, err = h.store.UpdateRepositoryGitops(ctx, tx, id, q.Enabled, rawCfg); err != nil {
			return nil, err
		}
		if err := h.checkRepoIsolation(ctx, tx, scopeOf(r).Project, *repo); err != nil {
			return nil, err
		}
		state := "disabled"
		if q.Enabled {
			state = fmt.Sprintf("enabled (branch %s, path %q, layout %s)", cfg.Branch, cfg.Path, cfg.Layout)
		}
		return &auditChange{TargetType: "repository", TargetID: id, Before: before, After: repo,
			Message: "GitOps " + state + " on repository " + repo.Name}, nil
	}) {
		return
	}
	writeJSON(w, http.StatusOK, repositoryResp{repo})
}

// rotateCredentials replaces a repository's credentials.
func (h *Handler) rotateCredentials(w http.ResponseWriter, r *http.Request) {
	id, obj, err := h.idAndBody(w, r)
	var q struct {
		Auth authInput `json:"auth"`
	}
	if err == nil {
		raw, _ := json.Marshal(obj)
		err = decodeStrict(raw, &q, "")
	}
	var repo *store.Repository
	if err == nil {
		repo, err = h.RotateCredentials(r, id, q.Auth)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, repositoryResp{repo})
}

// RotateCredentials replaces repository id's credentials. The new secret replaces the old one
// atomically under the same reference, so a push running meanwhile uses one or the other.
func (h *Handler) RotateCredentials(r *http.Request, id int64, auth RepoAuth) (*store.Repository, error) {
	var repo *store.Repository
	var stale string // a reference to delete once the change committed
	if err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		cur, err := h.projectRepo(ctx, tx, r, id, true)
		if err != nil {
			return nil, err
		}
		creds, err := auth.check(cur.URL)
		if err != nil {
			return nil, err
		}
		ref := cur.CredentialRef
		switch {
		case creds == nil:
			stale, ref = ref, ""
		case h.secrets == nil:
			return nil, &httpError{Status: http.StatusServiceUnavailable, Msg: "no secret store is configured for credentials"}
		case ref == "" || !secrets.ValidRef(ref):
			stale, ref = ref, secrets.NewRef("repo-"+scopeOf(r).Project.Slug+"-"+cur.Name)
		}
		if repo, err = h.store.UpdateRepositoryAuth(ctx, tx, id, auth.Type, ref); err != nil {
			return nil, err
		}
		if creds != nil {
			if err := h.secrets.Put(ctx, ref, creds); err != nil {
				return nil, err
			}
		}
		return &auditChange{TargetType: "repository", TargetID: id, Before: cur, After: repo,
			Message: "rotated the credentials of repository " + repo.Name + " (" + repo.AuthType + ")"}, nil
	}); err != nil {
		return nil, err
	}
	if stale != "" && secrets.ValidRef(stale) && h.secrets != nil {
		_ = h.secrets.Delete(context.WithoutCancel(r.Context()), stale)
	}
	return repo, nil
}

// idAndBody reads the {id} path parameter and the JSON body.
func (h *Handler) idAndBody(w http.ResponseWriter, r *http.Request) (int64, map[string]json.RawMessage, error) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		return 0, nil, p.err
	}
	obj, err := readObject(w, r)
	return id, obj, err
}

// projectRepo returns repository id of the scoped project (locked with lock); another
// project's repository is not found.
func (h *Handler) projectRepo(ctx context.Context, db store.DBTX, r *http.Request, id int64, lock bool) (*store.Repository, error) {
	var repo *store.Repository
	var err error
	if lock {
		repo, err = h.store.LockRepository(ctx, db, id)
	} else {
		repo, err = h.store.RepositoryByID(ctx, db, id)
	}
	if err == nil && repo.ProjectID != scopeOf(r).projectID() {
		err = fmt.Errorf("repository %d: %w", id, store.ErrNotFound)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("repository %d: not found", id)
	}
	return repo, err
}

// checkRepoIsolation refuses a repository change (or a new repository) that would move the
// project's environments onto another environment's files.
func (h *Handler) checkRepoIsolation(ctx context.Context, tx pgx.Tx, project *store.Project, repo store.Repository) error {
	w, err := h.loadWorld(ctx, tx)
	if err != nil {
		return err
	}
	w.setRepo(repo)
	return w.check(func(e *store.Environment) bool { return e.ProjectID == project.ID })
}
