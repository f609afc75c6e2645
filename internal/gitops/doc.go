// Package gitops writes generated manifests to Git branches for Flux to
// apply: it keeps a cached bare clone per repository and branch, builds
// one commit from whole-file changes, and pushes it as a fast-forward,
// re-applying the changes on a newer head when another writer got there
// first. It never force-pushes and never overwrites a file someone edited
// by hand (see Mark).
//
// Credentials have the shape of a Flux GitRepository secret and are read
// with fluxcd/pkg/git's AuthOptions. Flux's gogit client is not used: it
// clones afresh each time and has no fetch, and importing it changes
// go-git's global capability list, so fetch and push use go-git directly.
//
// The package knows nothing of jobs, databases or HTTP handlers: it takes
// plain values and returns a commit SHA or a typed error (ErrAuth,
// ErrBranchNotFound, ErrRepoNotFound, ErrRevisionNotFound,
// ErrNonFastForward, ErrPushRejected, ErrInvalidArgument, *ConflictError,
// *PathError). Other errors are network failures worth retrying later.
// Error text never holds credentials.
package gitops
