package gitops

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Apply writes changes to repo's branch in one commit and pushes it. YAML
// files (.yaml, .yml) are marked with Mark first. An existing file is only
// overwritten or deleted if it carries an intact fluxbridge marker or
// already has the new content; otherwise Apply returns a *ConflictError
// naming it. A Create change leaves an existing file alone instead. Unsafe
// paths give a *PathError before the repository is touched.
//
// If the resulting tree equals the head's, no commit is made and Result
// has Changed false and the head SHA ("" for an empty repository), so a
// job that runs twice makes one commit. In an empty repository the first
// Apply creates the branch. When another writer pushes in between, the
// changes are applied again on the new head and pushed again, up to the
// configured attempts, then ErrNonFastForward; Apply never force-pushes.
// Bad credentials and unknown host keys return ErrAuth without retrying.
func (w *Writer) Apply(ctx context.Context, repo Repo, changes []Change, ci CommitInfo) (Result, error) {
	ops, err := planChanges(changes)
	if err != nil {
		return Result{}, err
	}
	return w.commit(ctx, repo, ci, func(*git.Repository, *remote, *object.Commit) (*dirOps, error) {
		return ops, nil
	})
}

// Restore makes dir (a directory path; "" or "." for the whole
// repository) identical to its content at rev, in one new commit on top
// of the head: files that differ are rewritten with their old content as
// it was (no marker is added), and files added since are deleted. It is a
// GitOps rollback, never a force push, and follows Apply's rules for
// conflicts, idempotency and races. Only regular files are compared. rev
// is a commit SHA (abbreviated or full), "HEAD" or "HEAD~n", and must be
// in the branch's history, or ErrRevisionNotFound is returned.
func (w *Writer) Restore(ctx context.Context, repo Repo, dir, rev string, ci CommitInfo) (Result, error) {
	d, err := cleanDir(dir)
	if err != nil {
		return Result{}, err
	}
	if err := checkRev(rev); err != nil {
		return Result{}, err
	}
	var old map[string][]byte // content at rev; the same on every attempt
	return w.commit(ctx, repo, ci, func(g *git.Repository, r *remote, head *object.Commit) (*dirOps, error) {
		if old == nil {
			c, err := resolveRev(g, r, head, rev)
			if err != nil {
				return nil, err
			}
			if old, err = filesAt(g.Storer, c, d); err != nil {
				return nil, err
			}
		}
		cur, err := filesAt(g.Storer, head, d)
		if err != nil {
			return nil, err
		}
		ops := newDirOps()
		for p, content := range old {
			if err := ops.add(p, fileOp{content: content}); err != nil {
				return nil, err
			}
		}
		for p := range cur {
			if _, ok := old[p]; !ok {
				if err := ops.add(p, fileOp{delete: true}); err != nil {
					return nil, err
				}
			}
		}
		return ops, nil
	})
}

// planFunc returns the changes to make on top of head, which is nil for
// an empty repository. It runs again on each push attempt.
type planFunc func(g *git.Repository, r *remote, head *object.Commit) (*dirOps, error)

// commit runs the fetch, build, commit and push loop shared by Apply and
// Restore, retrying pushes lost to concurrent writers.
func (w *Writer) commit(ctx context.Context, repo Repo, ci CommitInfo, plan planFunc) (Result, error) {
	msg, err := ci.message()
	if err != nil {
		return Result{}, err
	}
	if _, _, err := ci.signatures(time.Time{}); err != nil {
		return Result{}, err
	}
	var res Result
	err = w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		for attempt := 1; ; attempt++ {
			var err error
			res, err = w.attempt(ctx, g, r, ci, msg, plan)
			if !errors.Is(err, errRace) {
				return err
			}
			if attempt >= w.attempts {
				return fmt.Errorf("push %s to %s: lost %d attempts to concurrent pushes: %w", r.branch.Short(), r.url, attempt, ErrNonFastForward)
			}
			if err := sleep(ctx, w.jitter(attempt)); err != nil {
				return fmt.Errorf("wait to retry push: %w", err)
			}
		}
	})
	return res, err
}

// attempt makes and pushes one commit on top of the current head.
func (w *Writer) attempt(ctx context.Context, g *git.Repository, r *remote, ci CommitInfo, msg string, plan planFunc) (Result, error) {
	ps, err := w.advertise(ctx, r)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = ps.sess.Close() }()
	base, err := w.sync(ctx, g, r, ps)
	if err != nil {
		return Result{}, err
	}
	var head *object.Commit
	var baseTree plumbing.Hash
	if !base.IsZero() {
		if head, err = g.CommitObject(base); err != nil {
			return Result{}, corrupt(fmt.Errorf("read head %s: %w", base, err))
		}
		baseTree = head.TreeHash
	}
	ops, err := plan(g, r, head)
	if err != nil {
		return Result{}, err
	}
	b := &treeBuilder{ctx: ctx, st: g.Storer}
	root, err := b.build(baseTree, ops)
	if err != nil {
		return Result{}, err
	}
	if root == baseTree {
		return Result{SHA: hashString(base)}, nil
	}

	author, committer, _ := ci.signatures(time.Now())
	c := &object.Commit{Author: author, Committer: committer, Message: msg, TreeHash: root}
	if head != nil {
		c.ParentHashes = []plumbing.Hash{base}
	}
	obj := g.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return Result{}, fmt.Errorf("encode commit: %w", err)
	}
	sha, err := b.put(obj)
	if err != nil {
		return Result{}, err
	}
	if w.beforePush != nil {
		w.beforePush()
	}
	if err := w.push(ctx, g, r, ps, base, sha, b.written); err != nil {
		return Result{}, err
	}
	// Best effort: a stale tracking ref only costs a fetch next time.
	_ = g.Storer.SetReference(plumbing.NewHashReference(r.tracking(), sha))
	return Result{SHA: sha.String(), Changed: true, Files: b.changed}, nil
}

// run resolves repo, applies the Writer's timeout and runs fn on the
// repository's cached clone.
func (w *Writer) run(ctx context.Context, repo Repo, fn func(context.Context, *git.Repository, *remote) error) error {
	r, err := w.resolve(repo)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return w.withClone(ctx, r, func(g *git.Repository) error { return fn(ctx, g, r) })
}

// jitter returns a random delay in [d/2, d] with d the base backoff
// doubled per attempt, so racing writers spread out.
func (w *Writer) jitter(attempt int) time.Duration {
	d := w.backoff << (attempt - 1)
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hashString returns h in hex, or "" for the zero hash.
func hashString(h plumbing.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}
