package jobs

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// ErrCredentialsMissing means a repository's credential_ref names nothing in the secret store.
var ErrCredentialsMissing = errors.New("repository credentials missing from the secret store")

// GitRepo returns the gitops.Repo for a branch of repo, with its credentials read from sec.
// A repository without auth needs no secret store. The error never holds credentials.
func GitRepo(ctx context.Context, sec secrets.Store, repo *store.Repository, branch string) (gitops.Repo, error) {
	r := gitops.Repo{URL: repo.URL, Branch: branch}
	if repo.AuthType == "none" || repo.CredentialRef == "" {
		return r, nil
	}
	if sec == nil {
		return r, fmt.Errorf("repository %s: no secret store configured: %w", repo.Name, ErrCredentialsMissing)
	}
	data, err := sec.Get(ctx, repo.CredentialRef)
	if errors.Is(err, secrets.ErrNotFound) {
		return r, fmt.Errorf("repository %s: secret %q: %w", repo.Name, repo.CredentialRef, ErrCredentialsMissing)
	}
	if err != nil {
		return r, fmt.Errorf("read credentials of repository %s: %w", repo.Name, err)
	}
	r.Auth = gitops.Credentials(data)
	return r, nil
}

// CommitAuthorFunc returns the author ("Name <email>") of commit sha in the repository with
// the given ID: who pushed a change straight to Git.
type CommitAuthorFunc func(ctx context.Context, repositoryID int64, sha string) (string, error)

// GitCommitAuthor returns the CommitAuthorFunc the event job and the watch use, answered from
// Git with w on the repository's configured branch.
func GitCommitAuthor(st *store.Store, w *gitops.Writer, sec secrets.Store) CommitAuthorFunc {
	return func(ctx context.Context, repositoryID int64, sha string) (string, error) {
		r, err := gitRepoOf(ctx, st, sec, repositoryID, "")
		if err != nil {
			return "", err
		}
		a, err := w.CommitAuthor(ctx, r, sha)
		if err != nil {
			return "", err
		}
		return signature(a), nil
	}
}

// gitRepoOf is the gitops.Repo of a branch of the repository with ID repoID; "" is its
// configured branch.
func gitRepoOf(ctx context.Context, st *store.Store, sec secrets.Store, repoID int64, branch string) (gitops.Repo, error) {
	repo, err := st.RepositoryByID(ctx, st.Pool(), repoID)
	if err != nil {
		return gitops.Repo{}, err
	}
	if branch == "" {
		cfg, err := repo.Gitops()
		if err != nil {
			return gitops.Repo{}, err
		}
		branch = cfg.Branch
	}
	return GitRepo(ctx, sec, repo, branch)
}

// GitAncestor returns the AncestorFunc the Flux event job uses, answered from Git with w. The
// repository and branch searched are the ones the deployed commit was pushed to (from its
// deployment spec), else repositoryID (the Kustomization's) on its configured branch.
func GitAncestor(st *store.Store, w *gitops.Writer, sec secrets.Store) AncestorFunc {
	return func(ctx context.Context, repositoryID int64, ancestor, descendant string) (bool, error) {
		repoID, branch, err := st.PushTargetOfCommit(ctx, st.Pool(), ancestor)
		if errors.Is(err, store.ErrNotFound) {
			repoID, err = repositoryID, nil
		}
		if err != nil {
			return false, err
		}
		r, err := gitRepoOf(ctx, st, sec, repoID, branch)
		if err != nil {
			return false, err
		}
		ok, err := w.IsAncestor(ctx, r, ancestor, descendant)
		if errors.Is(err, gitops.ErrRevisionNotFound) {
			return false, nil // not in this branch's history: not covered
		}
		return ok, err
	}
}

// shaRE finds a full commit SHA in a Flux revision ("main@sha1:<sha>", or a bare SHA).
var shaRE = regexp.MustCompile(`[0-9a-f]{40}([0-9a-f]{24})?`)

// revisionSHA returns the commit SHA in a Flux revision, or "".
func revisionSHA(rev string) string { return shaRE.FindString(rev) }
