package gitops

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDirTrees: the tree ID of a directory changes with the commits that change it and with
// no other; a missing directory is ""; a commit the branch does not hold is left out; answers
// are remembered, so asking again makes no request to the Git server.
func TestDirTrees(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	work := seed(t, srv.url("app"), map[string]string{"clusters/dev/web/a.yaml": "w: 1\n"})
	commit := func(p, content, msg string) string {
		writeFile(t, filepath.Join(work, p), content)
		gitCLI(t, work, "add", "-A")
		gitCLI(t, work, "commit", "-q", "-m", msg)
		gitCLI(t, work, "push", "-q", srv.url("app"), "main")
		return gitCLI(t, work, "rev-parse", "HEAD")
	}
	c0 := gitCLI(t, work, "rev-parse", "HEAD")
	c1 := commit("clusters/dev/api/a.yaml", "a: 1\n", "add api")
	c2 := commit("clusters/dev/web/a.yaml", "w: 2\n", "change web")
	c3 := commit("clusters/dev/api/a.yaml", "a: 2\n", "change api")
	unknown := strings.Repeat("ab", 20)

	w := newTestWriter(t)
	ctx := context.Background()
	repo := repoAt(srv.url("app"))
	got, err := w.DirTrees(ctx, repo, "clusters/dev/api", []string{c0, c1, c2, c3, unknown})
	require.NoError(t, err)
	require.Len(t, got, 4, "the unknown commit is left out")
	require.Empty(t, got[c0], "api did not exist yet")
	require.NotEmpty(t, got[c1])
	require.Equal(t, got[c1], got[c2], "c2 changed web only")
	require.NotEqual(t, got[c2], got[c3])
	require.Equal(t, gitCLI(t, work, "rev-parse", c3+":clusters/dev/api"), got[c3], "git agrees")

	before := srv.requests.Load()
	again, err := w.DirTrees(ctx, repo, "clusters/dev/api/", []string{c3, c1})
	require.NoError(t, err)
	require.Equal(t, map[string]string{c1: got[c1], c3: got[c3]}, again)
	require.Equal(t, before, srv.requests.Load(), "remembered: no Git request")

	root, err := w.DirTrees(ctx, repo, "", []string{c2})
	require.NoError(t, err)
	require.Equal(t, gitCLI(t, work, "rev-parse", c2+"^{tree}"), root[c2])

	_, err = w.DirTrees(ctx, repo, "clusters/dev/api", []string{"HEAD"})
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = w.DirTrees(ctx, repo, "../x", []string{c1})
	require.ErrorIs(t, err, ErrInvalidArgument)
}
