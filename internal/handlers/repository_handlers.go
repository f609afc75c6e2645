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
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := h.connectRepository(r.Context(), r, &q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// connectRepository validates q, inserts the row and stores the credentials, all or nothing:
// the secret is written inside the row's transaction and deleted again if it rolls back.
func (h *Handler) connectRepository(ctx context.Context, r *http.Request, q *createRepositoryReq) (*repositoryResp, error) {
	sc := scopeOf(r)
	if !nameRE.MatchString(q.Name) {
		return nil, errBadRequest("name", "must be a DNS label (lowercase letters, digits and '-'), got %q", q.Name)
	}
	if err := checkRepoURL(q.URL); err != nil {
		return nil, err
	}
	creds, err := q.Auth.check(q.URL)
	if err != nil {
		return nil, err
	}
	cfg, err := q.Gitops.check()
	if err != nil {
		return nil, err
	}
	rawCfg, _ := json.Marshal(cfg)
	ref := ""
	if creds != nil {
		if h.secrets == nil {
			return nil, &httpError{Status: http.StatusServiceUnavailable, Msg: "no secret store is configured for credentials"}
		}
		ref = secrets.NewRef("repo-" + sc.Project.Slug + "-" + q.Name)
	}
	var repo *store.Repository
	err = h.store.WithTx(ctx, func(tx pgx.Tx) error {
		repo, err = h.store.CreateRepository(ctx, tx, store.NewRepository{
			ProjectID: sc.Project.ID, Name: q.Name, URL: q.URL, AuthType: q.Auth.Type, CredentialRef: ref,
			GitopsEnabled: q.Gitops.Enabled, GitopsConfig: rawCfg,
		})
		if c, ok := store.IsUniqueViolation(err); ok && c == "repositories_project_id_name_key" {
			return &httpError{Status: http.StatusConflict, Field: "name", Msg: fmt.Sprintf("project %s already has a repository %q", sc.Project.Slug, q.Name)}
		}
		if err != nil {
			return err
		}
		if err := h.auditRepo(ctx, tx, r, "repository.create", repo, "connected repository "+repo.Name+" ("+repo.AuthType+")"); err != nil {
			return err
		}
		if creds != nil {
			return h.secrets.Put(ctx, ref, creds)
		}
		return nil
	})
	if err != nil {
		if ref != "" {
			_ = h.secrets.Delete(context.WithoutCancel(ctx), ref)
		}
		return nil, err
	}
	return &repositoryResp{repo}, nil
}

// setGitops enables or disables GitOps on a repository and sets its branch, path and layout.
func (h *Handler) setGitops(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
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
	err = h.store.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := h.projectRepo(ctx, tx, r, id, true); err != nil {
			return err
		}
		if repo, err = h.store.UpdateRepositoryGitops(ctx, tx, id, q.Enabled, rawCfg); err != nil {
			return err
		}
		state := "disabled"
		if q.Enabled {
			state = fmt.Sprintf("enabled (branch %s, path %q, layout %s)", cfg.Branch, cfg.Path, cfg.Layout)
		}
		return h.auditRepo(ctx, tx, r, "repository.update", repo, "GitOps "+state+" on repository "+repo.Name)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, repositoryResp{repo})
}

// rotateCredentials replaces a repository's credentials. The new secret replaces the old one
// atomically under the same reference, so a push running meanwhile uses one or the other.
func (h *Handler) rotateCredentials(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, obj, err := h.idAndBody(w, r)
	var q struct {
		Auth authInput `json:"auth"`
	}
	if err == nil {
		raw, _ := json.Marshal(obj)
		err = decodeStrict(raw, &q, "")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var repo *store.Repository
	var stale string // a reference to delete once the change committed
	err = h.store.WithTx(ctx, func(tx pgx.Tx) error {
		cur, err := h.projectRepo(ctx, tx, r, id, true)
		if err != nil {
			return err
		}
		creds, err := q.Auth.check(cur.URL)
		if err != nil {
			return err
		}
		ref := cur.CredentialRef
		switch {
		case creds == nil:
			stale, ref = ref, ""
		case h.secrets == nil:
			return &httpError{Status: http.StatusServiceUnavailable, Msg: "no secret store is configured for credentials"}
		case ref == "" || !secrets.ValidRef(ref):
			stale, ref = ref, secrets.NewRef("repo-"+scopeOf(r).Project.Slug+"-"+cur.Name)
		}
		if repo, err = h.store.UpdateRepositoryAuth(ctx, tx, id, q.Auth.Type, ref); err != nil {
			return err
		}
		if err := h.auditRepo(ctx, tx, r, "repository.rotate_credentials", repo, "rotated the credentials of repository "+repo.Name+" ("+repo.AuthType+")"); err != nil {
			return err
		}
		if creds != nil {
			return h.secrets.Put(ctx, ref, creds)
		}
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if stale != "" && secrets.ValidRef(stale) && h.secrets != nil {
		_ = h.secrets.Delete(context.WithoutCancel(ctx), stale)
	}
	writeJSON(w, http.StatusOK, repositoryResp{repo})
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

// auditRepo writes a repository change's audit row; it names the repository, never secrets.
func (h *Handler) auditRepo(ctx context.Context, tx pgx.Tx, r *http.Request, action string, repo *store.Repository, msg string) error {
	details, _ := json.Marshal(map[string]any{"name": repo.Name, "url": repo.URL, "auth_type": repo.AuthType,
		"credential_ref": repo.CredentialRef, "gitops_enabled": repo.GitopsEnabled, "gitops_config": repo.GitopsConfig})
	return h.audit(ctx, tx, r, action, "repository", fmt.Sprint(repo.ID), msg, details)
}
