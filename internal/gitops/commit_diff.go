package gitops

import (
	"context"
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/utils/merkletrie"
)

// MaxCommitDiff bounds the unified diff CommitDiff returns; a longer one is cut at a line end
// and marked Truncated.
const MaxCommitDiff = 256 << 10

// CommitDiff is what one commit changed against its first parent.
type CommitDiff struct {
	// SHA is the commit, Parent its first parent ("" for a root commit).
	SHA    string `json:"sha"`
	Parent string `json:"parent"`
	// Files are the paths it added, modified or deleted, sorted.
	Files []FileChange `json:"files"`
	// Diff is a unified diff in git's format, at most MaxCommitDiff bytes.
	Diff      string `json:"diff"`
	Truncated bool   `json:"truncated"`
}

// FileChange is one path a commit touched, and how: "added", "modified" or "deleted".
type FileChange struct {
	Path   string `json:"path"`
	Action string `json:"action"`
}

var actionWords = map[merkletrie.Action]string{merkletrie.Insert: "added", merkletrie.Modify: "modified", merkletrie.Delete: "deleted"}

// CommitDiff returns what commit sha changed on the branch: the files and a unified diff
// against its first parent, as `git show` prints it. A commit the cache already holds is read
// without a fetch (a commit's diff never changes); otherwise the branch is fetched and sha must
// be in its history (ErrRevisionNotFound if not). It needs read access only.
func (w *Writer) CommitDiff(ctx context.Context, repo Repo, sha string) (CommitDiff, error) {
	if !fullSHA.MatchString(sha) {
		return CommitDiff{}, fmt.Errorf("commit %q is not a full lowercase commit ID: %w", sha, ErrInvalidArgument)
	}
	var out CommitDiff
	err := w.withCommit(ctx, repo, sha, func(ctx context.Context, c *object.Commit) (err error) {
		out, err = diffCommit(ctx, c)
		return err
	})
	return out, err
}

// CommitAuthor returns the author of commit sha on the branch, found as CommitDiff finds it.
func (w *Writer) CommitAuthor(ctx context.Context, repo Repo, sha string) (Signature, error) {
	if !fullSHA.MatchString(sha) {
		return Signature{}, fmt.Errorf("commit %q is not a full lowercase commit ID: %w", sha, ErrInvalidArgument)
	}
	var out Signature
	err := w.withCommit(ctx, repo, sha, func(_ context.Context, c *object.Commit) error {
		out = Signature{Name: c.Author.Name, Email: c.Author.Email}
		return nil
	})
	return out, err
}

// withCommit calls fn with commit sha: from the cache when it holds it, else after fetching
// the branch, in whose history it must be (ErrRevisionNotFound if not).
func (w *Writer) withCommit(ctx context.Context, repo Repo, sha string, fn func(context.Context, *object.Commit) error) error {
	return w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		c, err := g.CommitObject(plumbing.NewHash(sha))
		if err != nil {
			head, err := w.headCommit(ctx, g, r)
			if err != nil {
				return err
			}
			if c, err = resolveRev(g, r, head, sha); err != nil {
				return err
			}
		}
		return fn(ctx, c)
	})
}

func diffCommit(ctx context.Context, c *object.Commit) (CommitDiff, error) {
	out := CommitDiff{SHA: c.Hash.String()}
	to, err := c.Tree()
	if err != nil {
		return out, corrupt(fmt.Errorf("read tree of %s: %w", c.Hash, err))
	}
	var from *object.Tree
	if c.NumParents() > 0 {
		p, err := c.Parent(0)
		if err != nil {
			return out, corrupt(fmt.Errorf("read parent of %s: %w", c.Hash, err))
		}
		if from, err = p.Tree(); err != nil {
			return out, corrupt(fmt.Errorf("read tree of %s: %w", p.Hash, err))
		}
		out.Parent = p.Hash.String()
	}
	changes, err := object.DiffTreeWithOptions(ctx, from, to, object.DefaultDiffTreeOptions)
	if err != nil {
		return out, fmt.Errorf("diff trees: %w", err)
	}
	for _, ch := range changes {
		a, err := ch.Action()
		if err != nil {
			return out, corrupt(err)
		}
		name := ch.To.Name
		if name == "" {
			name = ch.From.Name
		}
		out.Files = append(out.Files, FileChange{Path: name, Action: actionWords[a]})
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	patch, err := changes.PatchContext(ctx)
	if err != nil {
		return out, fmt.Errorf("render diff: %w", err)
	}
	out.Diff = patch.String()
	if len(out.Diff) > MaxCommitDiff {
		cut := MaxCommitDiff
		for cut > 0 && out.Diff[cut-1] != '\n' {
			cut--
		}
		out.Diff, out.Truncated = out.Diff[:cut], true
	}
	return out, nil
}
