package gitops

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Preview reports what Apply would change on the branch head: the paths
// and a unified diff in git's format. It checks paths and conflicts as
// Apply does, so a hand-edited file shows up here as a *ConflictError,
// but it makes no commit and pushes nothing. For an empty repository the
// diff is against an empty tree and Head is "". It needs read access only.
func (w *Writer) Preview(ctx context.Context, repo Repo, changes []Change) (Preview, error) {
	ops, err := planChanges(changes)
	if err != nil {
		return Preview{}, err
	}
	var p Preview
	err = w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		p = Preview{}
		head, err := w.fetch(ctx, g, r)
		if err != nil {
			return err
		}
		var from *object.Tree
		var baseTree plumbing.Hash
		if !head.IsZero() {
			c, err := commitAt(g, head)
			if err != nil {
				return err
			}
			if from, err = c.Tree(); err != nil {
				return corrupt(fmt.Errorf("read tree of %s: %w", head, err))
			}
			baseTree, p.Head = c.TreeHash, head.String()
		}
		// The new objects stay unreferenced in the cache; Apply reuses them.
		b := &treeBuilder{ctx: ctx, st: g.Storer}
		root, err := b.build(baseTree, ops)
		if err != nil || root == baseTree {
			return err
		}
		to, err := object.GetTree(g.Storer, root)
		if err != nil {
			return corrupt(fmt.Errorf("read new tree: %w", err))
		}
		changes, err := object.DiffTreeWithOptions(ctx, from, to, object.DefaultDiffTreeOptions)
		if err != nil {
			return fmt.Errorf("diff trees: %w", err)
		}
		patch, err := changes.PatchContext(ctx)
		if err != nil {
			return fmt.Errorf("render diff: %w", err)
		}
		p.Files, p.Diff = b.changed, patch.String()
		return nil
	})
	return p, err
}

// ReadDir returns the regular files under dir ("" or "." for the whole
// repository) at rev, keyed by their slash-separated path from the
// repository root. rev is as for Restore; "" means the branch head. A
// directory missing at rev gives an empty map, as does the head of an
// empty repository. It needs read access only.
func (w *Writer) ReadDir(ctx context.Context, repo Repo, rev, dir string) (map[string][]byte, error) {
	d, err := cleanDir(dir)
	if err != nil {
		return nil, err
	}
	if err := checkRev(rev); err != nil {
		return nil, err
	}
	var files map[string][]byte
	err = w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		head, err := w.headCommit(ctx, g, r)
		if err != nil {
			return err
		}
		if head == nil && (rev == "" || rev == "HEAD") {
			files = map[string][]byte{}
			return nil
		}
		c, err := resolveRev(g, r, head, rev)
		if err != nil {
			return err
		}
		files, err = filesAt(g.Storer, c, d)
		return err
	})
	return files, err
}

// IsAncestor reports whether ancestor is reachable from descendant in the
// branch's history; a commit counts as its own ancestor, as with git
// merge-base --is-ancestor. Revisions are as for Restore; one that is not
// in the branch's history gives ErrRevisionNotFound.
func (w *Writer) IsAncestor(ctx context.Context, repo Repo, ancestor, descendant string) (bool, error) {
	for _, rev := range []string{ancestor, descendant} {
		if err := checkRev(rev); err != nil {
			return false, err
		}
	}
	var ok bool
	err := w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		head, err := w.headCommit(ctx, g, r)
		if err != nil {
			return err
		}
		a, err := resolveRev(g, r, head, ancestor)
		if err != nil {
			return err
		}
		d, err := resolveRev(g, r, head, descendant)
		if err != nil {
			return err
		}
		if ok, err = a.IsAncestor(d); err != nil {
			return corrupt(fmt.Errorf("walk history: %w", err))
		}
		return nil
	})
	return ok, err
}

// Check verifies that Apply could write under dir: the remote answers,
// the credentials may push (ErrAuth otherwise), the branch exists
// (ErrBranchNotFound; an empty repository passes, as Apply creates the
// branch), and dir is a safe relative path that is a directory or can
// become one (a *PathError if it, or a parent, is a file).
func (w *Writer) Check(ctx context.Context, repo Repo, dir string) error {
	d, err := cleanDir(dir)
	if err != nil {
		return err
	}
	return w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		ps, err := w.advertise(ctx, r)
		if err != nil {
			return err
		}
		defer func() { _ = ps.sess.Close() }()
		head, err := w.sync(ctx, g, r, ps)
		if err != nil || head.IsZero() || d == "" {
			return err
		}
		c, err := commitAt(g, head)
		if err != nil {
			return err
		}
		t, err := c.Tree()
		if err != nil {
			return corrupt(fmt.Errorf("read tree of %s: %w", head, err))
		}
		_, err = subtree(g.Storer, t, d, dir)
		return err
	})
}

// headCommit fetches and returns the branch head, nil when empty.
func (w *Writer) headCommit(ctx context.Context, g *git.Repository, r *remote) (*object.Commit, error) {
	head, err := w.fetch(ctx, g, r)
	if err != nil || head.IsZero() {
		return nil, err
	}
	return commitAt(g, head)
}

// commitAt reads a commit the clone must have.
func commitAt(g *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	c, err := g.CommitObject(h)
	if err != nil {
		return nil, corrupt(fmt.Errorf("read commit %s: %w", h, err))
	}
	return c, nil
}

// revRE is the revision syntax accepted: HEAD or a hex SHA, then ~n or ^n.
var revRE = regexp.MustCompile(`^(HEAD|[0-9a-fA-F]{4,40})([~^][0-9]{0,4})*$`)

// checkRev refuses revisions outside revRE; "" means HEAD.
func checkRev(rev string) error {
	if rev != "" && !revRE.MatchString(rev) {
		return fmt.Errorf("revision %q is not HEAD, HEAD~n or a commit SHA: %w", rev, ErrInvalidArgument)
	}
	return nil
}

// resolveRev finds rev in the history of head; a commit only in the
// clone, such as one from a lost push, is not found.
func resolveRev(g *git.Repository, r *remote, head *object.Commit, rev string) (*object.Commit, error) {
	if head == nil {
		return nil, fmt.Errorf("revision %q: branch %s has no commits: %w", rev, r.branch.Short(), ErrRevisionNotFound)
	}
	if rev == "" || rev == "HEAD" {
		return head, nil
	}
	expr := rev
	if strings.HasPrefix(rev, "HEAD") {
		expr = r.tracking().String() + rev[len("HEAD"):]
	}
	h, err := g.ResolveRevision(plumbing.Revision(expr))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, ErrRevisionNotFound)
	}
	c, err := g.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("revision %q is not a commit: %w", rev, ErrRevisionNotFound)
	}
	if c.Hash != head.Hash {
		ok, err := c.IsAncestor(head)
		if err != nil {
			return nil, corrupt(fmt.Errorf("walk history: %w", err))
		}
		if !ok {
			return nil, fmt.Errorf("revision %q is not in the history of %s: %w", rev, r.branch.Short(), ErrRevisionNotFound)
		}
	}
	return c, nil
}

// filesAt returns the regular files under dir in c's tree, keyed by path
// from the root; an empty map when c is nil or dir is missing.
func filesAt(st storer.EncodedObjectStorer, c *object.Commit, dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	if c == nil {
		return files, nil
	}
	t, err := c.Tree()
	if err != nil {
		return nil, corrupt(fmt.Errorf("read tree of %s: %w", c.Hash, err))
	}
	prefix := ""
	if dir != "" {
		if t, err = subtree(st, t, dir, dir); err != nil || t == nil {
			return files, err
		}
		prefix = dir + "/"
	}
	err = t.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		s, err := f.Contents()
		if err != nil {
			return corrupt(fmt.Errorf("read %s: %w", f.Name, err))
		}
		files[prefix+f.Name] = []byte(s)
		return nil
	})
	return files, err
}

// subtree returns the tree at the clean path dir under t, or nil if it is
// missing; a *PathError (naming orig) if dir or a parent is a file.
func subtree(st storer.EncodedObjectStorer, t *object.Tree, dir, orig string) (*object.Tree, error) {
	segs := strings.Split(dir, "/")
	for i, seg := range segs {
		e, err := t.FindEntry(seg)
		if errors.Is(err, object.ErrEntryNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, corrupt(fmt.Errorf("read tree: %w", err))
		}
		if e.Mode != filemode.Dir {
			return nil, &PathError{Path: orig, Reason: strings.Join(segs[:i+1], "/") + " is a file, not a directory"}
		}
		if t, err = object.GetTree(st, e.Hash); err != nil {
			return nil, corrupt(fmt.Errorf("read tree %s: %w", strings.Join(segs[:i+1], "/"), err))
		}
	}
	return t, nil
}
