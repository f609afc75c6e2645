package gitops

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
)

// FoundCommit is a commit FindTrailer found on the branch.
type FoundCommit struct {
	SHA     string
	Message string
	Author  Signature
}

// FindTrailer looks through the newest depth commits of the branch (first parents, newest
// first) for one whose message has the trailer "key: value", and returns the newest such. It
// fetches first, so it sees what any writer pushed. found is false when none matches.
func (w *Writer) FindTrailer(ctx context.Context, repo Repo, key, value string, depth int) (c FoundCommit, found bool, err error) {
	if key == "" || strings.ContainsAny(key, ":\n") || strings.Contains(value, "\n") {
		return c, false, fmt.Errorf("trailer %q: %q: %w", key, value, ErrInvalidArgument)
	}
	want := key + ": " + value
	err = w.run(ctx, repo, func(ctx context.Context, g *git.Repository, r *remote) error {
		found = false
		head, err := w.headCommit(ctx, g, r)
		if err != nil || head == nil {
			return err
		}
		n := 0
		for cur := head; cur != nil && n < depth; n++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if hasTrailer(cur.Message, want) {
				c, found = FoundCommit{SHA: cur.Hash.String(), Message: cur.Message,
					Author: Signature{Name: cur.Author.Name, Email: cur.Author.Email}}, true
				return nil
			}
			if cur.NumParents() == 0 {
				return nil
			}
			next, err := cur.Parent(0)
			if err != nil {
				return corrupt(fmt.Errorf("read parent of %s: %w", cur.Hash, err))
			}
			cur = next
		}
		return nil
	})
	return c, found, err
}

// hasTrailer tells whether the last paragraph of msg (its trailers) has the line want.
func hasTrailer(msg, want string) bool {
	paras := strings.Split(strings.TrimRight(msg, "\n"), "\n\n")
	for _, l := range strings.Split(paras[len(paras)-1], "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}
