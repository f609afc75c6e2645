package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type repoCard struct {
	store.Repository
	Gitops     store.RepoGitops
	Validation *handlers.Validation // after Validate
}

// connectForm is what the connect form keeps after a refusal: never a secret.
type connectForm struct{ Name, URL, AuthType, Username, Branch, Path string }

type repositoriesPage struct {
	Slug        string
	Repos       []repoCard
	CanConnect  bool
	CanRotate   bool
	CanValidate bool
	Form        connectForm
	Error       *handlers.Failure
	More        string // the next page
	After       string // this page's cursor, for the live fragment
}

// syncBadge maps a repository's Flux sync status onto the vocabulary.
func repoSyncBadge(status string) Badge {
	switch status {
	case "synced":
		return Badge{Label: "Synced", Class: "ready", Icon: "ready"}
	case "failed":
		return Badge{Label: "Sync failed", Class: "failed", Icon: "failed"}
	case "syncing":
		return Badge{Label: "Syncing", Class: "reconciling", Icon: "reconciling"}
	}
	return Badge{Label: "Not synced yet", Class: "grey", Icon: "new"}
}

func (c *Console) repositoriesData(r *http.Request, validated int64, v *handlers.Validation) (*repositoriesPage, error) {
	sc := handlers.ScopeOf(r)
	after, err := handlers.AfterParam(r)
	var repos []store.Repository
	if err == nil {
		repos, err = c.store.ListRepositories(r.Context(), c.store.Pool(), sc.Project.ID, after, repositoriesShown+1)
	}
	if err != nil {
		return nil, err
	}
	repos, next := trim(repos, repositoriesShown, func(x store.Repository) string { return x.Name })
	p := &repositoriesPage{Slug: sc.Project.Slug, CanConnect: c.core.Can(sc, "repository.create", nil) == nil,
		CanRotate: c.core.Can(sc, "repository.rotate_credentials", nil) == nil, CanValidate: c.core.Can(sc, "repository.validate", nil) == nil, Form: connectForm{AuthType: "https", Branch: "main"}}
	for _, repo := range repos {
		card := repoCard{Repository: repo}
		card.Gitops, _ = repo.Gitops()
		if repo.ID == validated {
			card.Validation = v
		}
		p.Repos = append(p.Repos, card)
	}
	p.After = after
	p.More = moreURL("/projects/"+sc.Project.Slug+"/repositories", "after", next)
	return p, nil
}

// repositories lists the project's repositories with their GitOps settings and Flux's sync
// of them (live), Validate and Rotate credentials on each, and the connect form.
func (c *Console) repositories(w http.ResponseWriter, r *http.Request) {
	p, err := c.repositoriesData(r, 0, nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "repositories", p)
}

func (c *Console) repositoriesList(w http.ResponseWriter, r *http.Request) {
	p, err := c.repositoriesData(r, 0, nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "repositories", "repo_cards", p)
}

// authOf reads the credential fields of a form.
func authOf(r *http.Request) handlers.RepoAuth {
	f := r.PostForm
	return handlers.RepoAuth{Type: f.Get("auth_type"), Username: strings.TrimSpace(f.Get("username")), Password: f.Get("password"),
		BearerToken: f.Get("bearer_token"), PrivateKey: f.Get("private_key"), Passphrase: f.Get("passphrase"),
		KnownHosts: f.Get("known_hosts"), CACert: f.Get("ca_cert")}
}

// connectRepository connects a repository from the form; a refusal shows the form again at
// its field, with every secret field empty.
func (c *Console) connectRepository(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	_ = r.ParseForm()
	f := r.PostForm
	q := handlers.ConnectRepo{Name: strings.TrimSpace(f.Get("name")), URL: strings.TrimSpace(f.Get("url")), Auth: authOf(r),
		Gitops: handlers.RepoGitops{Enabled: f.Get("gitops_enabled") == "true", Branch: strings.TrimSpace(f.Get("branch")), Path: strings.TrimSpace(f.Get("path"))}}
	repo, err := c.core.ConnectRepository(r, q)
	if err != nil {
		fl := c.core.Failure(r, err)
		if fl.Status == http.StatusForbidden || fl.Status >= 500 {
			c.Fail(w, r, fl)
			return
		}
		p, perr := c.repositoriesData(r, 0, nil)
		if perr != nil {
			c.fail(w, r, perr)
			return
		}
		p.Form = connectForm{Name: q.Name, URL: q.URL, AuthType: q.Auth.Type, Username: q.Auth.Username, Branch: q.Gitops.Branch, Path: q.Gitops.Path}
		p.Error = &fl
		c.render(w, r, fl.Status, "repositories", p)
		return
	}
	setFlash(w, "ok", "Connected repository "+repo.Name+"; its credentials are in the secret store. Validate it to check that deploys can push.")
	redirect(w, r, "/projects/"+handlers.ScopeOf(r).Project.Slug+"/repositories#repo-"+repo.Name)
}

// validateRepository checks the repository where deploys would push and shows the checks on
// its card.
func (c *Console) validateRepository(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	v, err := c.core.ValidateRepository(r, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p, err := c.repositoriesData(r, id, v)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "repositories", p)
}

// rotateCredentials replaces a repository's credentials; the old ones are never shown.
func (c *Console) rotateCredentials(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	_ = r.ParseForm()
	back := "/projects/" + handlers.ScopeOf(r).Project.Slug + "/repositories"
	repo, err := c.core.RotateCredentials(r, id, authOf(r))
	if err != nil {
		c.back(w, r, back, err)
		return
	}
	setFlash(w, "ok", "Rotated the credentials of "+repo.Name+" (repository "+strconv.FormatInt(repo.ID, 10)+").")
	redirect(w, r, back+"#repo-"+repo.Name)
}
