package handlers

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// maxTargetScan bounds how many deployments one rollback-targets answer looks at: the page
// is filled from the newest ones, the gitops-git deployments that did not change the app
// left out.
const maxTargetScan = 400

// appTargets keeps, of an environment's restorable deployments (newest first), those that
// restore a state of the app: every deployment of the app itself, and each gitops-git
// deployment whose commit holds the app's directory in a state other than the deployment
// before it. That is a push that changed the directory, or carried such a change: Flux
// applies only the newest of several quick pushes, so the commit it reports need not be the
// one that touched the directory. Git answers from the receiver's cached clone (gitops
// Writer.DirTrees, which remembers its answers); without a UI deploy of the app fluxbridge
// does not know its directory (and cannot roll it back), so only the app's own deployments
// are kept. When Git cannot answer, the gitops-git deployments are kept: a longer list is
// better than one missing the state someone needs.
func (h *Handler) appTargets(ctx context.Context, sc *reqScope, app string, ds []store.Deployment) ([]store.Deployment, error) {
	var shas []string
	for _, d := range ds {
		if d.DeploymentMethod == store.MethodGitopsGit {
			shas = append(shas, d.CommitSHA)
		}
	}
	if len(shas) == 0 {
		return ds, nil
	}
	db := h.store.Pool()
	spec, err := h.store.LatestAppSpec(ctx, db, sc.Env.ID, app)
	if errors.Is(err, store.ErrNotFound) {
		return ownDeployments(ds, app), nil
	}
	if err != nil {
		return nil, err
	}
	if h.git == nil {
		return ds, nil
	}
	repo, err := h.store.RepositoryByID(ctx, db, spec.RepositoryID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, gitReadTimeout)
	defer cancel()
	gr, err := jobs.GitRepo(ctx, h.secrets, repo, spec.Branch)
	var trees map[string]string
	if err == nil {
		all := make([]string, 0, len(ds))
		for _, d := range ds {
			all = append(all, d.CommitSHA)
		}
		trees, err = h.git.DirTrees(ctx, gr, spec.Path, all)
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("app", app).Msg("rollback targets: git pushes left unfiltered")
		return ds, nil
	}
	out := make([]store.Deployment, 0, len(ds))
	for i, d := range ds {
		if d.DeploymentMethod == store.MethodGitopsGit {
			cur, known := trees[d.CommitSHA]
			prev, prevKnown := "", i+1 == len(ds) // the oldest looked at: before it, no app
			if i+1 < len(ds) {
				prev, prevKnown = trees[ds[i+1].CommitSHA]
			}
			if known && prevKnown && cur == prev {
				continue // the app's directory as the deployment before left it
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// ownDeployments keeps the deployments of app, dropping Git pushes.
func ownDeployments(ds []store.Deployment, app string) []store.Deployment {
	out := make([]store.Deployment, 0, len(ds))
	for _, d := range ds {
		if d.App == app && d.DeploymentMethod != store.MethodGitopsGit {
			out = append(out, d)
		}
	}
	return out
}
