package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// isolationLockKey serialises the changes that could make two environments overlap (creating
// or changing an environment, changing where a repository's environments go), so that two
// concurrent ones cannot both pass the check.
const isolationLockKey int64 = 0x666c7869_736f6c61 // "flxisola"

// placement is what an environment owns: its namespaces in its cluster, and its directory on a
// branch of a repository (README "Where deploys go"). Deploys to the environment go there and
// nowhere else, and no other environment may own any of it.
type placement struct {
	// repo is nil while the project has no GitOps repository for the environment: it owns no
	// directory yet.
	repo   *store.Repository
	branch string
	dir    string // "" is the repository root
	// namespace is the default namespace of the environment's apps; namespaces are all it
	// owns, namespace first (gitops_config.namespace and gitops_config.namespaces).
	namespace  string
	namespaces []string
}

// ownsNamespace tells whether the environment owns namespace ns.
func (p *placement) ownsNamespace(ns string) bool { return slices.Contains(p.namespaces, ns) }

// placementOf works out env's placement in project with the project's repositories repos.
// Problems name the gitops_config key at fault; a missing repository is not one (repo stays
// nil) unless requireRepo.
func placementOf(project *store.Project, env *store.Environment, repos []store.Repository, requireRepo bool) (*placement, error) {
	ec, err := env.Gitops()
	if err != nil {
		field := "gitops_config"
		if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) && te.Field != "" {
			return nil, errBadRequest(field+"."+te.Field, "must be %s, got a JSON %s", te.Type, te.Value)
		}
		return nil, errBadRequest(field, "environment %s: %v", env.Name, err)
	}
	p := &placement{namespaces: env.Namespaces(project.Slug)}
	p.namespace = p.namespaces[0]
	if !nameRE.MatchString(p.namespace) {
		return nil, errBadRequest("gitops_config.namespace", "%q is not a valid namespace (a DNS label)", p.namespace)
	}
	for i, ns := range ec.Namespaces {
		if !nameRE.MatchString(ns) {
			return nil, errBadRequest(fmt.Sprintf("gitops_config.namespaces[%d]", i), "%q is not a valid namespace (a DNS label)", ns)
		}
	}
	repo, err := pickRepository(project, env, ec, repos)
	if err != nil {
		if requireRepo {
			return nil, err
		}
		return p, nil
	}
	p.repo = repo
	rc, err := repo.Gitops()
	if err != nil {
		return nil, errConflictf("gitops_config", "%v", err)
	}
	p.branch, p.dir = rc.Branch, path.Join(rc.Path, env.Name)
	if rc.Layout == store.LayoutBranch {
		p.branch, p.dir = env.Name, rc.Path
	}
	if ec.Branch != "" {
		p.branch = ec.Branch
	}
	if ec.Path != "" {
		p.dir = path.Clean(ec.Path)
	}
	if p.dir == "." {
		p.dir = ""
	}
	if err := checkBranch("environment.gitops_config.branch", p.branch); err != nil {
		return nil, err
	}
	if err := checkDir("environment.gitops_config.path", p.dir); err != nil {
		return nil, err
	}
	return p, nil
}

// pickRepository is the environment's repository: the one gitops_config.repository names, else
// the project's only repository with GitOps enabled.
func pickRepository(project *store.Project, env *store.Environment, ec store.EnvGitops, repos []store.Repository) (*store.Repository, error) {
	var repo *store.Repository
	if ec.Repository != "" {
		for i := range repos {
			if repos[i].Name == ec.Repository {
				repo = &repos[i]
			}
		}
		if repo == nil {
			return nil, errConflictf("gitops_config.repository", "environment %s names repository %q, which project %s does not have", env.Name, ec.Repository, project.Slug)
		}
	} else {
		for i := range repos {
			if repos[i].GitopsEnabled {
				if repo != nil {
					return nil, errConflictf("gitops_config.repository", "project %s has several GitOps repositories; set gitops_config.repository on environment %s", project.Slug, env.Name)
				}
				repo = &repos[i]
			}
		}
		if repo == nil {
			return nil, errConflictf("repository", "project %s has no repository with GitOps enabled: connect one and enable GitOps on it first", project.Slug)
		}
	}
	if !repo.GitopsEnabled {
		return nil, errConflictf("repository", "GitOps is not enabled on repository %s", repo.Name)
	}
	return repo, nil
}

// world is every environment of every project with the repositories that place them, for the
// overlap checks. A change is checked by editing the world as the change would, then
// checking the environments it touches against all the others.
type world struct {
	projects map[int64]*store.Project
	envs     []store.Environment
	repos    map[int64][]store.Repository // by project
}

// loadWorld takes the isolation lock and reads the world in tx.
func (h *Handler) loadWorld(ctx context.Context, tx pgx.Tx) (*world, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, isolationLockKey); err != nil {
		return nil, fmt.Errorf("take the isolation lock: %w", err)
	}
	w := &world{projects: map[int64]*store.Project{}, repos: map[int64][]store.Repository{}}
	var err error
	if w.envs, err = h.store.AllEnvironments(ctx, tx); err != nil {
		return nil, err
	}
	repos, err := h.store.AllRepositories(ctx, tx, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		w.repos[r.ProjectID] = append(w.repos[r.ProjectID], r)
	}
	// An environment whose gitops_config change awaits approvals owns what the change would
	// give it too, so that nobody takes it meanwhile and the approved change still fits.
	pending, err := h.store.AllApprovalRequests(ctx, tx, store.ApprovalFilter{State: store.ApprovalPending, TargetType: "environment"})
	if err != nil {
		return nil, err
	}
	for _, req := range pending {
		if req.JobKind != (jobs.EnvironmentConfigArgs{}).Kind() {
			continue
		}
		var args jobs.EnvironmentConfigArgs
		if json.Unmarshal(req.JobArgs, &args) != nil {
			continue
		}
		for _, e := range w.envs {
			if e.ID != args.EnvironmentID {
				continue
			}
			if merged, err := policy.MergeConfig(e.GitopsConfig, args.Patch); err == nil {
				e.GitopsConfig = merged
				w.envs = append(w.envs, e)
			}
			break
		}
	}
	for _, e := range w.envs {
		if w.projects[e.ProjectID] == nil {
			p, err := h.store.ProjectByID(ctx, tx, e.ProjectID)
			if err != nil {
				return nil, err
			}
			w.projects[e.ProjectID] = p
		}
	}
	return w, nil
}

// setEnv puts env into the world as a change would leave it (a new environment is added).
func (w *world) setEnv(p *store.Project, env store.Environment) {
	w.projects[p.ID] = p
	for i := range w.envs {
		if w.envs[i].ID == env.ID && env.ID != 0 {
			w.envs[i] = env // the change replaces the live settings (a pending change's stay)
			return
		}
	}
	w.envs = append(w.envs, env)
}

// setRepo puts repo into the world as a change would leave it.
func (w *world) setRepo(repo store.Repository) {
	list := w.repos[repo.ProjectID]
	for i := range list {
		if list[i].ID == repo.ID {
			list[i] = repo
			return
		}
	}
	w.repos[repo.ProjectID] = append(list, repo)
}

// check refuses the change when an environment it touches (touched) overlaps another: a
// namespace of the same cluster, or a directory on the same branch of the same repository (one
// containing the other). A touched environment whose settings do not place is refused with the
// key at fault; others that do not place are skipped (they own nothing yet).
func (w *world) check(touched func(*store.Environment) bool) error {
	type placed struct {
		env *store.Environment
		p   *placement
	}
	var all []placed
	for i := range w.envs {
		e := &w.envs[i]
		proj := w.projects[e.ProjectID]
		if proj == nil {
			continue
		}
		p, err := placementOf(proj, e, w.repos[e.ProjectID], false)
		if err != nil {
			if touched(e) {
				return err
			}
			continue
		}
		all = append(all, placed{e, p})
	}
	for i, a := range all {
		if !touched(a.env) {
			continue
		}
		for j, b := range all {
			if i == j || a.env.ID != 0 && a.env.ID == b.env.ID {
				continue // an environment and its own pending change
			}
			if a.env.Cluster == b.env.Cluster {
				for _, ns := range a.p.namespaces {
					if b.p.ownsNamespace(ns) {
						return &httpError{Status: http.StatusConflict, Field: "gitops_config.namespace", Guard: "environment_overlap",
							Msg: fmt.Sprintf("%s and %s would both own namespace %s in cluster %s; give one of them another gitops_config.namespace",
								w.describe(a.env), w.describe(b.env), ns, a.env.Cluster)}
					}
				}
			}
			if a.p.repo != nil && b.p.repo != nil && gitops.SameRepository(a.p.repo.URL, b.p.repo.URL) &&
				a.p.branch == b.p.branch && pathsOverlap(a.p.dir, b.p.dir) {
				return &httpError{Status: http.StatusConflict, Field: "gitops_config.path", Guard: "environment_overlap",
					Msg: fmt.Sprintf("%s (directory %q) and %s (directory %q) would share files on branch %s of %s; give one of them another gitops_config.path",
						w.describe(a.env), "/"+a.p.dir, w.describe(b.env), "/"+b.p.dir, a.p.branch, a.p.repo.URL)}
			}
		}
	}
	return nil
}

func (w *world) describe(e *store.Environment) string {
	slug := "?"
	if p := w.projects[e.ProjectID]; p != nil {
		slug = p.Slug
	}
	return fmt.Sprintf("environment %s of project %s", e.Name, slug)
}

// envPlacement is the placement of an existing environment of the request's project.
func (h *Handler) envPlacement(ctx context.Context, db store.DBTX, project *store.Project, env *store.Environment) (*placement, error) {
	repos, err := h.store.AllRepositories(ctx, db, project.ID)
	if err != nil {
		return nil, err
	}
	return placementOf(project, env, repos, false)
}

// envServiceAccount is the ServiceAccount the environment's Kustomizations and HelmReleases
// impersonate: admin in the environment's namespaces and nothing else, so that Flux applies
// nothing outside them.
func envServiceAccount(projectSlug, envName string) string {
	return (&store.Environment{Name: envName}).ServiceAccount(projectSlug)
}

// namespaceList is a list of namespaces for messages.
func namespaceList(ns []string) string { return strings.Join(ns, ", ") }
