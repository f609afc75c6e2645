package gitops

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// maxDirTrees bounds the Writer's memory of DirTrees answers; past it the
// memory starts afresh. An entry is a commit, a directory and a tree ID.
const maxDirTrees = 4096 // entries

// fullSHA is a full SHA-1 or SHA-256 commit ID in lowercase hex.
var fullSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// DirTrees returns, for each of commits, the ID of the tree at dir ("" or
// "." for the repository root) in that commit, or "" when dir is missing
// there. Two commits with the same ID hold the same files under dir, so a
// caller can tell which commits changed a directory and which carried it
// along (Flux applies only the newest of several quick pushes, so the
// commit it reports may not be the one that changed the directory).
//
// Commits are full SHAs. The cached clone is read first and fetched only
// when a commit is missing from it; a commit the branch's history does not
// hold after that is left out of the result. A commit's tree never
// changes, so answers are remembered (up to maxDirTrees of them) and a
// repeated question costs no Git call. It needs read access only.
func (w *Writer) DirTrees(ctx context.Context, repo Repo, dir string, commits []string) (map[string]string, error) {
	d, err := cleanDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(commits))
	var missing []string
	w.treeMu.Lock()
	for _, c := range commits {
		if !fullSHA.MatchString(c) {
			w.treeMu.Unlock()
			return nil, fmt.Errorf("commit %q is not a full lowercase SHA: %w", c, ErrInvalidArgument)
		}
		if id, ok := w.trees[c+"\x00"+d]; ok {
			out[c] = id
		} else {
			missing = append(missing, c)
		}
	}
	w.treeMu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	found := map[string]string{}
	err = w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		fetched := false
		for _, c := range missing {
			id, ok, err := dirTree(g, plumbing.NewHash(c), d, dir)
			if err == nil && !ok && !fetched {
				if _, err := w.fetch(ctx, g, r); err != nil {
					return err
				}
				fetched = true
				id, ok, err = dirTree(g, plumbing.NewHash(c), d, dir)
			}
			if err != nil {
				return err
			}
			if ok {
				found[c] = id
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.treeMu.Lock()
	defer w.treeMu.Unlock()
	if w.trees == nil || len(w.trees)+len(found) > maxDirTrees {
		w.trees = make(map[string]string, len(found))
	}
	for c, id := range found {
		w.trees[c+"\x00"+d] = id
		out[c] = id
	}
	return out, nil
}

// dirTree reads the tree ID at the clean path d in commit h of the clone;
// ok is false when the clone does not have the commit. A d that is a file
// in the commit counts as missing.
func dirTree(g *git.Repository, h plumbing.Hash, d, orig string) (id string, ok bool, err error) {
	c, err := g.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, corrupt(fmt.Errorf("read commit %s: %w", h, err))
	}
	t, err := c.Tree()
	if err != nil {
		return "", false, corrupt(fmt.Errorf("read tree of %s: %w", h, err))
	}
	if d == "" {
		return t.Hash.String(), true, nil
	}
	sub, err := subtree(g.Storer, t, d, orig)
	var pe *PathError
	switch {
	case errors.As(err, &pe), err == nil && sub == nil:
		return "", true, nil
	case err != nil:
		return "", false, err
	}
	return sub.Hash.String(), true, nil
}
